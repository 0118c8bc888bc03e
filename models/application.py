"""What a candidate does to the content of an application: open it, upload, fill records, submit.

State changes go through `operations.transition`; this module checks the content rules first
(eligibility, completeness, the intake window) and never commits.
"""

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from admin_app.extensions import db
from admin_app.i18n import _, now_utc
from admin_app.storage import UploadRefused, store_pdf

from . import form_schema, notify
from .case import ApplicationItem, Case, CaseState, Document, DocumentKind, FormEntry, ItemKind
from .cycle import Cycle, unmet_rules
from .operations import TransitionRefused, record_event, transition
from .templates import FormTemplate, FormTemplateVersion, RecordKind

log = logging.getLogger(__name__)

UPLOAD_KINDS = {
    ApplicationItem.public_teaching: DocumentKind.public_teaching,
    ApplicationItem.community: DocumentKind.community,
    ApplicationItem.checklist: DocumentKind.checklist,
}


class ApplicationRefused(TransitionRefused):
    """A change to an application that the rules do not allow now."""


@dataclass
class ItemStatus:
    """One of the six items as the candidate sees it on the application page."""

    item: ApplicationItem
    document: Document | None = None
    entry: FormEntry | None = None
    is_next: bool = False

    @property
    def filled(self):
        return self.document is not None or self.entry is not None

    @property
    def status_label(self):
        return _("編輯") if self.filled else _("新增")


def current_cycle(moment=None):
    """The cycle open for applications now, or else the one that opened most recently."""
    moment = moment or now_utc()
    open_cycle = db.session.scalar(
        sa.select(Cycle).where(Cycle.opens_at <= moment, Cycle.closes_at > moment).limit(1)
    )
    if open_cycle is not None:
        return open_cycle
    return db.session.scalar(sa.select(Cycle).order_by(Cycle.opens_at.desc()).limit(1))


def find_case(user, cycle):
    """The person's case in the cycle, if any."""
    return db.session.scalar(
        sa.select(Case).where(Case.cycle_id == cycle.id, Case.applicant_id == user.id)
    )


def open_case(user, cycle):
    """The person's case in the cycle, created as a draft if they are eligible."""
    case = find_case(user, cycle)
    if case is not None:
        return case

    if unmet_rules(user, cycle):
        raise ApplicationRefused(_("您尚未符合申請資格，請先查看資格檢核結果。"))
    if not cycle.is_open():
        raise ApplicationRefused(_("目前不在申請期間內（%(window)s）。", window=cycle.window_label))

    school = user.school
    case = Case(
        cycle=cycle,
        applicant=user,
        school_id=school.id if school else None,
        county_id=school.county_id if school else None,
        state=CaseState.draft,
        round=1,
    )
    try:
        with db.session.begin_nested():
            db.session.add(case)
    except IntegrityError:
        # another tab opened it at the same moment
        return find_case(user, cycle)
    record_event(case, "open_case", user)
    return case


def effective_documents(case, round_=None):
    """The current document of each upload kind, the latest round up to the given one winning."""
    round_ = round_ or case.edit_round
    rows = db.session.scalars(
        sa.select(Document)
        .where(
            Document.case_id == case.id,
            Document.superseded_at.is_(None),
            Document.round <= round_,
            Document.kind != DocumentKind.appeal,
        )
        .order_by(Document.round)
    )
    return {document.kind: document for document in rows}


def effective_entries(case, round_=None):
    """The record of each item, the latest round up to the given one winning."""
    round_ = round_ or case.edit_round
    rows = db.session.scalars(
        sa.select(FormEntry)
        .where(FormEntry.case_id == case.id, FormEntry.round <= round_)
        .order_by(FormEntry.round)
    )
    return {entry.item: entry for entry in rows}


def item_statuses(case):
    """The six items in order with what is filled and which one to do next."""
    documents = effective_documents(case)
    entries = effective_entries(case)

    statuses = []
    for item in ApplicationItem:
        if item.kind is ItemKind.upload:
            statuses.append(ItemStatus(item, document=documents.get(UPLOAD_KINDS[item])))
        else:
            statuses.append(ItemStatus(item, entry=entries.get(item)))

    for status in statuses:
        if not status.filled:
            status.is_next = True
            break
    return statuses


def _require_editable(case, user):
    if not case.belongs_to(user):
        raise ApplicationRefused(_("您沒有權限修改此申請。"))
    if not case.is_editable:
        raise ApplicationRefused(
            _("此申請目前為「%(status)s」，無法修改。", status=case.status_label)
        )


