"""When things break: the database is gone, the disk is full, a step fails half-way through a
transition, or a form arrives without its CSRF token. Each time the person reads a Chinese
message and nothing is left half-written."""

import builtins
import errno
import io
import os
import re
import socket

import pytest
import sqlalchemy as sa

from admin_app import create_app, storage
from admin_app.demo import demo_pdf
from admin_app.extensions import db
from models import (
    AuditEvent,
    Case,
    CaseState,
    Document,
    LoginThrottle,
    Notification,
    OutgoingMail,
    ReviewAssignment,
    workflow,
)
from models import notify as notify_module
from models import operations as operations_module
from models.application import open_case

from .conftest import PASSWORD
from .factories import case_in, reviewers
from .pages import count, text
from .test_reviewer import assignment_of, complete_review

CHINESE = re.compile(r"[\u4e00-\u9fff]")
STORE_FAILED = "伺服器暫時無法儲存檔案（儲存空間不足或故障），請稍後再試。"


def files_under(folder):
    found = []
    for root, _dirs, names in os.walk(folder):
        found.extend(os.path.relpath(os.path.join(root, name), folder) for name in names)
    return sorted(found)


# --- the database is unavailable ------------------------------------------------------------


def closed_port():
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def app_without_database(request, tmp_path):
    if request.param == "sqlite":
        settings = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'missing' / 'gone.db'}"}
    else:
        settings = {
            "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test",
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 3}},
        }
    app = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": "test-secret",
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            **settings,
        }
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def assert_unavailable_page(response):
    assert response.status_code == 503
    body = text(response)
    assert "系統暫時無法服務" in body and "資料庫暫時無法連線，您的資料未被修改。" in body
    assert response.headers["Retry-After"]
    assert "Traceback" not in body and "OperationalError" not in body


def test_login_without_a_database_is_a_chinese_503(app_without_database):
    client = app_without_database.test_client()

    response = client.post("/login", data={"login": "teacher1", "password": PASSWORD})

    assert_unavailable_page(response)


def test_a_logged_in_page_without_a_database_is_a_chinese_503(app_without_database):
    client = app_without_database.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1"

    response = client.get("/apply")

    assert_unavailable_page(response)


