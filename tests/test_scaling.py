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
