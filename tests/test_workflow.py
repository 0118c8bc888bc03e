"""The review workflow's rules, on both databases: every path, every refusal, no half-changes."""

from datetime import datetime

import pytest
import sqlalchemy as sa

from admin_app import demo
from admin_app.extensions import db
from admin_app.i18n import TAIPEI
from models import (
    AuditEvent,
    Case,
    CaseState,
    Decision,
    ReviewAssignment,
    Verdict,
    workflow,
)
from models.application import submit_application
from models.operations import TRANSITIONS, TransitionRefused, transition

from .factories import case_in, new_applicant, pdf_upload, review_all, reviewers

S = CaseState


def states_of(case):
    db.session.expire_all()
    return [
        (event.from_state, event.to_state)
        for event in db.session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.case_id == case.id, AuditEvent.to_state.is_not(None))
            .order_by(AuditEvent.id)
        )
    ]


def test_pass_first_round_then_certify_and_announce(cycle, staff):
    case = case_in(S.announced, cycle, staff)

    assert case.state is S.announced
    assert case.certificate_number == cycle.format_certificate_number(1)
    assert case.certified_at is not None and case.announced_at is not None
    assert states_of(case) == [
        (S.draft, S.formal_review),
        (S.formal_review, S.awaiting_assignment),
        (S.awaiting_assignment, S.under_review),
        (S.under_review, S.awaiting_verdict),
        (S.awaiting_verdict, S.passed),
        (S.passed, S.certified),
        (S.certified, S.announced),
    ]


def test_revision_then_second_round_passes(cycle, staff):
    case = case_in(S.awaiting_verdict, cycle, staff, round_=2)

    assert case.round == 2 and case.status_label == "複審判定"
    with pytest.raises(TransitionRefused):
        workflow.record_verdict(case, Decision.revise_and_review, staff, "再修正")
    workflow.record_verdict(case, Decision.passed, staff)
    db.session.commit()

    assert case.state is S.passed
    rounds = db.session.scalars(
        sa.select(ReviewAssignment.round).where(ReviewAssignment.case_id == case.id)
    ).all()
    assert sorted(rounds) == [1, 1, 2, 2]


def test_fail_appeal_upheld_reaches_passed(cycle, staff):
    case = case_in(S.appeal_review, cycle, staff)

    workflow.uphold_appeal(case, staff, "申復有理由。")
    db.session.commit()

    assert case.state is S.passed
    assert case.appeal.outcome.value == "upheld"
    assert case.appeal.decided_by_id == staff.id


def test_appeal_not_accepted_closes(cycle, staff):
    case = case_in(S.appeal_filed, cycle, staff)

    with pytest.raises(TransitionRefused):
        workflow.reject_appeal(case, staff, "")
    workflow.reject_appeal(case, staff, "逾越申復範圍。")
    db.session.commit()

    assert case.state is S.closed and case.status_label == "未通過"


def test_appeal_with_attachment(cycle, staff):
    case = case_in(S.failed, cycle, staff)

    workflow.file_appeal(case, case.applicant, "理由", attachment=pdf_upload("申復.pdf"))
    db.session.commit()

    assert case.state is S.appeal_filed
    assert case.appeal.document.original_name == "申復.pdf"


@pytest.mark.parametrize(
    "notified_utc, filed_utc, allowed",
    [
        # notice 2026-03-01 10:00 Taipei; 10 days → last moment 2026-03-11 23:59:59 Taipei
        ("2026-03-01T02:00:00+00:00", "2026-03-11T15:59:59+00:00", True),
        ("2026-03-01T02:00:00+00:00", "2026-03-11T16:00:00+00:00", False),
        # notice late at night Taipei (already the next day there) counts from the Taipei day
        ("2026-03-01T17:30:00+00:00", "2026-03-12T15:59:59+00:00", True),
    ],
)
def test_appeal_deadline_in_taipei_time(cycle, staff, notified_utc, filed_utc, allowed):
    case = case_in(S.failed, cycle, staff)
    deadline = cycle.appeal_deadline(datetime.fromisoformat(notified_utc))
    db.session.execute(sa.update(Case).where(Case.id == case.id).values(appeal_deadline=deadline))
    db.session.commit()
    db.session.refresh(case)

    assert deadline.astimezone(TAIPEI).strftime("%H:%M:%S") == "23:59:59"
    moment = datetime.fromisoformat(filed_utc)
    if allowed:
        workflow.file_appeal(case, case.applicant, "理由", moment=moment)
        assert case.state is S.appeal_filed
    else:
        with pytest.raises(TransitionRefused, match="截止"):
            workflow.file_appeal(case, case.applicant, "理由", moment=moment)
        db.session.rollback()
        assert db.session.get(Case, case.id).state is S.failed
        assert workflow.close_expired_appeal_windows(moment) == 1
        db.session.commit()
        assert db.session.get(Case, case.id).state is S.closed


