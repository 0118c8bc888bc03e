"""The teacher portal: profile, eligibility, the six items, submission, the flow chart, the
review comments, the appeal and the inbox.

Every page works on the logged-in candidate's own case, found through `current_user`, never
through an id the browser sends; an id-bearing URL (a document, a past case, a message) is
checked against the person and answers 404 for anyone else. Each POST calls one function of
`models.application` (or `models.workflow` for an appeal), commits once, and on a refusal rolls
back and shows the refusal's message; opening a message marks it read. What the candidate
reads of the committee's work never carries a reviewer's or a staff member's name: reviews are
numbered 委員一, 委員二.
"""

import io
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import quote

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import BuildError

from admin_app import storage
from admin_app.extensions import db
from admin_app.i18n import _, _l, now_utc, roc_moment
from admin_app.security import roles_required
from exports import blank_forms
from models import (
    AppealOutcome,
    ApplicationItem,
    AuditEvent,
    Case,
    CaseState,
    Document,
    ItemKind,
    Notification,
    ReviewAssignment,
    Role,
    Verdict,
    form_schema,
    state_label,
    unmet_rules,
    workflow,
)
from models import application as app_ops
from models.operations import TRANSITIONS, TransitionRefused

log = logging.getLogger(__name__)
blueprint = Blueprint("portal", __name__)

applicant_required = roles_required(Role.applicant)

UPLOAD_ITEMS = {item.value: item for item in ApplicationItem if item.kind is ItemKind.upload}
RECORD_ITEMS = {item.value: item for item in ApplicationItem if item.kind is ItemKind.record}

# the flow chart's boxes: (key, label); a key is a state, or a state and round where the
# label depends on the round
MAIN_STEPS = (
    ("draft", "填寫中"),
    ("formal_review", "形式審查"),
    ("awaiting_assignment-1", "初審分發委員"),
    ("under_review-1", "初審（委員審查中）"),
    ("awaiting_verdict-1", "初審判定"),
)
REVISION_STEPS = (
    ("revision_requested", "修正後複審"),
    ("awaiting_assignment-2", "複審分發委員"),
    ("under_review-2", "複審（委員審查中）"),
    ("awaiting_verdict-2", "複審判定"),
)
PASS_STEPS = (
    ("passed", "通過可產證"),
    ("certified", "已發證"),
    ("announced", "已公告"),
)
APPEAL_STEPS = (
    ("failed", "未通過（可申復）"),
    ("appeal_filed", "申復申請中"),
    ("appeal_review", "申復審查中"),
    ("closed", "未通過"),
)
ROUND_STATES = (
    CaseState.awaiting_assignment,
    CaseState.under_review,
    CaseState.awaiting_verdict,
)
ROUND_NAMES = {1: _l("初審"), 2: _l("複審")}
# reviewers are shown to the candidate by number only, in the order they were assigned
REVIEWER_NUMERALS = "一二三四五六七八九十"
APPEAL_DECISIONS = ("accept_appeal", "reject_appeal", "uphold_appeal", "dismiss_appeal")
# outcomes whose comment is written for the candidate; a 受理 note stays with the centre
PUBLIC_APPEAL_OUTCOMES = (AppealOutcome.not_accepted, AppealOutcome.upheld, AppealOutcome.dismissed)
MESSAGES_PER_PAGE = 30


def hours_text(value):
    """Hours without a trailing .0: 12, 12.5."""
    return f"{Decimal(value).normalize():f}"


blueprint.add_app_template_filter(hours_text, "hours")


blueprint.add_app_template_filter(roc_moment, "roc_moment")


@blueprint.app_context_processor
def inbox_badge():
    """The header's unread-message count, computed only where a page asks for it."""
    return {"unread_message_count": unread_message_count}


def unread_message_count():
    """How many of the logged-in person's messages are unread (the header asks once a page)."""
    if not current_user.is_authenticated:
        return 0
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(
            Notification.user_id == current_user.id,
            Notification.read_at.is_(None),
            Notification.withdrawn_at.is_(None),
        )
    )


# --- helpers --------------------------------------------------------------------------------


def _step_key(state, round_):
    """The flow-chart box a state (in a round) belongs to."""
    if state in ROUND_STATES:
        return f"{state.value}-{round_}"
    return state.value


