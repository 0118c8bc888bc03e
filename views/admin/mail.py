"""寄件紀錄 and 通知範本預覽: the outgoing-mail queue, resending, and a preview of each kind."""

import logging

import jinja2
import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import FilterLike
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.orm import joinedload

from admin_app import mailer
from admin_app.extensions import db
from admin_app.i18n import _, _l
from models import Case, MailState, OutgoingMail
from models.notify import ROUND_NAMES, render
from models.operations import record_event
from models.review import Decision, ReviewAssignment, Verdict

from .base import EqualsFilter, StaffAccess, StaffModelView, enum_filter, link
from .cases import details_url

log = logging.getLogger(__name__)

# the list's filters, in this order: the case page links to the list filtered by case
STATE_FILTER, CASE_FILTER, RECIPIENT_FILTER = 0, 1, 2

KIND_LABELS = {
    "submitted": _l("已送出（收件通知）"),
    "returned": _l("形式審查退件"),
    "passed": _l("審查通過"),
    "revision_requested": _l("修正後複審"),
    "failed": _l("未通過"),
    "appeal_filed": _l("申復收件"),
    "appeal_accepted": _l("申復受理"),
    "appeal_not_accepted": _l("申復未受理"),
    "appeal_upheld": _l("申復成立"),
    "appeal_dismissed": _l("申復不成立"),
    "certified": _l("核發認證證號"),
    "announced": _l("認證公告"),
    "reviewer_assigned": _l("委員審查指派"),
    "reviewer_reminder": _l("委員審查到期提醒"),
}
REVIEWER_KINDS = frozenset({"reviewer_assigned", "reviewer_reminder"})


def kind_label(kind):
    """The Chinese name of a kind of message; an unnamed kind as it is stored."""
    label = KIND_LABELS.get(kind)
    return str(label) if label is not None else kind


def mail_list_url(case_id):
    """The mail list filtered by one case."""
    return url_for("mail.index_view", **{f"flt0_{CASE_FILTER}": case_id})


def resend_mails(ids):
    """Queue the failed ones of `ids` again, audit it, commit; flash what was done."""
    ids = sorted({int(value) for value in ids if str(value).isdigit()})
    failed_ids = db.session.scalars(
        sa.select(OutgoingMail.id).where(
            OutgoingMail.id.in_(ids), OutgoingMail.state == MailState.failed
        )
    ).all()
    queued = mailer.resend(failed_ids) if failed_ids else 0
    if queued:
        numbers = "、".join(f"#{number}" for number in sorted(failed_ids))
        record_event(
            None, "resend_mail", current_user, comment=_("重新寄送郵件 %(ids)s", ids=numbers)
        )
    db.session.commit()
    skipped = len(ids) - queued
    flash(
        _(
            "已將 %(queued)d 封郵件重新排入寄送佇列；"
            "%(skipped)d 封不是寄送失敗的郵件，未重新寄送。",
            queued=queued,
            skipped=skipped,
        ),
        "success" if queued else "warning",
    )
    return queued


def _body(view, context, mail, name):
    return Markup('<pre class="mail-body">{}</pre>').format(mail.body)


class OutgoingMailView(StaffModelView):
    """寄件紀錄: every queued e-mail with its delivery state; failed ones can be sent again."""

    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    details_template = "admin/mail_details.html"
    audit_changes = False

    column_list = [
        "created_at",
        "case_id",
        "recipient",
        "subject",
        "state",
        "attempts",
        "last_error",
        "sent_at",
    ]
    column_details_list = [
        "id",
        "created_at",
        "case_id",
        "kind",
        "recipient",
        "subject",
        "state",
        "attempts",
        "last_error",
        "next_attempt_at",
        "sent_at",
        "body",
    ]
    column_labels = {
        "id": _l("編號"),
        "created_at": _l("建立時間"),
        "case_id": _l("案件"),
        "kind": _l("通知類別"),
        "recipient": _l("收件人"),
        "subject": _l("主旨"),
        "state": _l("狀態"),
        "attempts": _l("嘗試次數"),
        "last_error": _l("最後錯誤"),
        "next_attempt_at": _l("下次嘗試時間"),
        "sent_at": _l("寄出時間"),
        "body": _l("內文"),
    }
    column_searchable_list = ["recipient", "subject"]
    column_sortable_list = ["created_at", "case_id", "recipient", "state", "attempts", "sent_at"]
    column_default_sort = [("created_at", True), ("id", True)]
    column_filters = [
        enum_filter(OutgoingMail.state, _l("狀態"), MailState),
        EqualsFilter(OutgoingMail.case_id, _l("案號")),
        FilterLike(OutgoingMail.recipient, _l("收件人")),
    ]
    column_formatters = {
        "case_id": lambda view, context, mail, name: (
            link(details_url(mail.case_id), f"#{mail.case_id}") if mail.case_id else ""
        ),
        "kind": lambda view, context, mail, name: kind_label(mail.kind),
        "body": _body,
    }

    def _handle_view(self, name, **kwargs):
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        # the rows are written by the decisions and the mail worker only; resending is an action
        if name in {"create_view", "edit_view", "delete_view", "ajax_update"}:
            abort(403)
        return None

    @action(
        "resend",
        _l("重新寄送"),
        _l("確定要重新寄送選取的郵件嗎？只有寄送失敗的郵件會重新排入佇列。"),
    )
    def action_resend(self, ids):
        """Queue the selected failed mails again."""
        resend_mails(ids)

    @expose("/resend/", methods=["POST"])
    def resend_one(self):
        """The 重新寄送 button of one failed mail's page."""
        mail_id = request.form.get("id", type=int)
        resend_mails([mail_id] if mail_id else [])
        return redirect(url_for(".details_view", id=mail_id) if mail_id else url_for(".index_view"))