def test_stale_action_is_refused_and_changes_nothing(cycle, staff, submitted_case):
    workflow.pass_formal_review([submitted_case], staff)
    db.session.commit()
    events_before = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))

    with pytest.raises(TransitionRefused, match="無法執行"):
        workflow.return_for_correction(submitted_case, staff, "遲到的退件")
    result = workflow.pass_formal_review([submitted_case], staff)
    db.session.commit()

    assert result.done == [] and len(result.refused) == 1
    assert db.session.get(Case, submitted_case.id).state is S.awaiting_assignment
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id))) == events_before


def test_stale_version_loses(cycle, staff, submitted_case):
    db.session.execute(
        sa.update(Case)
        .where(Case.id == submitted_case.id)
        .values(version=Case.version + 1)
        .execution_options(synchronize_session=False)
    )
    with pytest.raises(TransitionRefused, match="重新整理"):
        transition(submitted_case, "pass_formal_review", staff)


def test_roles_are_enforced(cycle, staff, submitted_case, teacher, reviewer):
    with pytest.raises(TransitionRefused, match="權限"):
        transition(submitted_case, "pass_formal_review", teacher)
    with pytest.raises(TransitionRefused, match="權限"):
        transition(submitted_case, "pass_formal_review", reviewer)
    with pytest.raises(TransitionRefused, match="意見"):
        workflow.return_for_correction(submitted_case, staff, "   ")


def test_every_action_is_refused_from_every_other_state():
    for action in TRANSITIONS.values():
        for state in CaseState:
            for round_ in (1, 2):
                allowed = any(s is state and (r is None or r == round_) for s, r in action.sources)
                assert action.starts_from(state, round_) is allowed


def test_returned_case_is_resubmitted(cycle, staff):
    case = case_in(S.returned, cycle, staff)

    assert case.is_editable and case.status_label == "形式審查退件"
    submit_application(case, case.applicant)
    db.session.commit()

    assert case.state is S.formal_review
    public = [e.comment for e in case.events if e.comment_public]
    assert public == [demo.RETURN_COMMENT]


def test_conflict_of_interest(cycle, staff):
    applicant = new_applicant(cycle)
    case = case_in(S.awaiting_assignment, cycle, staff, applicant=applicant)
    colleague, outsider = reviewers(2)
    colleague.school_id = applicant.school_id
    db.session.flush()

    with pytest.raises(TransitionRefused, match="同校"):
        workflow.assign_reviewers(case, [colleague, outsider], staff)
    with pytest.raises(TransitionRefused, match="重複"):
        workflow.assign_reviewers(case, [outsider, outsider], staff)
    with pytest.raises(TransitionRefused, match="2 位"):
        workflow.assign_reviewers(case, [outsider], staff)
    assert colleague not in workflow.eligible_reviewers(case)
    db.session.rollback()
    assert db.session.get(Case, case.id).state is S.awaiting_assignment


def test_automatic_assignment_balances_load(cycle, staff):
    panel = reviewers(4)
    cases = [case_in(S.awaiting_assignment, cycle, staff, panel=panel) for _ in range(4)]

    plan, impossible = workflow.plan_automatic_assignment(cases)
    result = workflow.apply_assignment_plan(plan, staff)
    db.session.commit()

    assert impossible == [] and len(result.done) == 4
    loads = workflow.open_loads()
    assert sorted(loads.values()) == [2, 2, 2, 2]


def test_reviews_move_case_to_verdict_only_when_all_are_in(cycle, staff):
    case = case_in(S.under_review, cycle, staff)
    first, second = [a for a in case.assignments if a.round == 1]
    results = {i: {"result": "meets", "comment": ""} for i in first.item_results or {}}

    with pytest.raises(TransitionRefused, match="建議審查結果"):
        workflow.save_review(first, first.reviewer, results, "意見", None, True)
    workflow.save_review(first, first.reviewer, {}, "草稿", None, False)
    db.session.commit()
    assert first.submitted_at is None and case.state is S.under_review

    review_all(case)
    db.session.commit()
    assert case.state is S.awaiting_verdict and case.status_label == "初審判定"
    with pytest.raises(TransitionRefused, match="已送出"):
        workflow.save_review(second, second.reviewer, {}, "改", Decision.failed, True)