def _own_current_case():
    """The candidate's case in the current cycle, or None; also returns the cycle."""
    cycle = app_ops.current_cycle()
    if cycle is None:
        return None, None
    return cycle, app_ops.find_case(current_user, cycle)


def _require_case():
    """The candidate's current case, or a redirect to the application page when there is none."""
    _cycle, case = _own_current_case()
    if case is None:
        flash(_("您尚未開始申請，請先由申請頁面開始。"), "warning")
        return None, redirect(url_for(".apply"))
    return case, None


def _refused(refusal):
    """Undo whatever the request changed and tell the candidate why."""
    db.session.rollback()
    flash(refusal.message, "error")


def _item_or_404(items, value):
    """The item named in the URL, if it is one of the given kind; else 404."""
    item = items.get(value)
    if item is None:
        abort(404)
    return item


def _own_cases():
    """Every case of the candidate, newest cycle first."""
    return db.session.scalars(
        sa.select(Case).where(Case.applicant_id == current_user.id).order_by(Case.created_at.desc())
    ).all()


def _state_events(case):
    """The audit events that moved the case, oldest first, with the label and state reached."""
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.case_id == case.id, AuditEvent.to_state.is_not(None))
        .order_by(AuditEvent.created_at, AuditEvent.id)
    ).all()
    timeline = []
    for event in events:
        action = TRANSITIONS.get(event.action)
        to_round = (action.next_round if action else None) or event.round or 1
        timeline.append(
            {
                "at": event.created_at,
                # plain text, so that the page can tell an action named like its state
                "label": str(action.label if action else event.action),
                "status": str(state_label(event.to_state, to_round)),
                "key": _step_key(event.to_state, to_round),
            }
        )
    return timeline


def _public_comments(case):
    """Comments meant for the candidate, without who wrote them; undone verdicts left out."""
    undone = sa.select(Verdict.event_id).where(
        Verdict.case_id == case.id, Verdict.undone_at.is_not(None), Verdict.event_id.is_not(None)
    )
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(
            AuditEvent.case_id == case.id,
            AuditEvent.comment_public.is_(True),
            AuditEvent.id.not_in(undone),
        )
        .order_by(AuditEvent.created_at, AuditEvent.id)
    ).all()
    return [
        {
            "at": event.created_at,
            "label": TRANSITIONS[event.action].label if event.action in TRANSITIONS else "",
            "comment": event.comment,
        }
        for event in events
    ]


@dataclass
class RoundFeedback:
    """What the candidate may read of one round, step by step."""

    number: int
    returns: list = field(default_factory=list)  # formal-review returns: {at, comment}
    reviews: list = field(default_factory=list)  # anonymous reviews: {name, results, overall}
    reviews_pending: bool = False
    verdict: dict | None = None  # {at, label, comment}

    @property
    def name(self):
        return ROUND_NAMES[self.number]

    @property
    def empty(self):
        return not (self.returns or self.reviews or self.reviews_pending or self.verdict)


@dataclass
class Feedback:
    """Everything of the review the candidate may read: the rounds and the appeal."""

    rounds: list
    appeal: dict | None = None

    @property
    def empty(self):
        return self.appeal is None and all(round_.empty for round_ in self.rounds)


def _reviewer_name(index):
    """委員一, 委員二, ...: the only name a reviewer has on the candidate's pages."""
    numeral = REVIEWER_NUMERALS[index] if index < len(REVIEWER_NUMERALS) else str(index + 1)
    return _("委員%(number)s", number=numeral)


def _anonymous_review(index, assignment):
    """A submitted review as the candidate reads it: per item 符合/待改進, then the overall."""
    results = assignment.item_results or {}
    items = []
    for item in ApplicationItem:
        given = results.get(item.value) or {}
        result = given.get("result")
        items.append(
            {
                "label": item.label,
                "result": result,
                "result_label": workflow.ITEM_RESULTS.get(result, ""),
                "comment": given.get("comment") or "",
            }
        )
    return {"name": _reviewer_name(index), "results": items, "overall": assignment.overall_comment}