def attach_document(case, item, file_storage, user):
    """Store an uploaded PDF for an upload item; an earlier file of the same round is kept."""
    _require_editable(case, user)
    kind = UPLOAD_KINDS[item]

    try:
        stored = store_pdf(db.session, file_storage)
    except UploadRefused as refusal:
        raise ApplicationRefused(refusal.message) from refusal

    round_ = case.edit_round
    db.session.execute(
        sa.update(Document)
        .where(
            Document.case_id == case.id,
            Document.kind == kind,
            Document.round == round_,
            Document.superseded_at.is_(None),
        )
        .values(superseded_at=now_utc())
        .execution_options(synchronize_session=False)
    )
    document = Document(
        case_id=case.id,
        kind=kind,
        round=round_,
        original_name=stored.original_name,
        stored_name=stored.stored_name,
        size=stored.size,
        sha256=stored.sha256,
        uploaded_by_id=user.id,
    )
    db.session.add(document)
    record_event(case, "upload_document", user, comment=f"{kind.label}：{stored.original_name}")
    db.session.flush()
    return document


def templates_for(item):
    """The active templates the candidate can choose from for a record item."""
    return db.session.scalars(
        sa.select(FormTemplate)
        .where(FormTemplate.kind == RecordKind(item.value), FormTemplate.active.is_(True))
        .order_by(FormTemplate.sort_order, FormTemplate.id)
    ).all()


def save_record(case, item, template_version, formdata, user):
    """Validate and store a record; returns (entry, errors) and stores nothing if errors."""
    _require_editable(case, user)
    if template_version.template.kind.value != item.value:
        raise ApplicationRefused(_("所選的紀錄表範本不適用於此項目。"))

    others = {
        other.value: (str(other.label), entry.template_version.fields, entry.data)
        for other, entry in effective_entries(case).items()
        if other is not item
    }
    data, errors = form_schema.parse_submission(template_version.fields, formdata, others)
    if errors:
        return None, errors

    round_ = case.edit_round
    entry = db.session.scalar(
        sa.select(FormEntry).where(
            FormEntry.case_id == case.id, FormEntry.item == item, FormEntry.round == round_
        )
    )
    if entry is None:
        entry = FormEntry(case_id=case.id, item=item, round=round_)
        db.session.add(entry)
    entry.template_version_id = template_version.id
    entry.data = data
    entry.updated_by_id = user.id
    entry.updated_at = now_utc()
    record_event(case, "save_record", user, comment=f"{item.label}：{template_version}")
    db.session.flush()
    return entry, {}


def missing_items(case, statuses=None):
    """Labels of the items still to be filled before the case can be submitted.

    `statuses` are the case's `item_statuses` when the caller already has them.
    """
    statuses = item_statuses(case) if statuses is None else statuses
    return [status.item.label for status in statuses if not status.filled]


def can_submit(case, user, statuses=None):
    """Guard for the 送出 button: the candidate's own, editable, complete case."""
    return case.belongs_to(user) and case.is_editable and not missing_items(case, statuses)


def submit_application(case, user):
    """Send the application to formal review (first submission or after a return)."""
    if not case.belongs_to(user):
        raise ApplicationRefused(_("您沒有權限送出此申請。"))
    if not case.is_editable:
        # a second click or a stale page: the file has already gone to the centre
        raise ApplicationRefused(
            _("此申請已送出，目前狀態為「%(status)s」，無須再次送出。", status=case.status_label)
        )
    if case.state is CaseState.revision_requested:
        return submit_revision(case, user)
    _require_complete(case)
    if case.state is CaseState.draft and not case.cycle.is_open():
        raise ApplicationRefused(
            _("申請期間已結束（%(window)s），無法送出。", window=case.cycle.window_label)
        )
    values = {"submitted_at": now_utc()} if case.submitted_at is None else {}
    event = transition(case, "submit", user, values=values)
    notify.submitted(case, event)
    return event


def submit_revision(case, user):
    """Send the revised application for the second round (送出複審資料)."""
    _require_complete(case)
    event = transition(case, "submit_revision", user)
    notify.submitted(case, event)
    return event


def _require_complete(case):
    missing = missing_items(case)
    if missing:
        raise ApplicationRefused(
            _("尚有項目未完成：%(items)s。", items="、".join(str(label) for label in missing))
        )


def template_version(version_id):
    """A template version by id, or None."""
    return db.session.get(FormTemplateVersion, version_id)
