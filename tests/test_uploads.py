"""Uploading the three PDFs through the portal: what is accepted, what is refused and why, and
that a refused upload leaves neither a file nor a row behind."""

import io
import os
import re
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from pypdf import PdfReader, PdfWriter

from admin_app.demo import demo_pdf
from admin_app.extensions import db
from models import AuditEvent, Document, DocumentKind
from models.application import open_case

from .pages import flashes, text

STORED_NAME = re.compile(r"[0-9a-f]{2}/[0-9a-f]{32}\.pdf")


def stored_files(app):
    """Every file under the upload folder, relative to it."""
    root = app.config["UPLOAD_FOLDER"]
    found = []
    for folder, _dirs, files in os.walk(root):
        found.extend(os.path.relpath(os.path.join(folder, name), root) for name in files)
    return sorted(found)


def document_count():
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Document))


def encrypted_pdf():
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(demo_pdf("加密"))))
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def upload(client, content, filename, item="public_teaching"):
    return client.post(
        f"/apply/item/{item}",
        data={"file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


@pytest.fixture
def case(teacher, cycle):
    case = open_case(teacher, cycle)
    db.session.commit()
    return case


@pytest.fixture
def client_in(login, teacher, case):
    return login(teacher)


def test_a_real_pdf_is_accepted_and_its_name_shown(app, client_in, case):
    content = demo_pdf("公開授課")

    response = upload(client_in, content, "公開授課實施證明.pdf")

    assert "已上傳「公開授課實施證明.pdf」。" in flashes(response)
    assert "公開授課實施證明.pdf" in text(response)
    document = db.session.scalar(sa.select(Document).where(Document.case_id == case.id))
    assert document.kind is DocumentKind.public_teaching
    assert document.original_name == "公開授課實施證明.pdf"
    assert document.size == len(content)
    assert STORED_NAME.fullmatch(document.stored_name)
    assert stored_files(app) == [document.stored_name]
    with open(os.path.join(app.config["UPLOAD_FOLDER"], document.stored_name), "rb") as handle:
        assert handle.read() == content

    apply_page = text(client_in.get("/apply"))
    assert "公開授課實施證明.pdf" in apply_page and "上傳於" in apply_page

    download = client_in.get(f"/apply/document/{document.id}")
    assert download.data == content


def test_a_new_upload_replaces_the_shown_file_and_keeps_the_old_one(app, client_in, case):
    upload(client_in, demo_pdf("一"), "第一版.pdf")
    response = upload(client_in, demo_pdf("二"), "第二版.pdf")

    assert "第二版.pdf" in text(response) and "第一版.pdf" not in text(response)
    assert document_count() == 2
    assert len(stored_files(app)) == 2


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"This is a text file, not a PDF.\n" * 40, "證明.pdf", "檔案內容不是 PDF"),
        (b"", "空白.pdf", "檔案是空的，請重新選擇檔案。"),
        (encrypted_pdf(), "加密.pdf", "PDF 檔設有密碼或加密，請移除保護後再上傳。"),
        (b"%PDF-1.7\n" + os.urandom(3000), "壞掉.pdf", "PDF 檔已損壞或無法讀取"),
        (b"%PDF-1.4\n%%EOF\n", "只有開頭.pdf", "PDF 檔已損壞或無法讀取"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 500, "圖片.pdf", "檔案內容不是 PDF"),
    ],
    ids=["text", "empty", "encrypted", "garbage", "header-only", "png"],
)
def test_refused_uploads_leave_nothing_behind(app, client_in, case, content, filename, message):
    events = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))

    response = upload(client_in, content, filename)

    assert any(message in shown for shown in flashes(response)), flashes(response)
    assert re.search(r"[\u4e00-\u9fff]", flashes(response)[0])
    assert document_count() == 0
    assert stored_files(app) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == events
    assert "尚未上傳" in text(response)


