"""Two people at once: exactly one wins, and certificate numbers never collide."""

import threading

import pytest
import sqlalchemy as sa

from admin_app.extensions import db
from models import Case, CaseState, Cycle, User, workflow
from models.operations import TransitionRefused

from .conftest import PASSWORD
from .factories import case_in


def _run_together(app, count, work):
    """Run work(index) in `count` threads, each with its own session and connection."""
    barrier = threading.Barrier(count)
    outcomes = [None] * count

    def runner(index):
        with app.app_context():
            barrier.wait()
            try:
                outcomes[index] = work(index)
                db.session.commit()
            except TransitionRefused as refusal:
                db.session.rollback()
                outcomes[index] = refusal
            except Exception as error:  # reported to the test below
                db.session.rollback()
                outcomes[index] = error
            finally:
                db.session.remove()

    threads = [threading.Thread(target=runner, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.fixture
def postgres_only(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrency is proved on PostgreSQL, the production database")


def test_two_staff_on_one_case_exactly_one_wins(app, postgres_only, cycle, staff):
    case_id = case_in(CaseState.formal_review, cycle, staff).id
    staff_id = staff.id

    def act(index):
        case = db.session.get(Case, case_id)
        actor = db.session.get(User, staff_id)
        if index % 2:
            return workflow.return_for_correction(case, actor, "退件")
        return workflow.pass_formal_review([case], actor).done

    outcomes = _run_together(app, 4, act)

    winners = [o for o in outcomes if not isinstance(o, Exception) and o not in ([], None)]
    assert len(winners) == 1, outcomes
    assert not [
        o for o in outcomes if isinstance(o, Exception) and not isinstance(o, TransitionRefused)
    ]
    db.session.expire_all()
    transitions = db.session.scalar(
        sa.text(
            "SELECT count(*) FROM audit_event WHERE case_id = :id AND from_state = 'formal_review'"
        ),
        {"id": case_id},
    )
    assert transitions == 1


def test_concurrent_certificate_issuing_has_no_duplicate_and_no_gap(
    app, postgres_only, cycle, staff
):
    for _ in range(6):
        case_in(CaseState.passed, cycle, staff)
    cycle_id, staff_id = cycle.id, staff.id

    def issue(index):
        return len(
            workflow.issue_certificates(
                db.session.get(Cycle, cycle_id), db.session.get(User, staff_id)
            )
        )

    outcomes = _run_together(app, 4, issue)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sum(outcomes) == 6
    db.session.expire_all()
    seqs = sorted(
        db.session.scalars(sa.select(Case.certificate_seq).where(Case.cycle_id == cycle_id))
    )
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert db.session.get(Cycle, cycle_id).certificate_counter == 6


def test_last_two_reviews_submitted_together_reach_verdict(app, postgres_only, cycle, staff):
    case = case_in(CaseState.under_review, cycle, staff)
    assignment_ids = [a.id for a in case.assignments]
    case_id = case.id
    from models import ApplicationItem, Decision, ReviewAssignment

    results = {i.value: {"result": "meets", "comment": ""} for i in ApplicationItem}

    def submit(index):
        assignment = db.session.get(ReviewAssignment, assignment_ids[index])
        return workflow.save_review(
            assignment, assignment.reviewer, results, "好", Decision.passed, True
        )

    outcomes = _run_together(app, 2, submit)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    db.session.expire_all()
    assert db.session.get(Case, case_id).state is CaseState.awaiting_verdict


def test_two_tabs_issuing_at_once_get_an_answer_not_an_error(app, cycle, staff):
    for _ in range(3):
        case_in(CaseState.passed, cycle, staff)
    db.session.commit()
    url = f"/admin/certificates/{cycle.id}/issue/"
    clients = [app.test_client() for _ in range(3)]
    for client in clients:
        # requests on the test's own thread share its app context, and so its logged-in user
        client.post("/logout")
        client.post("/login", data={"login": staff.login, "password": PASSWORD})
        assert client.get_cookie("session") is not None
    barrier = threading.Barrier(len(clients))
    answers = [None] * len(clients)

    def issue(index):
        barrier.wait()
        answers[index] = clients[index].post(url, data={"count": "3", "first": "1"})

    threads = [threading.Thread(target=issue, args=(index,)) for index in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [answer.status_code for answer in answers] == [303] * len(clients), [
        answer.headers.get("Location") for answer in answers
    ]
    db.session.expire_all()
    assert db.session.get(Cycle, cycle.id).certificate_counter == 3