def test_reviewer_cannot_review_someone_elses_assignment(cycle, staff):
    case = case_in(S.under_review, cycle, staff)
    first, second = [a for a in case.assignments if a.round == 1]

    with pytest.raises(TransitionRefused, match="不是分發給您"):
        workflow.save_review(first, second.reviewer, {}, "x", Decision.passed, False)


def test_verdict_comment_required_except_pass(cycle, staff):
    case = case_in(S.awaiting_verdict, cycle, staff)

    for decision in (Decision.passed_after_revision, Decision.revise_and_review, Decision.failed):
        with pytest.raises(TransitionRefused, match="意見"):
            workflow.record_verdict(case, decision, staff, "")
    workflow.record_verdict(case, Decision.passed, staff)
    db.session.commit()
    assert case.state is S.passed


def test_undo_verdict_restores_and_is_audited(cycle, staff):
    case = case_in(S.failed, cycle, staff)
    assert case.appeal_deadline is not None

    with pytest.raises(TransitionRefused, match="意見"):
        workflow.undo_verdict(case, staff, "")
    workflow.undo_verdict(case, staff, "誤植判定結果")
    db.session.commit()

    assert case.state is S.awaiting_verdict and case.appeal_deadline is None
    verdict = db.session.scalar(sa.select(Verdict).where(Verdict.case_id == case.id))
    assert verdict.undone_by_id == staff.id and verdict.undo_reason == "誤植判定結果"
    assert workflow.current_verdict(case) is None
    with pytest.raises(TransitionRefused):
        workflow.undo_verdict(case, staff, "再撤一次")


def test_undo_refused_once_the_case_moved_on(cycle, staff):
    case = case_in(S.appeal_filed, cycle, staff)

    assert not workflow.can_undo_verdict(case)
    with pytest.raises(TransitionRefused):
        workflow.undo_verdict(case, staff, "太晚了")


def test_certificate_numbers_are_sequential_and_unique(cycle, staff):
    cases = [case_in(S.passed, cycle, staff) for _ in range(3)]

    issued = workflow.issue_certificates(cycle, staff)
    db.session.commit()

    assert len(issued) == 3
    numbers = sorted(db.session.get(Case, c.id).certificate_seq for c in cases)
    assert numbers == [1, 2, 3]
    assert cycle.certificate_counter == 3
    assert workflow.issue_certificates(cycle, staff) == []


def test_database_refuses_duplicate_certificate_number(cycle, staff):
    first, second = (case_in(S.passed, cycle, staff) for _ in range(2))
    workflow.issue_certificates(cycle, staff)
    db.session.commit()

    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(
            sa.update(Case)
            .where(Case.id == second.id)
            .values(certificate_number=db.session.get(Case, first.id).certificate_number)
        )
        db.session.flush()
    db.session.rollback()


def test_database_refuses_verdict_without_decider(cycle, staff, submitted_case):
    db.session.add(Verdict(case_id=submitted_case.id, round=1, decision=Decision.passed))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_database_refuses_unknown_state(cycle, submitted_case):
    with pytest.raises(sa.exc.StatementError):
        db.session.execute(
            sa.text("UPDATE \"case\" SET state = 'nonsense' WHERE id = :id"),
            {"id": submitted_case.id},
        )
        db.session.flush()
    db.session.rollback()


@pytest.mark.parametrize(
    ("login", "decision"),
    [("teacher_failed", Decision.failed), ("teacher_revision", Decision.revise_and_review)],
)
def test_demo_reviews_agree_with_the_verdict(app, login, decision):
    from models import ReviewAssignment, User, Verdict

    demo.load_demo()
    db.session.commit()
    user = db.session.scalar(sa.select(User).where(User.login == login))
    case = db.session.scalar(sa.select(Case).where(Case.applicant_id == user.id))
    verdict = db.session.scalar(sa.select(Verdict).where(Verdict.case_id == case.id))
    reviews = db.session.scalars(
        sa.select(ReviewAssignment).where(ReviewAssignment.case_id == case.id)
    ).all()

    assert verdict.decision is decision
    assert reviews and all(review.recommendation is decision for review in reviews)
    for review in reviews:
        wanting = [r for r in review.item_results.values() if r["result"] == "improve"]
        assert wanting and all(r["comment"] for r in wanting)


def test_every_demo_account_printed_for_newcomers_exists(app):
    from models import User

    printed = demo.load_demo()
    db.session.commit()
    logins = [login for login, _description in printed]
    found = db.session.scalars(sa.select(User.login).where(User.login.in_(logins))).all()

    assert sorted(found) == sorted(logins)
    assert {"teacher_passed", "reviewer3", "reviewer4"} <= set(logins)
