"""The review workflow after submission: formal review, committee rounds, verdicts, appeals,
certificates.

Each function checks the rules of its step, writes its own rows (assignments, reviews, verdicts,
appeals, certificate numbers) and moves the case with `operations.transition`, all in the
caller's transaction. Nothing here commits.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from admin_app.extensions import db
from admin_app.i18n import _, now_utc, roc_datetime

from . import notify
from .case import ApplicationItem, Case, CaseState, DocumentKind
from .cycle import Cycle
from .operations import TransitionRefused, record_event, transition, transition_many
from .people import Role, User
from .review import (
    ROUND_DECISIONS,
    Appeal,
    AppealOutcome,
    Decision,
    ReviewAssignment,
    Verdict,
)

log = logging.getLogger(__name__)

VERDICT_ACTIONS = {
    Decision.passed: "verdict_passed",
    Decision.passed_after_revision: "verdict_passed_after_revision",
    Decision.revise_and_review: "verdict_revise_and_review",
    Decision.failed: "verdict_failed",
}

# what a reviewer says of each item
ITEM_RESULTS = {"meets": "符合", "improve": "待改進"}

# the longest texts people may write: a reviewer's overall comment and per-item comment, and
# staff's comment on a step (a return, a verdict, an undo, an appeal decision)
OVERALL_COMMENT_LIMIT = 20_000
ITEM_COMMENT_LIMIT = 5_000
STAFF_COMMENT_LIMIT = 5_000


def check_length(text, limit, what):
    """Refuse a text over its limit, saying how long it is, instead of cutting it."""
    length = len((text or "").strip())
    if length > limit:
        raise TransitionRefused(
            _(
                "%(what)s最多 %(limit)s 字，目前有 %(length)s 字，請精簡後再送出。",
                what=what,
                limit=f"{limit:,}",
                length=f"{length:,}",
            )
        )


@dataclass
class BulkResult:
    """What a bulk action did: the cases it moved and, for the others, why not."""

    done: list = field(default_factory=list)
    refused: list = field(default_factory=list)  # (case, message)


def _locked(case):
    """Re-read the case row with a lock, so that concurrent steps on one case queue up."""
    db.session.execute(sa.select(Case.id).where(Case.id == case.id).with_for_update()).scalar_one()
    db.session.refresh(case)
    return case


# --- formal review --------------------------------------------------------------------------


def pass_formal_review(cases, staff):
    """Pass many cases' formal review at once; cases that moved on meanwhile are reported."""
    result = BulkResult()
    for case in cases:
        try:
            transition(case, "pass_formal_review", staff)
            result.done.append(case)
        except TransitionRefused as refusal:
            result.refused.append((case, refusal.message))
    return result


def return_for_correction(case, staff, comment):
    """Return a case to its candidate with the formal-review comments they must act on."""
    check_length(comment, STAFF_COMMENT_LIMIT, _("退件意見"))
    event = transition(case, "return_for_correction", staff, comment=comment)
    notify.returned(case, event)
    return event


# --- committee assignment -------------------------------------------------------------------


def open_loads(reviewer_ids=None):
    """Reviews each reviewer still has to submit on cases under review: {reviewer_id: count}."""
    query = (
        sa.select(ReviewAssignment.reviewer_id, sa.func.count())
        .join(Case, Case.id == ReviewAssignment.case_id)
        .where(
            ReviewAssignment.submitted_at.is_(None),
            ReviewAssignment.round == Case.round,
            Case.state == CaseState.under_review,
        )
        .group_by(ReviewAssignment.reviewer_id)
    )
    if reviewer_ids is not None:
        query = query.where(ReviewAssignment.reviewer_id.in_(reviewer_ids))
    return dict(db.session.execute(query).all())


def active_reviewers():
    """Every active reviewer account, by name."""
    return db.session.scalars(
        sa.select(User).where(User.role == Role.reviewer, User.active.is_(True)).order_by(User.name)
    ).all()


def conflict_reason(case, reviewer):
    """Why a reviewer may not review a case, or None if they may."""
    if reviewer.role is not Role.reviewer or not reviewer.active:
        return _("「%(name)s」不是可用的審查委員帳號。", name=reviewer.name)
    if reviewer.id == case.applicant_id:
        return _("審查委員不可審查自己的申請案。")
    schools = {case.school_id, case.applicant.school_id} - {None}
    if reviewer.school_id is not None and reviewer.school_id in schools:
        return _("「%(name)s」與申請人同校，須迴避。", name=reviewer.name)
    return None