def test_no_file_chosen(app, client_in, case):
    response = client_in.post(
        "/apply/item/community", data={}, content_type="multipart/form-data", follow_redirects=True
    )

    assert "請選擇要上傳的 PDF 檔。" in flashes(response)
    assert document_count() == 0 and stored_files(app) == []


def test_over_the_per_file_limit(app, client_in, case):
    app.config["MAX_UPLOAD_MB"] = 1
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024
    big = demo_pdf("大") + b"%" + b"0" * (1024 * 1024 + 200)

    response = upload(client_in, big, "太大.pdf")

    assert "檔案超過 1 MB 的上限，請壓縮後再上傳。" in flashes(response)
    assert document_count() == 0 and stored_files(app) == []


def test_over_the_request_limit_shows_the_message_not_a_bare_413(app, client_in, case):
    app.config["MAX_UPLOAD_MB"] = 1
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024

    response = client_in.post(
        "/apply/item/checklist",
        data={"file": (io.BytesIO(b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024)), "巨大.pdf")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/apply/item/checklist")
    page = client_in.get(response.headers["Location"])
    assert "檔案超過 1 MB 的上限，請壓縮後再上傳。" in flashes(page)
    assert document_count() == 0 and stored_files(app) == []


def test_a_file_somewhat_over_the_limit_reaches_the_size_check(app, client_in, case):
    # the request limit leaves room above the per-file limit, so the page can say why
    assert app.config["MAX_CONTENT_LENGTH"] >= 2 * app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    eleven_mb = demo_pdf("大") + b"%" + b"0" * (11 * 1024 * 1024)

    response = upload(client_in, eleven_mb, "太大.pdf")

    assert "檔案超過 10 MB 的上限，請壓縮後再上傳。" in flashes(response)
    assert document_count() == 0 and stored_files(app) == []


def test_upload_page_checks_the_file_size_before_sending(client_in, case):
    page = text(client_in.get("/apply/item/community"))

    assert f'data-max-bytes="{10 * 1024 * 1024}"' in page
    assert '<script src="/static/upload-size.js" defer></script>' in page
    assert client_in.get("/static/upload-size.js").status_code == 200


@pytest.mark.parametrize(
    ("sent_as", "downloaded_as"),
    [("ok.txt", "ok.txt.pdf"), ("noext", "noext.pdf"), ("掃描.PDF", "掃描.PDF")],
)
def test_a_pdf_under_another_name_downloads_as_pdf(app, client_in, case, sent_as, downloaded_as):
    response = upload(client_in, demo_pdf(), sent_as, item="community")

    assert f"已上傳「{sent_as}」。" in flashes(response)
    document = db.session.scalar(sa.select(Document).where(Document.case_id == case.id))
    assert document.original_name == sent_as
    disposition = client_in.get(f"/apply/document/{document.id}").headers["Content-Disposition"]
    assert quote(downloaded_as) in disposition or f'filename="{downloaded_as}"' in disposition


@pytest.mark.parametrize(
    ("filename", "shown"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("教師專業學習社群參與證明（王小明）.pdf", "教師專業學習社群參與證明（王小明）.pdf"),
        ("證" * 196 + ".pdf", "證" * 196 + ".pdf"),
    ],
    ids=["path", "chinese", "200-characters"],
)
def test_file_names_are_kept_for_display_never_as_a_path(app, client_in, case, filename, shown):
    response = upload(client_in, demo_pdf(), filename, item="community")

    assert f"已上傳「{shown}」。" in flashes(response)
    document = db.session.scalar(sa.select(Document).where(Document.case_id == case.id))
    assert document.original_name == shown
    assert STORED_NAME.fullmatch(document.stored_name)
    assert stored_files(app) == [document.stored_name]
    assert not os.path.exists(os.path.join(app.config["UPLOAD_FOLDER"], "..", "etc"))

    download = client_in.get(f"/apply/document/{document.id}")
    assert download.status_code == 200
    disposition = download.headers["Content-Disposition"]
    assert shown in disposition or quote(shown) in disposition