def _candidate_feedback(case):
    """What the candidate may read, by round and step; reviews only once the round is judged.

    Only plain values leave this function, so that no template can reach a reviewer or a
    member of staff through a relationship.
    """
    verdicts = {}
    for verdict in db.session.scalars(
        sa.select(Verdict)
        .where(Verdict.case_id == case.id, Verdict.undone_at.is_(None))
        .order_by(Verdict.decided_at, Verdict.id)
    ):
        verdicts[verdict.round] = verdict

    rounds = {number: RoundFeedback(number) for number in range(1, case.round + 1)}
    for number, verdict in verdicts.items():
        rounds.setdefault(number, RoundFeedback(number)).verdict = {
            "at": verdict.decided_at,
            "label": verdict.decision.label,
            "comment": verdict.comment,
        }
    if case.state in (CaseState.under_review, CaseState.awaiting_verdict):
        rounds[case.round].reviews_pending = case.round not in verdicts

    if verdicts:
        assignments = db.session.scalars(
            sa.select(ReviewAssignment)
            .where(
                ReviewAssignment.case_id == case.id,
                ReviewAssignment.round.in_(list(verdicts)),
                ReviewAssignment.submitted_at.is_not(None),
            )
            .order_by(ReviewAssignment.id)
        ).all()
        for number, feedback in rounds.items():
            own = [assignment for assignment in assignments if assignment.round == number]
            feedback.reviews = [_anonymous_review(i, a) for i, a in enumerate(own)]

    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(
            AuditEvent.case_id == case.id,
            AuditEvent.action.in_(("return_for_correction", *APPEAL_DECISIONS)),
        )
        .order_by(AuditEvent.created_at, AuditEvent.id)
    ).all()
    for event in events:
        if event.action == "return_for_correction" and event.comment_public:
            rounds.setdefault(event.round or 1, RoundFeedback(event.round or 1)).returns.append(
                {"at": event.created_at, "comment": event.comment}
            )

    appeal = None
    if case.appeal is not None:
        document = case.appeal.document
        appeal = {
            "filed_at": case.appeal.filed_at,
            "reason": case.appeal.reason,
            "document": {"id": document.id, "name": document.original_name} if document else None,
            "outcome": case.appeal.outcome.label,
            "decisions": [
                {
                    "at": event.created_at,
                    "label": TRANSITIONS[event.action].label,
                    "comment": event.comment if event.comment_public else "",
                }
                for event in events
                if event.action in APPEAL_DECISIONS
            ],
        }
    return Feedback(rounds=[rounds[number] for number in sorted(rounds)], appeal=appeal)


def _readable_case(case_id):
    """The candidate's current case, or an earlier one of theirs by id (404 for anyone else's)."""
    if case_id is None:
        return _require_case()
    case = db.session.get(Case, case_id)
    if case is None or not case.belongs_to(current_user):
        abort(404)
    return case, None


def _own_message(message_id):
    """One of the person's own messages that is still standing; 404 for any other id."""
    notification = db.session.get(Notification, message_id)
    if (
        notification is None
        or notification.user_id != current_user.id
        or notification.withdrawn_at is not None
    ):
        abort(404)
    return notification


def _message_links(notifications):
    """Where each message points: the candidate's flow page, or a reviewer's own pages."""
    case_ids = {notification.case_id for notification in notifications if notification.case_id}
    own = set()
    if case_ids:
        own = set(
            db.session.scalars(
                sa.select(Case.id).where(
                    Case.id.in_(case_ids), Case.applicant_id == current_user.id
                )
            )
        )
    role_home = _role_home()

    links = {}
    for notification in notifications:
        if notification.case_id in own:
            links[notification.id] = (
                url_for(".flow", case_id=notification.case_id),
                _("查看流程圖"),
            )
        elif notification.case_id and role_home:
            links[notification.id] = (role_home, _("前往工作頁面"))
    return links


def _role_home():
    """A landing link for reviewers and county officers, once their pages exist."""
    endpoint = {Role.reviewer: "reviewer.index", Role.county_officer: "county_centre.index"}.get(
        current_user.role
    )
    if endpoint is None:
        return None
    try:
        return url_for(endpoint)
    except BuildError:
        return None


# --- pages ----------------------------------------------------------------------------------


@blueprint.route("/")
@login_required
def home():
    """認證專區: the menu leading to the application page."""
    if current_user.is_staff:
        return redirect(url_for("admin.index"))
    if not current_user.is_applicant:
        return render_template("portal/landing.html", role_home=_role_home())
    return render_template("portal/home.html")