def eligible_reviewers(case, reviewers=None):
    """The reviewers who may review the case (no one from the candidate's school)."""
    reviewers = active_reviewers() if reviewers is None else reviewers
    return [reviewer for reviewer in reviewers if conflict_reason(case, reviewer) is None]


def assign_reviewers(case, reviewers, staff):
    """Assign the cycle's number of reviewers to a case awaiting assignment."""
    wanted = case.cycle.reviewers_per_case
    if len({reviewer.id for reviewer in reviewers}) != len(reviewers):
        raise TransitionRefused(_("同一位審查委員不可重複分發。"))
    if len(reviewers) != wanted:
        raise TransitionRefused(
            _(
                "每案須分發 %(wanted)s 位審查委員，目前選了 %(count)s 位。",
                wanted=wanted,
                count=len(reviewers),
            )
        )
    for reviewer in reviewers:
        reason = conflict_reason(case, reviewer)
        if reason:
            raise TransitionRefused(reason)

    round_ = case.round
    event = transition(
        case,
        "assign_reviewers",
        staff,
        comment=_("分發 %(count)s 位審查委員", count=len(reviewers)),
    )
    due = now_utc() + timedelta(days=case.cycle.review_days)
    for reviewer in reviewers:
        assignment = ReviewAssignment(
            case=case,
            round=round_,
            reviewer=reviewer,
            assigned_by_id=staff.id,
            due_at=due,
        )
        db.session.add(assignment)
        notify.reviewer_assigned(assignment, event)
    db.session.flush()
    return event


def plan_automatic_assignment(cases):
    """A balanced plan {case: [reviewers]}: each case gets the least-loaded eligible reviewers.

    Cases no reviewer set can be found for are left out of the plan and listed separately.
    """
    reviewers = active_reviewers()
    load = Counter(open_loads([reviewer.id for reviewer in reviewers]))
    plan, impossible = {}, []
    for case in cases:
        wanted = case.cycle.reviewers_per_case
        candidates = sorted(
            eligible_reviewers(case, reviewers), key=lambda r: (load[r.id], r.name, r.id)
        )
        if len(candidates) < wanted:
            impossible.append(case)
            continue
        chosen = candidates[:wanted]
        for reviewer in chosen:
            load[reviewer.id] += 1
        plan[case] = chosen
    return plan, impossible


def apply_assignment_plan(plan, staff):
    """Assign per a plan shown to staff; cases that moved on meanwhile are reported."""
    result = BulkResult()
    for case, reviewers in plan.items():
        try:
            with db.session.begin_nested():
                assign_reviewers(case, reviewers, staff)
            result.done.append(case)
        except TransitionRefused as refusal:
            result.refused.append((case, refusal.message))
    return result


# --- committee review -----------------------------------------------------------------------


def assignments_of(reviewer, open_only=False):
    """The assignments of one reviewer, newest first, with their cases and schools loaded."""
    query = (
        sa.select(ReviewAssignment)
        .where(ReviewAssignment.reviewer_id == reviewer.id)
        .options(selectinload(ReviewAssignment.case).selectinload(Case.school))
        .order_by(ReviewAssignment.assigned_at.desc())
    )
    if open_only:
        query = query.where(ReviewAssignment.submitted_at.is_(None))
    return db.session.scalars(query).all()


def can_review(assignment, user):
    """Guard: the assignment is this reviewer's, its round is running and it is not submitted."""
    case = assignment.case
    return (
        user is not None
        and assignment.reviewer_id == user.id
        and assignment.submitted_at is None
        and case.state is CaseState.under_review
        and case.round == assignment.round
    )


