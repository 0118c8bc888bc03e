"""上傳文件 and 稽核紀錄: what candidates uploaded and what everyone did, read-only."""

import logging
import os

from flask import send_file, url_for
from flask_admin import expose
from sqlalchemy.orm import joinedload

from admin_app.extensions import db
from admin_app.i18n import _, _l
from admin_app.storage import download_name, path_of
from models import AuditEvent, Case, CaseState, Document, DocumentKind
from models.audit import action_label, every_action

from .base import (
    EqualsFilter,
    LazyOptions,
    ReadOnlyView,
    enum_filter,
    link,
    not_found,
    round_filter,
    round_label,
)
from .cases import county_options, cycle_options, details_url, size_text

log = logging.getLogger(__name__)


def _case_link(view, context, row, name):
    return link(details_url(row.case_id), str(row.case)) if row.case_id else ""


class DocumentView(ReadOnlyView):
    """上傳文件: every uploaded PDF, each downloadable by staff."""

    column_list = [
        "id",
        "case",
        "kind",
        "round",
        "original_name",
        "size",
        "uploaded_at",
        "superseded_at",
        "download",
    ]
    column_labels = {
        "id": _l("編號"),
        "case": _l("案件"),
        "case.applicant.name": _l("申請人姓名"),
        "kind": _l("文件類別"),
        "round": _l("輪次"),
        "original_name": _l("檔名"),
        "size": _l("大小"),
        "uploaded_at": _l("上傳時間"),
        "superseded_at": _l("被取代時間"),
        "download": _l("下載"),
    }
    column_searchable_list = ["original_name", "case.applicant.name"]
    column_sortable_list = ["id", "kind", "round", "original_name", "size", "uploaded_at"]
    column_default_sort = ("uploaded_at", True)
    column_filters = [
        enum_filter(Document.kind, _l("文件類別"), DocumentKind),
        round_filter(Document.round, _l("輪次")),
        EqualsFilter(Case.cycle_id, _l("梯次"), options=LazyOptions(cycle_options)),
        EqualsFilter(Case.county_id, _l("縣市"), options=LazyOptions(county_options)),
    ]
    column_formatters = {
        "case": _case_link,
        "round": lambda view, context, document, name: round_label(document.round),
        "size": lambda view, context, document, name: size_text(document.size),
        "download": lambda view, context, document, name: link(
            url_for("document.download", document_id=document.id), _("下載")
        ),
    }

    def get_query(self):
        return super().get_query().options(joinedload(Document.case))

    @expose("/download/<int:document_id>/")
    def download(self, document_id):
        """The stored PDF under the name it was uploaded with."""
        document = db.session.get(Document, document_id)
        if document is None:
            return not_found(_("找不到這份文件，可能網址有誤。"), _("找不到檔案"))

        try:
            path = path_of(document.stored_name)
        except ValueError:
            path = None
        if path is None or not os.path.isfile(path):
            log.error("document %s: stored file %s is missing", document.id, document.stored_name)
            return not_found(
                _(
                    "「%(name)s」的檔案不在伺服器上，無法下載。請洽系統管理員。",
                    name=document.original_name,
                ),
                _("找不到檔案"),
            )

        return send_file(
            path,
            mimetype="application/pdf",
            as_attachment=True,
            download_name=download_name(document.original_name),
        )


class AuditEventView(ReadOnlyView):
    """稽核紀錄: rows are only ever added by the system; nobody edits or deletes them here."""

    column_list = [
        "created_at",
        "actor",
        "case",
        "action",
        "from_state",
        "to_state",
        "round",
        "comment",
        "remote_addr",
    ]
    column_labels = {
        "created_at": _l("時間"),
        "actor": _l("操作者"),
        "actor.name": _l("操作者姓名"),
        "actor.login": _l("操作者帳號"),
        "case": _l("案件"),
        "action": _l("動作"),
        "from_state": _l("原狀態"),
        "to_state": _l("新狀態"),
        "round": _l("輪次"),
        "comment": _l("意見或說明"),
        "remote_addr": _l("來源位址"),
    }
    column_searchable_list = ["actor.name", "actor.login", "comment"]
    column_sortable_list = ["created_at", "action"]
    column_default_sort = [("created_at", True), ("id", True)]
    column_filters = [
        EqualsFilter(AuditEvent.action, _l("動作"), options=LazyOptions(every_action), convert=str),
        enum_filter(AuditEvent.to_state, _l("新狀態"), CaseState),
        EqualsFilter(AuditEvent.case_id, _l("案號")),
    ]
    column_formatters = {
        "actor": lambda view, context, event, name: str(event.actor) if event.actor else _("系統"),
        "case": _case_link,
        "action": lambda view, context, event, name: action_label(event.action),
        "round": lambda view, context, event, name: round_label(event.round),
    }

    def get_query(self):
        return (
            super().get_query().options(joinedload(AuditEvent.actor), joinedload(AuditEvent.case))
        )