@blueprint.route("/profile")
@login_required
def profile():
    """個人資料: personal data, training hours by 學年度, certificates and certificate numbers."""
    user = current_user
    years = OrderedDict()
    records = sorted(
        user.training_records, key=lambda r: (-r.academic_year, r.completed_on, r.course)
    )
    for record in records:
        year = years.setdefault(record.academic_year, {"records": [], "total": Decimal(0)})
        year["records"].append(record)
        year["total"] += Decimal(record.hours)

    certified = [case for case in _own_cases() if case.certificate_number]
    held = sorted(user.certificates, key=lambda held: (held.level.value != "basic", held.id))
    return render_template(
        "portal/profile.html", user=user, years=years, held=held, certified=certified
    )


@blueprint.route("/apply")
@applicant_required
def apply():
    """進階專業回饋人才認證: eligibility, the six items, status and the submit button."""
    cycle, case = _own_current_case()
    context = {"cycle": cycle, "case": case, "past_cases": []}
    if cycle is None:
        return render_template("portal/apply.html", **context)

    context["past_cases"] = [other for other in _own_cases() if other.cycle_id != cycle.id]
    if case is None:
        context["unmet"] = unmet_rules(current_user, cycle)
        return render_template("portal/apply.html", **context)

    statuses = app_ops.item_statuses(case)
    context.update(
        statuses=statuses,
        can_submit=app_ops.can_submit(case, current_user, statuses),
        missing=app_ops.missing_items(case, statuses),
        window_closed=case.state is CaseState.draft and not cycle.is_open(),
        comments=_public_comments(case) if case.is_editable else [],
        appeal_open=workflow.appeal_open(case),
    )
    return render_template("portal/apply.html", **context)


@blueprint.route("/apply/start", methods=["POST"])
@applicant_required
def start():
    """Open the candidate's case in the current cycle (開始申請)."""
    cycle = app_ops.current_cycle()
    if cycle is None:
        abort(404)

    try:
        case = app_ops.open_case(current_user, cycle)
        db.session.commit()
    except TransitionRefused as refusal:
        _refused(refusal)
        return redirect(url_for(".apply"))

    log.info("case %s opened by %s", case.id, current_user.login)
    flash(_("已開始申請，請依序完成六個項目。"), "success")
    return redirect(url_for(".apply"))


@blueprint.route("/apply/item/<item>", methods=["GET", "POST"])
@applicant_required
def upload_item(item):
    """An upload item: the blank document, the current PDF and the upload form."""
    item = _item_or_404(UPLOAD_ITEMS, item)
    case, elsewhere = _require_case()
    if elsewhere:
        return elsewhere

    if request.method == "POST":
        try:
            document = app_ops.attach_document(case, item, request.files.get("file"), current_user)
            db.session.commit()
        except TransitionRefused as refusal:
            _refused(refusal)
            return redirect(url_for(".upload_item", item=item.value))
        flash(_("已上傳「%(name)s」。", name=document.original_name), "success")
        return redirect(url_for(".upload_item", item=item.value))

    document = app_ops.effective_documents(case).get(app_ops.UPLOAD_KINDS[item])
    return render_template("portal/upload.html", case=case, item=item, document=document)


@blueprint.route("/apply/document/<int:document_id>")
@applicant_required
def document(document_id):
    """Download one of the candidate's own uploaded PDFs."""
    document = db.session.get(Document, document_id)
    if document is None or not document.case.belongs_to(current_user):
        abort(404)

    path = storage.path_of(document.stored_name)
    if not os.path.isfile(path):
        log.error("document %s is missing its file %s", document.id, document.stored_name)
        abort(404)
    return send_file(
        path,
        mimetype="application/pdf",
        as_attachment=True,
        download_name=storage.download_name(document.original_name),
    )


@blueprint.route("/apply/blank/<item>")
@applicant_required
def blank(item):
    """The blank document of an upload item, as a printable Excel workbook."""
    item = _item_or_404(UPLOAD_ITEMS, item)
    response = send_file(
        io.BytesIO(blank_forms.blank_form(item)),
        mimetype=blank_forms.MIME_TYPE,
        as_attachment=True,
        download_name=blank_forms.download_name(item),
    )
    # an ASCII name for old clients, which would otherwise get the Chinese name stripped bare
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{item.value}-blank.xlsx"; '
        f"filename*=UTF-8''{quote(blank_forms.download_name(item))}"
    )
    return response


