"""案件: the list of applications, and the one page a clerk reads to check a case."""

from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import g, request, url_for
from flask_admin import expose
from flask_admin.helpers import get_redirect_target
from sqlalchemy.orm import joinedload, selectinload

from admin_app.extensions import db
from admin_app.i18n import _, _l, roc_datetime
from models import (
    ApplicationItem,
    AuditEvent,
    Case,
    CaseState,
    Cycle,
    Document,
    DocumentKind,
    FormEntry,
    ItemKind,
    Notification,
    OutgoingMail,
    state_label,
)
from models.application import UPLOAD_KINDS, current_cycle
from models.audit import action_label
from models.form_schema import render_readable
from models.operations import TRANSITIONS
from models.people import County

from .base import (
    EqualsFilter,
    LazyOptions,
    StaffModelView,
    enum_filter,
    link,
    not_found,
    round_filter,
    round_label,
)
from .case_workflow import CaseWorkflowMixin, case_page_workflow


def cycle_options():
    """Every intake cycle, newest first, for a filter."""
    cycles = db.session.scalars(sa.select(Cycle).order_by(Cycle.academic_year.desc()))
    return [(str(cycle.id), cycle.name) for cycle in cycles]


def county_options():
    """The 22 counties in their usual order, for a filter."""
    counties = db.session.scalars(sa.select(County).order_by(County.sort_order))
    return [(str(county.id), county.name) for county in counties]


def list_cells(cases):
    """{case id: {column of `CaseView.column_list`: what its cell shows}} for a page of the list.

    Worked out here rather than cell by cell in the template through Flask-Admin's formatters:
    each label is translated once per page instead of once per row, and the template has one
    lookup per cell; the list page takes about a fifth less time.
    """
    years, positions, statuses = {}, {}, {}
    cells = {}
    for case in cases:
        url = details_url(case.id)
        applicant = case.applicant
        if case.cycle_id not in years:
            years[case.cycle_id] = _("%(year)s 學年度", year=case.cycle.academic_year)
        position = applicant.position
        if position not in positions:
            positions[position] = str(position.label) if position else ""
        status = (case.state, case.round, case.appeal_lapsed)
        if status not in statuses:
            statuses[status] = str(case.status_label)
        cells[case.id] = {
            "id": link(url, f"#{case.id}"),
            "cycle": years[case.cycle_id],
            "county": case.county.name if case.county else "",
            "school": case.school.name if case.school else "",
            "applicant": link(url, str(applicant)),
            "applicant.position": positions[position],
            "status_label": statuses[status],
            "submitted_at": roc_datetime(case.submitted_at) if case.submitted_at else "",
        }
    return cells


def details_url(case_id):
    """The case page's address; its base is built once per request (two links per list row)."""
    base = g.get("case_details_base")
    if base is None:
        base = g.case_details_base = url_for("case.details_view")
    return f"{base}?id={case_id}"


def size_text(size):
    """A file size as people read it: 820 KB, 1.4 MB."""
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


@dataclass
class ItemSection:
    """One of the six items on the case page, with every file or record of every round."""

    item: ApplicationItem
    documents: list = field(default_factory=list)
    entries: list = field(default_factory=list)
    in_use_ids: set = field(default_factory=set)

    @property
    def is_upload(self):
        return self.item.kind is ItemKind.upload


@dataclass(frozen=True)
class EventRow:
    """One line of the audit trail as a clerk reads it."""

    event: AuditEvent
    action: str
    change: str


def item_sections(case, documents, entries):
    """The six items in order, each with its files or records and which one review uses."""
    sections = []
    for item in ApplicationItem:
        section = ItemSection(item)
        if section.is_upload:
            kind = UPLOAD_KINDS[item]
            section.documents = [doc for doc in documents if doc.kind is kind]
            current = [doc for doc in section.documents if doc.superseded_at is None]
            usable = [doc for doc in current if doc.round <= case.edit_round]
            if usable:
                section.in_use_ids = {max(usable, key=lambda doc: doc.round).id}
        else:
            section.entries = [entry for entry in entries if entry.item is item]
            usable = [entry for entry in section.entries if entry.round <= case.edit_round]
            if usable:
                section.in_use_ids = {max(usable, key=lambda entry: entry.round).id}
        sections.append(section)
    return sections


