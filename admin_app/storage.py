"""Uploaded PDFs: checked by content, stored under generated names outside any static folder.

A file is written before its row is committed; if the transaction rolls back, the session hook
below removes the file again, so there is never a stray file nor a row without its file.
"""

import contextlib
import hashlib
import io
import logging
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass

from flask import current_app
from pypdf import PdfReader
from pypdf.errors import PdfReadError
from sqlalchemy import event
from sqlalchemy.orm import Session

from .i18n import _

log = logging.getLogger(__name__)

PENDING_KEY = "uploads_written"


class UploadRefused(Exception):
    """An upload that cannot be accepted; the message is for the person who sent it."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = str(message)


@dataclass(frozen=True)
class StoredFile:
    """Where a checked PDF was written and what it was."""

    stored_name: str
    original_name: str
    size: int
    sha256: str


def display_name(filename):
    """The name to show for an upload: no path parts, no control characters, at most 255 long."""
    name = (filename or "").replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    name = re.sub(r"\s+", " ", name)
    if not name or name in (".", ".."):
        name = "document.pdf"
    if len(name) > 255:
        stem, dot, extension = name.rpartition(".")
        keep = extension if dot and len(extension) <= 10 else ""
        name = (stem if dot else name)[: 255 - len(keep) - 1] + ("." + keep if keep else "")
        name = name[:255]
    return name


def download_name(original_name):
    """The name a stored PDF is downloaded under: the name it was sent with, ending in .pdf.

    The content was checked to be a PDF, so a file sent as 「ok.txt」 or 「noext」 is a PDF
    whatever its name says; the name is kept for display and only gets the extension the
    content has, so that the downloaded file opens in a PDF reader.
    """
    name = original_name or "document.pdf"
    if name.lower().endswith(".pdf"):
        return name
    return name[: 255 - len(".pdf")] + ".pdf"


def check_pdf(content):
    """Refuse anything that is not a readable, unencrypted PDF with at least one page."""
    if not content:
        raise UploadRefused(_("檔案是空的，請重新選擇檔案。"))
    limit_mb = current_app.config["MAX_UPLOAD_MB"]
    if len(content) > limit_mb * 1024 * 1024:
        raise UploadRefused(_("檔案超過 %(mb)s MB 的上限，請壓縮後再上傳。", mb=limit_mb))
    if b"%PDF-" not in content[:1024]:
        raise UploadRefused(_("檔案內容不是 PDF，請上傳 PDF 檔（副檔名改為 .pdf 也無法通過）。"))
    try:
        reader = PdfReader(io.BytesIO(content), strict=False)
        if reader.is_encrypted:
            raise UploadRefused(_("PDF 檔設有密碼或加密，請移除保護後再上傳。"))
        if len(reader.pages) < 1:
            raise UploadRefused(_("PDF 檔沒有任何頁面，請確認檔案內容。"))
    except UploadRefused:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        log.info("unreadable pdf refused: %s", error)
        raise UploadRefused(_("PDF 檔已損壞或無法讀取，請重新產生 PDF 後再上傳。")) from error
    except Exception as error:  # pypdf raises many kinds on hostile input
        log.info("unreadable pdf refused: %r", error)
        raise UploadRefused(_("PDF 檔已損壞或無法讀取，請重新產生 PDF 後再上傳。")) from error


def read_upload(file_storage):
    """The bytes of an uploaded file, refusing a missing file or one over the size limit."""
    if file_storage is None or not file_storage.filename:
        raise UploadRefused(_("請選擇要上傳的 PDF 檔。"))
    limit = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    content = file_storage.stream.read(limit + 1)
    if len(content) > limit:
        raise UploadRefused(
            _("檔案超過 %(mb)s MB 的上限，請壓縮後再上傳。", mb=current_app.config["MAX_UPLOAD_MB"])
        )
    return content


def store_pdf(session, file_storage):
    """Check an uploaded PDF and write it under a generated name; removed again on rollback."""
    content = read_upload(file_storage)
    check_pdf(content)

    token = uuid.uuid4().hex
    stored_name = f"{token[:2]}/{token}.pdf"
    path = path_of(stored_name)
    temporary = path + ".part"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        _remove(temporary)
        log.error("could not store upload %s: %s", stored_name, error)
        raise UploadRefused(
            _("伺服器暫時無法儲存檔案（儲存空間不足或故障），請稍後再試。")
        ) from error

    session.info.setdefault(PENDING_KEY, []).append(path)
    return StoredFile(
        stored_name=stored_name,
        original_name=display_name(file_storage.filename),
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )


def path_of(stored_name):
    """The absolute path of a stored file; refuses names that are not ours."""
    if not re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{32}\.pdf", stored_name or ""):
        raise ValueError("not a stored file name")
    return os.path.join(current_app.config["UPLOAD_FOLDER"], stored_name)


def _remove(path):
    # NotADirectoryError: the folder it would be in could not be made (see store_pdf)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        os.remove(path)


@event.listens_for(Session, "after_commit")
def _keep_written_files(session):
    session.info.pop(PENDING_KEY, None)


@event.listens_for(Session, "after_rollback")
def _remove_written_files(session):
    for path in session.info.pop(PENDING_KEY, []):
        log.info("removing upload of a rolled-back transaction: %s", path)
        _remove(path)
