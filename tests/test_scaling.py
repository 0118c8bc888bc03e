"""Pages cost the same number of SQL statements with 10 cases as with 200, and a big case's page
as many as a small one's: the guards of the performance benchmark (bench/run.py) that can be
counted rather than timed.
"""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from admin_app.extensions import db
from admin_app.i18n import now_utc
from bench.export_benchmark import insert_synthetic_cases
from models import AuditEvent, Case, CaseState, County, Document, DocumentKind, ReviewAssignment

from .factories import case_in, counted_statements

FEW, MANY = 10, 200


def _grow(cycle, count, reviewer=None):
    """Add synthetic cases in bulk (and assign them to the reviewer) until there are `count`."""
    existing = db.session.scalar(sa.select(sa.func.count()).select_from(Case))
    insert_synthetic_cases(cycle, count - existing, ["臺北市", "新北市"], schools_per_county=3)
    if reviewer is not None:
        assigned = set(
            db.session.scalars(
                sa.select(ReviewAssignment.case_id).where(
                    ReviewAssignment.reviewer_id == reviewer.id
                )
            )
        )
        now = now_utc()
        rows = [
            {
                "case_id": case_id,
                "round": 1,
                "reviewer_id": reviewer.id,
                "assigned_at": now,
                "due_at": now + timedelta(days=14),
                "item_results": {},
                "overall_comment": "",
            }
            for case_id in db.session.scalars(sa.select(Case.id).order_by(Case.id))
            if case_id not in assigned
        ]
        db.session.execute(sa.insert(ReviewAssignment), rows)
    db.session.commit()


def _statements(client, url):
    """The statements of one GET, from a fresh session as each request has in production."""
    db.session.expire_all()
    with counted_statements() as statements:
        response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return statements


def _flat(client, url, grow):
    """The statement count of `url` before and after `grow()` adds rows."""
    few = _statements(client, url)
    grow()
    many = _statements(client, url)
    return few, many


@pytest.mark.parametrize(
    "url",
    [
        "/admin/case/",
        "/admin/case/?flt0_0={cycle}&flt1_1={county}&flt2_2=announced",
        "/admin/case/?flt0_0={cycle}&flt2_2=closed&page=1",
    ],
    ids=["all", "filtered", "second-page"],
)
def test_case_list_statements_do_not_grow_with_cases(login, staff, cycle, url):
    county = db.session.scalar(sa.select(County.id).where(County.name == "臺北市"))
    url = url.format(cycle=cycle.id, county=county)
    _grow(cycle, FEW)
    client = login(staff)

    few, many = _flat(client, url, lambda: _grow(cycle, MANY))

    assert len(few) == len(many), many


def test_case_page_statements_do_not_grow_with_events_documents_or_reviews(login, staff, cycle):
    case = case_in(CaseState.awaiting_verdict, cycle, staff)
    _grow(cycle, FEW)
    client = login(staff)

    def enlarge():
        moment = now_utc()
        db.session.execute(
            sa.insert(AuditEvent),
            [
                {"case_id": case.id, "action": "save_record", "actor_id": case.applicant_id,
                 "round": 1, "comment": f"第 {n} 次儲存", "created_at": moment}
                for n in range(30)
            ],
        )  # fmt: skip
        db.session.execute(
            sa.insert(Document),
            [
                {"case_id": case.id, "kind": DocumentKind.community, "round": 1,
                 "original_name": f"舊檔{n}.pdf", "stored_name": f"ab/{n:032x}.pdf",
                 "size": 100, "sha256": "0" * 64, "uploaded_by_id": case.applicant_id,
                 "superseded_at": moment}
                for n in range(6)
            ],
        )  # fmt: skip
        _grow(cycle, MANY)

    few, many = _flat(client, f"/admin/case/details/?id={case.id}", enlarge)

    assert len(few) == len(many), many


def test_reviewer_list_statements_do_not_grow_with_assignments(login, reviewer, cycle):
    _grow(cycle, FEW, reviewer)
    client = login(reviewer)

    few, many = _flat(client, "/review/", lambda: _grow(cycle, MANY, reviewer))

    assert len(few) == len(many), many


def test_county_page_statements_do_not_grow_with_cases(login, county_officer, cycle):
    _grow(cycle, FEW)
    client = login(county_officer)

    few, many = _flat(client, "/county/", lambda: _grow(cycle, MANY))

    assert len(few) == len(many), many


def test_application_page_statements_do_not_grow_with_cases(login, teacher, filled_case, cycle):
    _grow(cycle, FEW)
    client = login(teacher)

    few, many = _flat(client, "/apply", lambda: _grow(cycle, MANY))

    assert len(few) == len(many), many


def test_issuing_certificates_costs_the_same_statements_for_few_and_many_cases(cycle, staff):
    from models import workflow

    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite sends an INSERT … RETURNING per row; PostgreSQL batches them")

    def issue():
        with counted_statements() as statements:
            issued = workflow.issue_certificates(cycle, staff)
            db.session.flush()
        db.session.rollback()
        return issued, statements

    _grow(cycle, FEW)
    few_issued, few = issue()
    _grow(cycle, MANY)
    many_issued, many = issue()

    assert 0 < len(few_issued) < len(many_issued)
    assert len(few) == len(many), many


def test_bulk_issue_writes_an_event_and_a_message_per_case(cycle, staff):
    from models import Notification, OutgoingMail, workflow

    _grow(cycle, 40)
    issued = workflow.issue_certificates(cycle, staff)
    db.session.commit()

    ids = {case.id for case in issued}
    events = db.session.scalars(
        sa.select(AuditEvent.case_id).where(AuditEvent.action == "issue_certificate")
    ).all()
    messages = db.session.scalars(
        sa.select(Notification.case_id).where(Notification.kind == "certified")
    ).all()
    mails = db.session.scalars(
        sa.select(OutgoingMail.case_id).where(OutgoingMail.kind == "certified")
    ).all()
    assert sorted(events) == sorted(messages) == sorted(mails) == sorted(ids)
    assert all(case.state is CaseState.certified and case.certificate_number for case in issued)


def test_bulk_transition_changes_nothing_when_one_case_moved_meanwhile(cycle, staff):
    from models import workflow
    from models.operations import TransitionRefused, transition_many

    _grow(cycle, 40)
    cases = workflow.passed_cases(cycle)
    # as another member of staff would: the objects in this session keep the version they read
    db.session.execute(
        sa.update(Case)
        .where(Case.id == cases[-1].id)
        .values(version=Case.version + 1)
        .execution_options(synchronize_session=False)
    )

    numbers = {
        case.id: {
            "certificate_seq": 900 + n,
            "certificate_number": f"測試字第{900 + n}號",
            "certified_at": now_utc(),
        }
        for n, case in enumerate(cases)
    }
    with pytest.raises(TransitionRefused):
        transition_many(cases, "issue_certificate", staff, values=numbers)
    db.session.rollback()

    states = db.session.scalars(sa.select(Case.state).where(Case.id.in_([c.id for c in cases])))
    assert set(states) == {CaseState.passed}