def save_review(assignment, reviewer, item_results, overall_comment, recommendation, submit):
    """Save a reviewer's draft, or submit it; the last review in moves the case to 判定."""
    case = _locked(assignment.case)
    db.session.refresh(assignment)
    if assignment.reviewer_id != reviewer.id:
        raise TransitionRefused(_("這不是分發給您的案件。"))
    if assignment.submitted_at is not None:
        raise TransitionRefused(_("此審查意見已送出，無法再修改。"))
    if case.state is not CaseState.under_review or case.round != assignment.round:
        raise TransitionRefused(_("此案件目前不在審查階段，無法填寫審查意見。"))

    check_length(overall_comment, OVERALL_COMMENT_LIMIT, _("綜合意見"))
    for item in ApplicationItem:
        given = (item_results or {}).get(item.value) or {}
        what = _("「%(item)s」的意見", item=item.label)
        check_length(str(given.get("comment") or ""), ITEM_COMMENT_LIMIT, what)
    cleaned, problems = _clean_review(item_results, overall_comment, recommendation, case.round)
    if recommendation is not None and recommendation not in ROUND_DECISIONS[case.round]:
        raise TransitionRefused(_("此輪審查不能建議「%(label)s」。", label=recommendation.label))
    if submit and problems:
        raise TransitionRefused("；".join(problems) + "。")

    assignment.item_results = cleaned
    assignment.overall_comment = (overall_comment or "").strip()
    assignment.recommendation = recommendation
    if not submit:
        db.session.flush()
        return None

    assignment.submitted_at = now_utc()
    record_event(case, "submit_review", reviewer)
    db.session.flush()
    log.info("case %s: review submitted by %s", case.id, reviewer.login)

    outstanding = db.session.scalar(
        sa.select(sa.func.count()).where(
            ReviewAssignment.case_id == case.id,
            ReviewAssignment.round == case.round,
            ReviewAssignment.submitted_at.is_(None),
        )
    )
    if outstanding == 0:
        return transition(case, "complete_reviews", reviewer)
    return None


def _clean_review(item_results, overall_comment, recommendation, round_):
    """The review's per-item results, cleaned, and what is missing to submit it."""
    problems = []
    cleaned = {}
    for item in ApplicationItem:
        given = (item_results or {}).get(item.value) or {}
        result = given.get("result") if given.get("result") in ITEM_RESULTS else None
        comment = str(given.get("comment") or "").strip()
        cleaned[item.value] = {"result": result, "comment": comment}
        if result is None:
            problems.append(_("「%(item)s」尚未評定符合或待改進", item=item.label))
        elif result == "improve" and not comment:
            problems.append(_("「%(item)s」評為待改進，請填寫意見", item=item.label))
    if not (overall_comment or "").strip():
        problems.append(_("請填寫給申請人的綜合意見"))
    if recommendation is None:
        problems.append(_("請選擇建議審查結果"))
    elif recommendation not in ROUND_DECISIONS[round_]:
        problems.append(_("此輪審查不能建議「%(label)s」", label=recommendation.label))
    return cleaned, problems


# --- verdicts -------------------------------------------------------------------------------


def record_verdict(case, decision, staff, comment=""):
    """Staff's verdict on the current round, with its comment to the candidate."""
    if decision not in ROUND_DECISIONS.get(case.round, ()):
        raise TransitionRefused(
            _("第 %(round)s 輪審查不能判定「%(label)s」。", round=case.round, label=decision.label)
        )
    check_length(comment, STAFF_COMMENT_LIMIT, _("判定意見"))
    round_ = case.round
    values = {}
    if decision is Decision.failed:
        values["appeal_deadline"] = case.cycle.appeal_deadline(now_utc())

    event = transition(case, VERDICT_ACTIONS[decision], staff, comment=comment, values=values)
    db.session.add(
        Verdict(
            case_id=case.id,
            round=round_,
            decision=decision,
            comment=(comment or "").strip(),
            decided_by_id=staff.id,
            decided_at=event.created_at,
            event_id=event.id,
        )
    )
    notify.verdict_recorded(case, event, decision, round_)
    db.session.flush()
    return event


def record_verdicts(cases, decision, staff, comment=""):
    """The same verdict on many cases, each checked on its own."""
    result = BulkResult()
    for case in cases:
        try:
            with db.session.begin_nested():
                record_verdict(case, decision, staff, comment)
            result.done.append(case)
        except TransitionRefused as refusal:
            result.refused.append((case, refusal.message))
    return result


def current_verdict(case):
    """The verdict that stands for the case's latest round, or None."""
    return db.session.scalar(
        sa.select(Verdict)
        .where(Verdict.case_id == case.id, Verdict.undone_at.is_(None))
        .order_by(Verdict.decided_at.desc(), Verdict.id.desc())
        .limit(1)
    )


def can_undo_verdict(case):
    """Guard: a verdict stands and nothing has happened to the case since it."""
    verdict = current_verdict(case)
    if verdict is None or verdict.event_id is None:
        return False
    return (
        case.state
        in (
            CaseState.passed,
            CaseState.revision_requested,
            CaseState.failed,
        )
        and _latest_transition_event_id(case) == verdict.event_id
    )