def test_a_database_error_half_way_leaves_nothing_written(
    app, login, teacher, filled_case, monkeypatch
):
    client = login(teacher)
    events = count(AuditEvent)

    def connection_lost(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(notify_module, "submitted", connection_lost)
    response = client.post("/apply/submit")

    assert_unavailable_page(response)
    assert db.session.get(Case, filled_case.id).state is CaseState.draft
    assert count(AuditEvent) == events
    assert count(Notification) == count(OutgoingMail) == 0


# --- the disk is full or the upload folder unwritable ---------------------------------------


@pytest.fixture
def upload_case(teacher, cycle):
    case = open_case(teacher, cycle)
    db.session.commit()
    return case


def upload(client):
    return client.post(
        "/apply/item/public_teaching",
        data={"file": (io.BytesIO(demo_pdf("公開授課")), "公開授課實施證明.pdf")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fail_on_part_files(monkeypatch):
    """Opening the upload's temporary file creates it, then the disk turns out to be full."""
    real_open = builtins.open

    def open_then_fail(path, mode="r", *args, **kwargs):
        if str(path).endswith(".part") and "w" in mode:
            real_open(path, mode, *args, **kwargs).close()
            disk_full()
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(storage, "open", open_then_fail, raising=False)


@pytest.mark.parametrize("fault", ["replace", "fsync", "open"])
def test_disk_full_on_upload(app, login, teacher, upload_case, monkeypatch, fault):
    client = login(teacher)
    events = count(AuditEvent)
    if fault == "open":
        fail_on_part_files(monkeypatch)
    else:
        monkeypatch.setattr(storage.os, fault, disk_full)

    response = upload(client)

    assert STORE_FAILED in text(response)
    assert count(Document) == 0
    assert count(AuditEvent) == events
    assert files_under(app.config["UPLOAD_FOLDER"]) == []


def test_unwritable_upload_folder(app, login, teacher, upload_case, tmp_path):
    client = login(teacher)
    # a plain file where the folder should be: no folder can be made in it, even by root
    blocked = tmp_path / "not-a-folder"
    blocked.write_bytes(b"occupied")
    app.config["UPLOAD_FOLDER"] = str(blocked)

    response = upload(client)

    assert response.status_code == 200
    assert STORE_FAILED in text(response)
    assert count(Document) == 0
    assert blocked.read_bytes() == b"occupied"


# --- a crash between two steps of a transition ----------------------------------------------


def nothing_changed(case, version, events):
    db.session.rollback()
    db.session.expire_all()
    stored = db.session.get(Case, case.id)
    assert stored.state is CaseState.draft and stored.version == version
    assert stored.submitted_at is None
    assert count(AuditEvent) == events
    assert count(Notification) == count(OutgoingMail) == 0


def crash_after_update(seen):
    """A stand-in for a later step: it notes what the transaction holds, then crashes."""

    def crash(*args, **kwargs):
        seen["state"] = db.session.scalar(sa.select(Case.state))
        seen["events"] = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
        raise RuntimeError("crash between two steps")

    return crash


@pytest.mark.parametrize("step", ["audit event", "notification"])
def test_crash_inside_a_transition_rolls_everything_back(
    app, login, teacher, filled_case, monkeypatch, step
):
    client = login(teacher)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    version, events = filled_case.version, count(AuditEvent)
    seen = {}
    if step == "audit event":
        monkeypatch.setattr(operations_module, "AuditEvent", crash_after_update(seen))
    else:
        monkeypatch.setattr(notify_module, "submitted", crash_after_update(seen))

    response = client.post("/apply/submit")

    assert response.status_code == 500
    assert "系統發生錯誤，您的資料未被修改。" in text(response)
    # the conditional UPDATE had run (and, for the later step, the audit event too)
    assert seen["state"] is CaseState.formal_review
    assert seen["events"] == events + (1 if step == "notification" else 0)
    nothing_changed(filled_case, version, events)


def test_crash_inside_a_staff_transition_rolls_back(app, cycle, staff, monkeypatch):
    case = case_in(CaseState.formal_review, cycle, staff)
    version, events = case.version, count(AuditEvent)
    mails = count(OutgoingMail)
    monkeypatch.setattr(notify_module, "returned", crash_after_update({}))

    with pytest.raises(RuntimeError):
        workflow.return_for_correction(case, staff, "請補蓋學校章。")
    db.session.rollback()

    db.session.expire_all()
    stored = db.session.get(Case, case.id)
    assert stored.state is CaseState.formal_review and stored.version == version
    assert count(AuditEvent) == events and count(OutgoingMail) == mails


# --- forms without their CSRF token ---------------------------------------------------------


TOKEN = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


@pytest.fixture
def csrf_app(app):
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def token_from(client, path):
    match = TOKEN.search(text(client.get(path)))
    assert match, f"no csrf token on {path}"
    return match.group(1)


def login_with_token(client, user):
    token = token_from(client, "/login")
    response = client.post(
        "/login", data={"login": user.login, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, text(response)[:300]
    return client


def assert_refused(response):
    assert response.status_code == 400
    assert "表單已過期或來源不明，請重新整理頁面後再送出一次。" in text(response)


def test_login_without_token_is_refused(csrf_app, client, teacher):
    response = client.post("/login", data={"login": "teacher1", "password": PASSWORD})

    assert_refused(response)
    assert count(AuditEvent, AuditEvent.action.like("login%")) == 0
    assert count(LoginThrottle) == 0
    assert client.get("/profile").status_code == 302


def test_portal_submit_without_token_is_refused(csrf_app, client, teacher, filled_case):
    login_with_token(client, teacher)
    version = filled_case.version

    response = client.post("/apply/submit")

    assert_refused(response)
    db.session.expire_all()
    stored = db.session.get(Case, filled_case.id)
    assert stored.state is CaseState.draft and stored.version == version

    token = token_from(client, "/apply/submit")
    assert client.post("/apply/submit", data={"csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Case, filled_case.id).state is CaseState.formal_review


def test_admin_action_without_token_is_refused(csrf_app, client, cycle, staff):
    case = case_in(CaseState.formal_review, cycle, staff)
    login_with_token(client, staff)

    bulk = client.post("/admin/case/formal-review/", data={"ids": [case.id]})
    single = client.post(f"/admin/case/{case.id}/return/", data={"comment": "請補件。"})

    assert_refused(bulk)
    assert_refused(single)
    db.session.expire_all()
    assert db.session.get(Case, case.id).state is CaseState.formal_review


def test_reviewer_form_without_token_is_refused(csrf_app, client, cycle, staff):
    panel = reviewers(2)
    case = case_in(CaseState.under_review, cycle, staff, panel=panel)
    assignment = assignment_of(case, panel[0])
    login_with_token(client, panel[0])

    response = client.post(f"/review/{assignment.id}", data=complete_review())

    assert_refused(response)
    db.session.expire_all()
    stored = db.session.get(ReviewAssignment, assignment.id)
    assert stored.submitted_at is None and stored.recommendation is None


def test_password_change_and_logout_without_token_are_refused(csrf_app, client, teacher):
    login_with_token(client, teacher)

    change = client.post(
        "/password",
        data={
            "current_password": PASSWORD,
            "new_password": "a-brand-new-secret",
            "confirm_password": "a-brand-new-secret",
        },
    )
    logout = client.post("/logout")

    assert_refused(change)
    assert_refused(logout)
    db.session.expire_all()
    assert teacher.check_password(PASSWORD)
    assert client.get("/profile").status_code == 200
