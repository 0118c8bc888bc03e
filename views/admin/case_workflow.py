"""The review workflow from the staff side: list actions over many cases, forms of a case page.

Every POST here parses the form, calls one operation of `models.workflow` (which refuses what
does not apply to the case as it now stands), commits once and flashes what happened. Access is
`StaffAccess` on the case view; the operations check the actor's role again.
"""

from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import abort, flash, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.helpers import get_redirect_target
from flask_login import current_user
from sqlalchemy.orm import joinedload

from admin_app.extensions import db
from admin_app.i18n import _, _l
from models import (
    Appeal,
    ApplicationItem,
    Case,
    CaseState,
    Decision,
    ReviewAssignment,
    School,
    User,
    Verdict,
    workflow,
)
from models.operations import TRANSITIONS, TransitionRefused, can_take
from models.review import ROUND_DECISIONS

# the steps of an appeal that staff take from the case page: url part -> (operation, outcome)
APPEAL_STEPS = {
    "accept": (
        workflow.accept_appeal,
        lambda case_id: _("案件 #%(id)s 申復已受理，進入申復審查。", id=case_id),
    ),
    "reject": (
        workflow.reject_appeal,
        lambda case_id: _("案件 #%(id)s 申復未受理，已結案為未通過。", id=case_id),
    ),
    "uphold": (
        workflow.uphold_appeal,
        lambda case_id: _("案件 #%(id)s 申復成立，改為通過可產證。", id=case_id),
    ),
    "dismiss": (
        workflow.dismiss_appeal,
        lambda case_id: _("案件 #%(id)s 申復不成立，已結案為未通過。", id=case_id),
    ),
}

# the actions a case page may offer, checked with `can_take` for the person looking at it
PAGE_ACTIONS = (
    "pass_formal_review",
    "return_for_correction",
    "assign_reviewers",
    "accept_appeal",
    "reject_appeal",
    "uphold_appeal",
    "dismiss_appeal",
)


def as_int(value):
    """A form value as a positive whole number, or None."""
    value = str(value or "")
    return int(value) if value.isascii() and value.isdigit() else None


def parse_ids(values):
    """Ids from a list of form values, without repeats; anything not a number is ignored."""
    return sorted({as_int(value) for value in values} - {None})


def cases_by_ids(ids):
    """The cases with these ids, by id, with what a list of them shows."""
    if not ids:
        return []
    return db.session.scalars(
        sa.select(Case)
        .where(Case.id.in_(ids))
        .options(joinedload(Case.applicant), joinedload(Case.school))
        .order_by(Case.id)
    ).all()


def parse_decision(value):
    """A Decision from its form value, or None."""
    try:
        return Decision(value)
    except ValueError:
        return None


def comment_missing(decision, comment):
    """Whether the verdict needs a comment that was not given (the rule is the transition's)."""
    transition = TRANSITIONS[workflow.VERDICT_ACTIONS[decision]]
    return transition.comment_required and not (comment or "").strip()


def refusals_text(refused):
    """「#12 此案件目前為…；#13 …」 for a flash message."""
    return "；".join(f"#{case.id} {message}" for case, message in refused)


def bulk_outcome(done_text, refused, skipped=()):
    """One flash message for a bulk action: what was done, then every case left and why."""
    left = [*refused, *skipped]
    if not left:
        return done_text, "success"
    text = _(
        "%(done)s；%(count)s 件未處理：%(details)s",
        done=done_text,
        count=len(left),
        details=refusals_text(left),
    )
    return text, "warning"


def plan_signature(plan):
    """The plan as text, to tell whether a re-computed plan is the one staff confirmed."""
    parts = []
    for case, reviewers in sorted(plan.items(), key=lambda pair: pair[0].id):
        parts.append(f"{case.id}:{','.join(str(reviewer.id) for reviewer in reviewers)}")
    return ";".join(parts)


# --- what the case page shows -------------------------------------------------------------


@dataclass
class RoundRecord:
    """One review round of a case: who was asked, what they said, and staff's verdicts."""

    number: int
    assignments: list = field(default_factory=list)
    verdicts: list = field(default_factory=list)

    @property
    def submitted(self):
        return [assignment for assignment in self.assignments if assignment.submitted_at]


@dataclass(frozen=True)
class ReviewerChoice:
    """A reviewer in the assignment picker, with their open load and any conflict."""

    reviewer: User
    load: int
    conflict: str | None