def undo_verdict(case, staff, reason):
    """Take back a mistaken verdict with a stated reason; the case returns to 判定."""
    verdict = current_verdict(case)
    if not can_undo_verdict(case):
        raise TransitionRefused(_("此案件的判定之後已有其他處理，無法撤銷。"))
    check_length(reason, STAFF_COMMENT_LIMIT, _("撤銷原因"))
    event = transition(
        case, "undo_verdict", staff, comment=reason, values={"appeal_deadline": None}
    )
    verdict.undone_at = event.created_at
    verdict.undone_by_id = staff.id
    verdict.undo_reason = event.comment
    _withdraw_messages_of(verdict.event_id)
    db.session.flush()
    return event


def _latest_transition_event_id(case):
    from .audit import AuditEvent

    return db.session.scalar(
        sa.select(AuditEvent.id)
        .where(AuditEvent.case_id == case.id, AuditEvent.to_state.is_not(None))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def _withdraw_messages_of(event_id):
    """Cancel unsent mail and withdraw portal messages caused by an undone decision."""
    from .messages import MailState, Notification, OutgoingMail

    moment = now_utc()
    db.session.execute(
        sa.update(OutgoingMail)
        .where(OutgoingMail.event_id == event_id, OutgoingMail.state == MailState.pending)
        .values(state=MailState.cancelled, last_error="判定已撤銷")
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(Notification)
        .where(Notification.event_id == event_id, Notification.withdrawn_at.is_(None))
        .values(withdrawn_at=moment)
        .execution_options(synchronize_session=False)
    )


# --- appeals --------------------------------------------------------------------------------


def appeal_open(case, moment=None):
    """Whether the candidate may still appeal: failed and before the deadline."""
    moment = moment or now_utc()
    return (
        case.state is CaseState.failed
        and case.appeal_deadline is not None
        and moment <= case.appeal_deadline
    )


def file_appeal(case, user, reason, attachment=None, moment=None):
    """The candidate's appeal, with an optional PDF, before the window's last second."""
    moment = moment or now_utc()
    reason = (reason or "").strip()
    if not case.belongs_to(user):
        raise TransitionRefused(_("您沒有權限對此案件提出申復。"))
    if case.state is CaseState.failed and not appeal_open(case, moment):
        raise TransitionRefused(
            _(
                "申復期限已於 %(deadline)s 截止，無法再提出申復。",
                deadline=roc_datetime(case.appeal_deadline),
            )
        )
    if not reason:
        raise TransitionRefused(_("請填寫申復理由。"))
    check_length(reason, 20_000, _("申復理由"))

    event = transition(case, "file_appeal", user, comment=reason)
    document = None
    if attachment is not None and attachment.filename:
        document = _attach_appeal_document(case, attachment, user)
    db.session.add(
        Appeal(
            case_id=case.id,
            reason=reason,
            document_id=document.id if document else None,
            filed_at=event.created_at,
            outcome=AppealOutcome.filed,
        )
    )
    notify.appeal_filed(case, event)
    db.session.flush()
    return event


def _attach_appeal_document(case, attachment, user):
    from admin_app.storage import UploadRefused, store_pdf

    from .case import Document

    try:
        stored = store_pdf(db.session, attachment)
    except UploadRefused as refusal:
        raise TransitionRefused(refusal.message) from refusal
    document = Document(
        case_id=case.id,
        kind=DocumentKind.appeal,
        round=case.round,
        original_name=stored.original_name,
        stored_name=stored.stored_name,
        size=stored.size,
        sha256=stored.sha256,
        uploaded_by_id=user.id,
    )
    db.session.add(document)
    db.session.flush()
    return document


def close_expired_appeal_windows(moment=None):
    """Close every failed case whose appeal window has passed; returns how many."""
    moment = moment or now_utc()
    expired = db.session.scalars(
        sa.select(Case).where(Case.state == CaseState.failed, Case.appeal_deadline < moment)
    ).all()
    closed = 0
    for case in expired:
        try:
            with db.session.begin_nested():
                transition(case, "close_appeal_window", None)
            closed += 1
        except TransitionRefused:
            log.info("case %s moved on before its appeal window was closed", case.id)
    return closed


def _decide_appeal(case, action, outcome, staff, comment):
    check_length(comment, STAFF_COMMENT_LIMIT, _("意見"))
    event = transition(case, action, staff, comment=comment)
    appeal = case.appeal
    appeal.outcome = outcome
    appeal.decided_by_id = staff.id
    appeal.decided_at = event.created_at
    appeal.comment = (comment or "").strip()
    db.session.flush()
    return event


def accept_appeal(case, staff, comment=""):
    """受理: the appeal will be examined."""
    event = _decide_appeal(case, "accept_appeal", AppealOutcome.accepted, staff, comment)
    notify.appeal_accepted(case, event)
    return event


def reject_appeal(case, staff, comment):
    """未受理: the appeal is not admissible; the case closes as 未通過."""
    event = _decide_appeal(case, "reject_appeal", AppealOutcome.not_accepted, staff, comment)
    notify.appeal_not_accepted(case, event)
    return event


def uphold_appeal(case, staff, comment=""):
    """申復成立: the case passes and can be certified."""
    event = _decide_appeal(case, "uphold_appeal", AppealOutcome.upheld, staff, comment)
    notify.appeal_upheld(case, event)
    return event


def dismiss_appeal(case, staff, comment):
    """申復不成立: the case closes as 未通過."""
    event = _decide_appeal(case, "dismiss_appeal", AppealOutcome.dismissed, staff, comment)
    notify.appeal_dismissed(case, event)
    return event


# --- certificates ---------------------------------------------------------------------------


def passed_cases(cycle):
    """The cycle's cases ready for a certificate number, in the order numbers are given."""
    return db.session.scalars(
        sa.select(Case)
        .where(Case.cycle_id == cycle.id, Case.state == CaseState.passed)
        .options(selectinload(Case.school), selectinload(Case.county))
        .order_by(Case.county_id, Case.submitted_at, Case.id)
    ).all()


# a certificate step reads thousands of cases: each with its cycle and applicant, whom the
# message needs, but not the applicant's school and county that a User brings by default
BULK_LOADING = sa.orm.joinedload(Case.applicant).lazyload("*")


def issue_certificates(cycle, staff):
    """Give every passed case of the cycle its number, from the cycle's counter, all or nothing.

    The cases are locked first and the counter is advanced by one UPDATE, so concurrent issuing
    can give neither a duplicate nor a gap: a second run waits, then finds nothing left. The
    cases move with set-based statements (`transition_many`), each with its own audit event,
    portal message and e-mail, so that a national cycle's thousands of numbers take seconds.
    """
    cases = db.session.scalars(
        sa.select(Case)
        .where(Case.cycle_id == cycle.id, Case.state == CaseState.passed)
        .order_by(Case.county_id, Case.submitted_at, Case.id)
        .options(BULK_LOADING)
        .with_for_update(of=Case)
        .execution_options(populate_existing=True)
    ).all()
    if not cases:
        return []

    last = db.session.execute(
        sa.update(Cycle)
        .where(Cycle.id == cycle.id)
        .values(certificate_counter=Cycle.certificate_counter + len(cases))
        .returning(Cycle.certificate_counter)
    ).scalar_one()
    db.session.refresh(cycle)

    moment = now_utc()
    first = last - len(cases) + 1
    numbers = {
        case.id: {
            "certificate_seq": first + offset,
            "certificate_number": cycle.format_certificate_number(first + offset),
            "certified_at": moment,
        }
        for offset, case in enumerate(cases)
    }
    event_ids = transition_many(cases, "issue_certificate", staff, values=numbers)
    notify.certified_many(cases, event_ids)
    log.info("cycle %s: %s certificates issued by %s", cycle.id, len(cases), staff.login)
    return cases


def announce_certificates(cycle, staff):
    """Announce every certified case of the cycle at once (set-based, like the issue)."""
    cases = db.session.scalars(
        sa.select(Case)
        .where(Case.cycle_id == cycle.id, Case.state == CaseState.certified)
        .order_by(Case.certificate_seq)
        .options(BULK_LOADING)
        .with_for_update(of=Case)
        .execution_options(populate_existing=True)
    ).all()
    moment = now_utc()
    event_ids = transition_many(
        cases, "announce", staff, values={case.id: {"announced_at": moment} for case in cases}
    )
    notify.announced_many(cases, event_ids)
    log.info("cycle %s: %s certificates announced by %s", cycle.id, len(cases), staff.login)
    return cases