class NotifyPreviewView(StaffAccess, BaseView):
    """通知範本預覽: each kind of message rendered for a real case, nothing written or sent."""

    @expose("/")
    def index(self):
        """The kinds, a case number to type, and the chosen kind rendered for that case."""
        kinds = [(kind, kind_label(kind)) for kind in message_kinds()]
        kind = request.args.get("kind", "")
        raw_case_id = request.args.get("case_id", "").strip()
        preview, error = None, None
        if kind or raw_case_id:
            preview, error = self._preview(kind, raw_case_id, {name for name, _label in kinds})
        return self.render(
            "admin/notify_preview.html",
            kinds=kinds,
            kind=kind,
            case_id=raw_case_id,
            preview=preview,
            error=error,
        )

    def _preview(self, kind, raw_case_id, known_kinds):
        if kind not in known_kinds:
            return None, _("請選擇通知類別。")
        if not raw_case_id.isdigit():
            return None, _("請輸入案號（數字）。")
        case = db.session.scalar(
            sa.select(Case)
            .where(Case.id == int(raw_case_id))
            .options(joinedload(Case.cycle), joinedload(Case.applicant))
        )
        if case is None:
            return None, _("找不到案號 %(id)s 的案件，請確認案號。", id=raw_case_id)
        context, error = preview_context(kind, case)
        if error:
            return None, error
        try:
            subject, body = render(kind, case=case, cycle=case.cycle, **context)
        except (jinja2.TemplateError, TypeError, AttributeError, ValueError) as exc:
            log.info("preview of %s for case %s failed: %s", kind, case.id, exc)
            return None, _(
                "案件 #%(id)s 目前缺少這類通知需要的資料，無法預覽（%(reason)s）。",
                id=case.id,
                reason=str(exc),
            )
        recipient = context["user"]
        return {
            "case": case,
            "recipient": recipient,
            "subject": subject,
            "body": body,
            "notes": missing_notes(kind, case),
        }, None


def missing_notes(kind, case):
    """What this case does not have yet that the kind's text shows, as sentences for staff."""
    notes = []
    if kind in ("certified", "announced") and not case.certificate_number:
        notes.append(
            _("此案件尚未核發證號，預覽內文中的證號不是實際證號；實際寄出時會帶入核發的證號。")
        )
    if kind == "announced" and case.announced_at is None:
        notes.append(_("此案件尚未公告，內文中的公告日期顯示為空。"))
    if kind == "failed" and case.appeal_deadline is None:
        notes.append(_("此案件沒有申復期限，內文中的申復截止時間顯示為空。"))
    return notes


def message_kinds():
    """Every kind of message: the templates in mail/, partials (_name.txt) left out."""
    names = current_app.jinja_env.list_templates(
        filter_func=lambda name: name.startswith("mail/") and name.endswith(".txt")
    )
    kinds = {name[len("mail/") : -len(".txt")] for name in names}
    kinds = {kind for kind in kinds if not kind.startswith("_") and "/" not in kind}
    ordered = [kind for kind in KIND_LABELS if kind in kinds]
    return ordered + sorted(kinds - set(ordered))


def preview_context(kind, case):
    """What `kind`'s template needs beyond user, case and cycle, as the notify function gives it.

    Returns (context, error): error is a Chinese sentence when the case lacks what is needed.
    """
    round_name = ROUND_NAMES.get(case.round, ROUND_NAMES[1])
    if kind in REVIEWER_KINDS:
        assignment = db.session.scalar(
            sa.select(ReviewAssignment)
            .where(ReviewAssignment.case_id == case.id)
            .options(joinedload(ReviewAssignment.reviewer))
            .order_by(ReviewAssignment.round.desc(), ReviewAssignment.id)
            .limit(1)
        )
        if assignment is None:
            return None, _("案件 #%(id)s 尚未指派審查委員，無法預覽委員通知。", id=case.id)
        return {
            "user": assignment.reviewer,
            "assignment": assignment,
            "round_name": ROUND_NAMES[assignment.round],
        }, None
    context = {"user": case.applicant}
    if kind == "passed":
        verdict = db.session.scalar(
            sa.select(Verdict)
            .where(Verdict.case_id == case.id, Verdict.undone_at.is_(None))
            .order_by(Verdict.decided_at.desc(), Verdict.id.desc())
            .limit(1)
        )
        decision = verdict.decision if verdict is not None else Decision.passed
        if decision not in (Decision.passed, Decision.passed_after_revision):
            decision = Decision.passed
        context.update(decision=decision, round_name=round_name)
    elif kind == "failed":
        context["round_name"] = round_name
    return context, None