def event_rows(events):
    """The audit trail with action names and 'from → to' state labels."""
    rows = []
    for event in events:
        change = ""
        if event.from_state is not None and event.to_state is not None:
            transition = TRANSITIONS.get(event.action)
            to_round = (transition.next_round if transition else None) or event.round
            before = state_label(event.from_state, event.round)
            change = f"{before} → {state_label(event.to_state, to_round)}"
        rows.append(EventRow(event, action_label(event.action), change))
    return rows


# the states staff act on, in the order of the process; None: both rounds in one queue
WORK_QUEUES = (
    (CaseState.formal_review, 1),
    (CaseState.awaiting_assignment, 1),
    (CaseState.awaiting_assignment, 2),
    (CaseState.under_review, None),
    (CaseState.awaiting_verdict, 1),
    (CaseState.awaiting_verdict, 2),
    (CaseState.appeal_filed, None),
    (CaseState.appeal_review, None),
    (CaseState.passed, None),
    (CaseState.certified, None),
)


def work_queues(cycle):
    """The queues staff work through in a cycle, each (label, count, list filter arguments)."""
    found = {}
    if cycle is not None:
        rows = db.session.execute(
            sa.select(Case.state, Case.round, sa.func.count())
            .where(Case.cycle_id == cycle.id)
            .group_by(Case.state, Case.round)
        ).all()
        found = {(state, round_): count for state, round_, count in rows}
    queues = []
    for state, round_ in WORK_QUEUES:
        arguments = {"flt0_0": cycle.id} if cycle is not None else {}
        arguments["flt1_2"] = state.value
        if round_ is not None:
            arguments["flt2_3"] = round_
            count = found.get((state, round_), 0)
        else:
            count = sum(n for (each, _round), n in found.items() if each is state)
        label = state_label(state, round_) if round_ is not None else state.label
        queues.append((str(label), count, arguments))
    return queues