@blueprint.route("/apply/record/<item>", methods=["GET", "POST"])
@applicant_required
def record(item):
    """A record item: choose a template (多擇一), fill and save it, or read it when locked."""
    item = _item_or_404(RECORD_ITEMS, item)
    case, elsewhere = _require_case()
    if elsewhere:
        return elsewhere
    entry = app_ops.effective_entries(case).get(item)

    if request.method == "POST":
        return _save_record(case, item, entry)

    if not case.is_editable:
        readable = None
        if entry is not None:
            readable = form_schema.render_readable(entry.template_version.fields, entry.data)
        return render_template(
            "portal/record.html", case=case, item=item, entry=entry, readable=readable
        )

    templates = app_ops.templates_for(item)
    version, data = _chosen_version(templates, entry, request.args.get("template", type=int))
    return _record_form(case, item, entry, templates, version, data, {})


def _chosen_version(templates, entry, template_id):
    """The version to fill and its starting data: the entry's own, or a fresh template's."""
    pinned = entry.template_version if entry is not None else None
    if template_id is None:
        template_id = pinned.template_id if pinned else (templates[0].id if templates else None)

    if pinned is not None and pinned.template_id == template_id:
        return pinned, entry.data
    for template in templates:
        if template.id == template_id and template.current_version is not None:
            return template.current_version, {}
    if pinned is not None:
        return pinned, entry.data
    if templates and templates[0].current_version is not None:
        return templates[0].current_version, {}
    return None, {}


def _save_record(case, item, entry):
    """Store a posted record, or show the form again with its errors and the typed values."""
    version = app_ops.template_version(request.form.get("template_version_id", type=int) or 0)
    if version is None:
        flash(_("找不到所選的紀錄表範本，請重新選擇。"), "error")
        return redirect(url_for(".record", item=item.value))

    try:
        _entry, errors = app_ops.save_record(case, item, version, request.form, current_user)
        if errors:
            db.session.rollback()
        else:
            db.session.commit()
    except TransitionRefused as refusal:
        _refused(refusal)
        return redirect(url_for(".record", item=item.value))

    if errors:
        # show what was typed, with the errors beside it; nothing was stored
        data, _errors = form_schema.parse_submission(version.fields, request.form, {})
        flash(_("尚有 %(count)s 處需要修正，請查看標示紅字的欄位。", count=len(errors)), "error")
        templates = app_ops.templates_for(item)
        return _record_form(case, item, entry, templates, version, data, errors)

    flash(_("已儲存「%(label)s」。", label=item.label), "success")
    return redirect(url_for(".apply"))


def _record_form(case, item, entry, templates, version, data, errors):
    """The record page with the template picker and the form's inputs."""
    choices = list(templates)
    pinned = entry.template_version.template if entry is not None else None
    if pinned is not None and pinned not in choices:
        choices.insert(0, pinned)
    inputs = form_schema.render_inputs(version.fields, data, errors) if version else None
    return render_template(
        "portal/record.html",
        case=case,
        item=item,
        entry=entry,
        templates=choices,
        version=version,
        inputs=inputs,
        switched=entry is not None and version is not None and version != entry.template_version,
    )


@blueprint.route("/apply/submit", methods=["GET", "POST"])
@applicant_required
def submit():
    """送出審查文件: a confirmation page; 確定 sends the file to review and locks it."""
    case, elsewhere = _require_case()
    if elsewhere:
        return elsewhere

    if request.method == "POST":
        revision = case.state is CaseState.revision_requested
        try:
            app_ops.submit_application(case, current_user)
            db.session.commit()
        except TransitionRefused as refusal:
            _refused(refusal)
            return redirect(url_for(".apply"))
        if revision:
            flash(_("已送出複審資料，請靜候複審結果。"), "success")
        else:
            flash(_("已送出審查文件，資料在審查期間無法修改。"), "success")
        return redirect(url_for(".flow"))

    statuses = app_ops.item_statuses(case)
    return render_template(
        "portal/submit.html",
        case=case,
        statuses=statuses,
        can_submit=app_ops.can_submit(case, current_user, statuses),
        missing=app_ops.missing_items(case, statuses),
        window_closed=case.state is CaseState.draft and not case.cycle.is_open(),
    )