def round_records(case):
    """Every round the case has been in, each with its assignments and verdicts."""
    assignments = db.session.scalars(
        sa.select(ReviewAssignment)
        .where(ReviewAssignment.case_id == case.id)
        .options(joinedload(ReviewAssignment.reviewer))
        .order_by(ReviewAssignment.round, ReviewAssignment.assigned_at, ReviewAssignment.id)
    ).all()
    verdicts = db.session.scalars(
        sa.select(Verdict)
        .where(Verdict.case_id == case.id)
        .options(joinedload(Verdict.decided_by), joinedload(Verdict.undone_by))
        .order_by(Verdict.decided_at, Verdict.id)
    ).all()
    last = max([case.round, *(row.round for row in assignments), *(v.round for v in verdicts)])
    rounds = [RoundRecord(number) for number in range(1, last + 1)]
    for assignment in assignments:
        rounds[assignment.round - 1].assignments.append(assignment)
    for verdict in verdicts:
        rounds[verdict.round - 1].verdicts.append(verdict)
    return [record for record in rounds if record.assignments or record.verdicts]


def reviewer_choices(case):
    """Every active reviewer with their open load; those who must stand aside carry the reason."""
    reviewers = workflow.active_reviewers()
    loads = workflow.open_loads([reviewer.id for reviewer in reviewers])
    # one query puts every reviewer's school in the session, so the picker loads none on its own
    school_ids = {reviewer.school_id for reviewer in reviewers} - {None}
    db.session.scalars(sa.select(School).where(School.id.in_(school_ids))).all()
    choices = [
        ReviewerChoice(
            reviewer, loads.get(reviewer.id, 0), workflow.conflict_reason(case, reviewer)
        )
        for reviewer in reviewers
    ]
    # the free ones first, least loaded first, so the usual choice is at the top
    return sorted(choices, key=lambda c: (c.conflict is not None, c.load, c.reviewer.name))


def case_page_workflow(case, typed=None):
    """What the case page needs to offer the next step: allowed actions, picker, decisions.

    `typed` is what staff typed into a step's form that was refused ({"step": ..., "comment":
    ..., ...}); the page shows it again in that form, or on its own when the form is gone.
    """
    can = {name: can_take(case, name, current_user) for name in PAGE_ACTIONS}
    judging = case.state is CaseState.awaiting_verdict and any(
        can_take(case, name, current_user) for name in workflow.VERDICT_ACTIONS.values()
    )
    undoable = case.state in (
        CaseState.passed,
        CaseState.revision_requested,
        CaseState.failed,
    ) and can_take(case, "undo_verdict", current_user)
    appeal = db.session.scalar(
        sa.select(Appeal)
        .where(Appeal.case_id == case.id)
        .options(joinedload(Appeal.document), joinedload(Appeal.decided_by))
    )
    can_undo = undoable and workflow.can_undo_verdict(case)
    shown = {
        "return": can["return_for_correction"],
        "assign": can["assign_reviewers"],
        "verdict": judging,
        "undo": can_undo,
        "accept": can["accept_appeal"] or can["reject_appeal"],
        "reject": can["accept_appeal"] or can["reject_appeal"],
        "uphold": can["uphold_appeal"] or can["dismiss_appeal"],
        "dismiss": can["uphold_appeal"] or can["dismiss_appeal"],
    }
    typed = typed or {}
    return {
        "can": can,
        "reviewer_choices": reviewer_choices(case) if can["assign_reviewers"] else [],
        "wanted": case.cycle.reviewers_per_case,
        "decisions": ROUND_DECISIONS.get(case.round, ()) if judging else (),
        "can_undo": can_undo,
        "typed": typed,
        # what was typed into a form the case no longer offers, shown so it can be copied
        "typed_elsewhere": (typed.get("text") or "").strip()
        if typed and not shown.get(typed.get("step"))
        else "",
        "appeal": appeal,
        "rounds": round_records(case),
        "items": list(ApplicationItem),
        "item_results": workflow.ITEM_RESULTS,
    }


# --- the view -----------------------------------------------------------------------------