class CaseView(CaseWorkflowMixin, StaffModelView):
    """案件: every application; created by applicants, moved on only by the workflow."""

    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    # the case number and the name already link to the case page; an icon per row would only
    # cost another URL to build and another macro to render on every row
    column_display_actions = False
    list_template = "admin/case_list.html"
    details_template = "admin/case_details.html"

    column_list = [
        "id",
        "cycle",
        "county",
        "school",
        "applicant",
        "applicant.position",
        "status_label",
        "submitted_at",
    ]
    column_labels = {
        "id": _l("案號"),
        "cycle": _l("學年度"),
        "county": _l("縣市"),
        "school": _l("學校"),
        "applicant": _l("申請人"),
        "applicant.position": _l("職別"),
        "applicant.name": _l("申請人姓名"),
        "applicant.login": _l("申請人帳號"),
        "school.name": _l("學校名稱"),
        "status_label": _l("狀態"),
        "submitted_at": _l("送出日期"),
    }
    column_searchable_list = ["applicant.name", "applicant.login", "school.name"]
    column_sortable_list = [
        "id",
        ("cycle", "cycle.academic_year"),
        ("county", "county.sort_order"),
        ("school", "school.name"),
        ("applicant", "applicant.name"),
        ("status_label", "state"),
        "submitted_at",
    ]
    column_default_sort = ("submitted_at", True)
    column_filters = [
        EqualsFilter(Case.cycle_id, _l("梯次"), options=LazyOptions(cycle_options)),
        EqualsFilter(Case.county_id, _l("縣市"), options=LazyOptions(county_options)),
        enum_filter(Case.state, _l("狀態"), CaseState),
        round_filter(Case.round, _l("審查輪次")),
    ]
    # Flask-Admin would join them into the list query itself (see get_query)
    column_auto_select_related = False

    def get_query(self):
        # the page's people, schools and cycles come in four small queries of 50 ids each;
        # joined into the list query they made PostgreSQL join every matching case (and plan
        # a seven-table join) before it could sort and cut out the page
        return (
            super()
            .get_query()
            .options(
                selectinload(Case.cycle),
                # the list shows the applicant's name and position and the school's name, not
                # the school and county that a User and a School otherwise bring along
                selectinload(Case.applicant).lazyload("*"),
                selectinload(Case.school).lazyload("*"),
                selectinload(Case.county),
            )
        )

    def _order_by(self, query, joins, sort_joins, sort_field, sort_desc):
        # drafts have no submission date: keep them after the submitted cases on every database
        if sort_field is Case.submitted_at:
            order = Case.submitted_at.desc() if sort_desc else Case.submitted_at.asc()
            return query.order_by(order.nulls_last(), Case.id.desc()), joins
        query, joins = super()._order_by(query, joins, sort_joins, sort_field, sort_desc)
        return query.order_by(Case.id), joins

    def get_list(self, *args, **kwargs):
        count, cases = super().get_list(*args, **kwargs)
        # the template prints these cells as they are (see case_list.html)
        self._template_args["list_cells"] = list_cells(cases)
        return count, cases

    @expose("/")
    def index_view(self):
        """The list, with a link to each work queue of the current cycle above it."""
        cycle = current_cycle()
        self._template_args["queue_cycle"] = cycle
        self._template_args["queues"] = work_queues(cycle)
        self._template_args["select_case_title"] = _("選取此案件")
        return super().index_view()

    @expose("/details/")
    def details_view(self):
        """The whole case on one page: applicant, next step, rounds, six items, audit trail."""
        return self.case_page(request.args.get("id", type=int))

    def case_page(self, case_id, typed=None):
        """The case page; `typed` is a refused step's input, shown again in its form."""
        from .mail import kind_label, mail_list_url  # mail.py links its rows to this page

        return_url = get_redirect_target() or self.get_url(".index_view")
        case = db.session.scalar(
            sa.select(Case)
            .where(Case.id == case_id)
            .options(
                joinedload(Case.cycle),
                joinedload(Case.applicant),
                joinedload(Case.school),
                joinedload(Case.county),
            )
        )
        if case is None:
            return not_found(_("找不到這個案件，可能網址有誤。"), _("找不到案件"))

        documents = db.session.scalars(
            sa.select(Document)
            .where(Document.case_id == case.id)
            .options(joinedload(Document.uploaded_by))
            .order_by(Document.round, Document.uploaded_at, Document.id)
        ).all()
        entries = db.session.scalars(
            sa.select(FormEntry)
            .where(FormEntry.case_id == case.id)
            .options(joinedload(FormEntry.template_version))
            .order_by(FormEntry.round)
        ).all()
        events = db.session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.case_id == case.id)
            .options(joinedload(AuditEvent.actor))
            .order_by(AuditEvent.created_at, AuditEvent.id)
        ).all()

        # the section 通知與郵件: one query each, however many were sent
        notifications = db.session.scalars(
            sa.select(Notification)
            .where(Notification.case_id == case.id)
            .options(joinedload(Notification.user))
            .order_by(Notification.created_at.desc(), Notification.id.desc())
        ).all()
        mails = db.session.scalars(
            sa.select(OutgoingMail)
            .where(OutgoingMail.case_id == case.id)
            .order_by(OutgoingMail.created_at.desc(), OutgoingMail.id.desc())
        ).all()

        return self.render(
            self.details_template,
            case=case,
            notifications=notifications,
            mails=mails,
            mail_list_url=mail_list_url(case.id),
            kind_label=kind_label,
            sections=item_sections(case, documents, entries),
            appeal_documents=[doc for doc in documents if doc.kind is DocumentKind.appeal],
            readable={
                entry.id: render_readable(entry.template_version.fields, entry.data)
                for entry in entries
            },
            events=event_rows(events),
            round_label=round_label,
            size_text=size_text,
            return_url=return_url,
            **case_page_workflow(case, typed),
        )