@blueprint.route("/apply/flow")
@blueprint.route("/apply/flow/<int:case_id>")
@applicant_required
def flow(case_id=None):
    """流程圖: the whole process with the current step marked, the timeline and comments."""
    case, elsewhere = _readable_case(case_id)
    if elsewhere:
        return elsewhere

    timeline = _state_events(case)
    visited = {"draft"} | {event["key"] for event in timeline}
    return render_template(
        "portal/flow.html",
        case=case,
        current=_step_key(case.state, case.round),
        visited=visited,
        steps={
            "main": MAIN_STEPS,
            "revision": REVISION_STEPS,
            "pass": PASS_STEPS,
            "appeal": APPEAL_STEPS,
        },
        timeline=timeline,
        feedback=_candidate_feedback(case),
        appeal_open=workflow.appeal_open(case),
    )


@blueprint.route("/apply/comments")
@blueprint.route("/apply/comments/<int:case_id>")
@applicant_required
def comments(case_id=None):
    """查看審查意見: formal-review comments, the committee's reviews, verdicts and the appeal."""
    case, elsewhere = _readable_case(case_id)
    if elsewhere:
        return elsewhere

    return render_template("portal/comments.html", case=case, feedback=_candidate_feedback(case))


@blueprint.route("/apply/appeal", methods=["GET", "POST"])
@applicant_required
def appeal():
    """申復: a failed candidate states the reasons, optionally with a PDF, before the deadline."""
    case, elsewhere = _require_case()
    if elsewhere:
        return elsewhere
    if request.method == "GET":
        return _appeal_page(case)

    reason = request.form.get("reason", "")
    if workflow.appeal_open(case) and request.form.get("confirm") != "yes":
        flash(_("送出前請勾選「我已確認申復理由與附件無誤」。"), "error")
        return _appeal_page(case, reason)

    try:
        workflow.file_appeal(case, current_user, reason, request.files.get("file"))
        db.session.commit()
    except TransitionRefused as refusal:
        _refused(refusal)
        return _appeal_page(case, reason)

    flash(_("已提出申復，認證中心將通知您是否受理。"), "success")
    return redirect(url_for(".appeal"))


def _appeal_page(case, reason=""):
    """The appeal form while the window is open, else the appeal filed and its outcome."""
    appeal = case.appeal
    return render_template(
        "portal/appeal.html",
        case=case,
        appeal=appeal,
        appeal_open=workflow.appeal_open(case),
        outcome_comment=(
            appeal.comment if appeal and appeal.outcome in PUBLIC_APPEAL_OUTCOMES else ""
        ),
        reason=reason,
    )


@blueprint.route("/messages")
@login_required
def messages():
    """訊息: the person's messages, newest first, unread ones marked."""
    page = max(request.args.get("page", 1, type=int), 1)
    query = (
        sa.select(Notification)
        .where(Notification.user_id == current_user.id, Notification.withdrawn_at.is_(None))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
    )
    pagination = db.paginate(query, page=page, per_page=MESSAGES_PER_PAGE, error_out=False)
    return render_template(
        "portal/messages.html",
        pagination=pagination,
        links=_message_links(pagination.items),
    )


@blueprint.route("/messages/<int:message_id>")
@login_required
def message(message_id):
    """One message in full; opening it marks it read."""
    notification = _own_message(message_id)
    if notification.read_at is None:
        notification.read_at = now_utc()
        db.session.commit()

    return render_template(
        "portal/message.html",
        notification=notification,
        link=_message_links([notification]).get(notification.id),
    )


@blueprint.errorhandler(RequestEntityTooLarge)
def upload_too_large(error):
    """An upload bigger than the request limit: the size message on the page it came from."""
    db.session.rollback()
    message = _(
        "檔案超過 %(mb)s MB 的上限，請壓縮後再上傳。", mb=current_app.config["MAX_UPLOAD_MB"]
    )
    if request.endpoint in ("portal.upload_item", "portal.appeal"):
        flash(message, "error")
        return redirect(request.path, code=303)
    return render_template("error.html", status=413, title=_("檔案太大"), message=message), 413