class CaseWorkflowMixin:
    """The workflow steps of `CaseView`: list actions with their confirmations, and page forms."""

    def details_url(self, case_id):
        return self.get_url(".details_view", id=case_id)

    def list_url(self):
        return get_redirect_target() or self.get_url(".index_view")

    def _case_or_404(self, case_id):
        case = db.session.get(Case, case_id)
        if case is None:
            abort(404)
        return case

    def _step(self, case, operation, success, typed=None):
        """Run one step on a case from its page, refusing a page that no longer shows the case.

        A refused step shows the case page again with what was typed (`typed`) in its form.
        """
        case_id = case.id
        try:
            if request.form.get("version", type=int) != case.version:
                raise TransitionRefused(
                    _(
                        "此案件在您開啟頁面後已有變動（目前為「%(status)s」），未做任何處理。"
                        "請確認頁面內容後再操作。",
                        status=case.status_label,
                    )
                )
            operation()
            db.session.commit()
        except TransitionRefused as refusal:
            db.session.rollback()
            flash(refusal.message, "error")
            return self.case_page(case_id, typed)
        flash(success, "success")
        return redirect(self.details_url(case_id), code=303)

    # --- 形式審查 ---

    @action("pass_formal_review", _l("形式審查通過"))
    def action_pass_formal_review(self, ids):
        cases = cases_by_ids(parse_ids(ids))
        return self.render(
            "admin/case_formal_review.html",
            cases=cases,
            ready=[case for case in cases if case.state is CaseState.formal_review],
            return_url=self.list_url(),
        )

    @expose("/formal-review/", methods=["POST"])
    def pass_formal_review(self):
        """Pass the formal review of the cases confirmed on the confirmation page."""
        cases = cases_by_ids(parse_ids(request.form.getlist("ids")))
        if not cases:
            flash(_("請先勾選案件。"), "error")
            return redirect(self.list_url(), code=303)

        result = workflow.pass_formal_review(cases, current_user)
        message = bulk_outcome(
            _("%(count)s 件已通過形式審查", count=len(result.done)), result.refused
        )
        db.session.commit()
        flash(*message)
        return redirect(self.list_url(), code=303)

    @expose("/<int:case_id>/return/", methods=["POST"])
    def return_for_correction(self, case_id):
        """退件（形式審查） with the comments the candidate must act on."""
        case = self._case_or_404(case_id)
        comment = request.form.get("comment", "")
        return self._step(
            case,
            lambda: workflow.return_for_correction(case, current_user, comment),
            _("案件 #%(id)s 已退件，申請人會收到形式審查意見。", id=case_id),
            typed={"step": "return", "text": comment},
        )

    # --- 分發委員 ---

    @expose("/<int:case_id>/assign/", methods=["POST"])
    def assign_reviewers(self, case_id):
        """Assign the reviewers ticked in the picker; the operation checks count and conflicts."""
        case = self._case_or_404(case_id)
        ids = [as_int(value) for value in request.form.getlist("reviewer_id")]
        known = set(ids) - {None}
        found = {
            user.id: user for user in db.session.scalars(sa.select(User).where(User.id.in_(known)))
        }

        def assign():
            if None in ids or len(found) != len(set(ids)):
                raise TransitionRefused(_("找不到所選的審查委員，請重新整理頁面後再選。"))
            workflow.assign_reviewers(
                case, [found[reviewer_id] for reviewer_id in ids], current_user
            )

        return self._step(
            case,
            assign,
            _("案件 #%(id)s 已分發 %(count)s 位審查委員。", id=case_id, count=len(ids)),
            typed={"step": "assign", "reviewer_ids": known},
        )

    @action("auto_assign", _l("自動分發委員"))
    def action_auto_assign(self, ids):
        return self._auto_assign_preview(cases_by_ids(parse_ids(ids)))

    def _assignable(self, cases):
        ready = [case for case in cases if can_take(case, "assign_reviewers", current_user)]
        skipped = [
            (case, _("目前為「%(status)s」，不在分發委員階段。", status=case.status_label))
            for case in cases
            if case not in ready
        ]
        return ready, skipped

    def _auto_assign_preview(self, cases, changed=False):
        ready, skipped = self._assignable(cases)
        plan, impossible = workflow.plan_automatic_assignment(ready)
        loads = workflow.open_loads()
        added = {}
        for reviewers in plan.values():
            for reviewer in reviewers:
                added[reviewer] = added.get(reviewer, 0) + 1
        totals = sorted(
            ((reviewer, loads.get(reviewer.id, 0), count) for reviewer, count in added.items()),
            key=lambda row: (row[1] + row[2], row[0].name),
        )
        return self.render(
            "admin/case_auto_assign.html",
            cases=cases,
            plan=sorted(plan.items(), key=lambda pair: pair[0].id),
            impossible=impossible,
            skipped=skipped,
            loads=loads,
            totals=totals,
            signature=plan_signature(plan),
            changed=changed,
            return_url=self.list_url(),
        )

    @expose("/auto-assign/", methods=["POST"])
    def auto_assign(self):
        """Apply the automatic plan, re-computed from the case ids; a changed plan is re-shown."""
        cases = cases_by_ids(parse_ids(request.form.getlist("ids")))
        ready, skipped = self._assignable(cases)
        plan, impossible = workflow.plan_automatic_assignment(ready)
        if not plan:
            flash(_("沒有可以分發的案件，未做任何處理。"), "warning")
            return redirect(self.list_url(), code=303)
        if plan_signature(plan) != request.form.get("signature"):
            db.session.rollback()
            return self._auto_assign_preview(cases, changed=True)

        result = workflow.apply_assignment_plan(plan, current_user)
        left = [
            *skipped,
            *((case, _("找不到足夠且無須迴避的審查委員。")) for case in impossible),
        ]
        message = bulk_outcome(
            _("%(count)s 件已分發審查委員", count=len(result.done)), result.refused, left
        )
        db.session.commit()
        flash(*message)
        return redirect(self.list_url(), code=303)

    # --- 判定 ---

    @expose("/<int:case_id>/verdict/", methods=["POST"])
    def record_verdict(self, case_id):
        """The verdict on the current round, with its comment to the candidate."""
        case = self._case_or_404(case_id)
        decision = parse_decision(request.form.get("decision", ""))
        comment = request.form.get("comment", "")

        def decide():
            if decision is None:
                raise TransitionRefused(_("請選擇判定結果。"))
            workflow.record_verdict(case, decision, current_user, comment)

        label = decision.label if decision else ""
        return self._step(
            case,
            decide,
            _("案件 #%(id)s 已判定「%(decision)s」。", id=case_id, decision=label),
            typed={"step": "verdict", "text": comment, "decision": decision},
        )

    @expose("/<int:case_id>/undo-verdict/", methods=["POST"])
    def undo_verdict(self, case_id):
        """撤銷判定 with the reason; the case goes back to 判定."""
        case = self._case_or_404(case_id)
        reason = request.form.get("reason", "")
        return self._step(
            case,
            lambda: workflow.undo_verdict(case, current_user, reason),
            _("案件 #%(id)s 的判定已撤銷，案件回到判定階段。", id=case_id),
            typed={"step": "undo", "text": reason},
        )

    @action("bulk_verdict", _l("批次判定"))
    def action_bulk_verdict(self, ids):
        return self._bulk_verdict_form(cases_by_ids(parse_ids(ids)))

    def _bulk_verdict_form(self, cases, decision=None, comment="", error=None):
        return self.render(
            "admin/case_bulk_verdict.html",
            cases=cases,
            decisions=list(Decision),
            decision=decision,
            comment=comment,
            error=error,
            return_url=self.list_url(),
        )

    @expose("/bulk-verdict/confirm/", methods=["POST"])
    def confirm_bulk_verdict(self):
        """The chosen verdict and the cases it will be recorded on, before anything is changed."""
        cases = cases_by_ids(parse_ids(request.form.getlist("ids")))
        decision = parse_decision(request.form.get("decision", ""))
        comment = request.form.get("comment", "").strip()
        if not cases:
            flash(_("請先勾選案件。"), "error")
            return redirect(self.list_url(), code=303)
        if decision is None:
            return self._bulk_verdict_form(cases, None, comment, _("請選擇判定結果。"))
        if comment_missing(decision, comment):
            error = _("判定「%(decision)s」必須填寫意見。", decision=decision.label)
            return self._bulk_verdict_form(cases, decision, comment, error)
        try:
            workflow.check_length(comment, workflow.STAFF_COMMENT_LIMIT, _("判定意見"))
        except TransitionRefused as refusal:
            return self._bulk_verdict_form(cases, decision, comment, refusal.message)

        action_name = workflow.VERDICT_ACTIONS[decision]
        return self.render(
            "admin/case_bulk_verdict_confirm.html",
            cases=cases,
            decision=decision,
            comment=comment,
            applies={case.id: can_take(case, action_name, current_user) for case in cases},
            return_url=self.list_url(),
        )

    @expose("/bulk-verdict/", methods=["POST"])
    def bulk_verdict(self):
        """Record the confirmed verdict on each case it still applies to."""
        cases = cases_by_ids(parse_ids(request.form.getlist("ids")))
        decision = parse_decision(request.form.get("decision", ""))
        if not cases or decision is None:
            flash(_("請先勾選案件並選擇判定結果。"), "error")
            return redirect(self.list_url(), code=303)

        comment = request.form.get("comment", "")
        result = workflow.record_verdicts(cases, decision, current_user, comment)
        message = bulk_outcome(
            _(
                "%(count)s 件已判定「%(decision)s」",
                count=len(result.done),
                decision=decision.label,
            ),
            result.refused,
        )
        db.session.commit()
        flash(*message)
        return redirect(self.list_url(), code=303)

    # --- 申復 ---

    @expose("/<int:case_id>/appeal/<step>/", methods=["POST"])
    def decide_appeal(self, case_id, step):
        """受理 / 未受理 a filed appeal, or 申復成立 / 不成立 once it has been examined."""
        if step not in APPEAL_STEPS:
            abort(404)
        case = self._case_or_404(case_id)
        operation, outcome = APPEAL_STEPS[step]
        comment = request.form.get("comment", "")
        return self._step(
            case,
            lambda: operation(case, current_user, comment),
            outcome(case_id),
            typed={"step": step, "text": comment},
        )
