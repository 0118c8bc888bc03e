"""models.bulk: many rows in one statement, the same rows on SQLite and on PostgreSQL."""

from datetime import UTC, datetime

import sqlalchemy as sa

from admin_app.extensions import db
from models import AuditEvent, CaseState
from models.bulk import insert_many


def _event(case_id, **changes):
    row = {
        "created_at": datetime(2026, 5, 1, 8, 30, tzinfo=UTC),
        "actor_id": None,
        "case_id": case_id,
        "action": "issue_certificate",
        "from_state": CaseState.passed,
        "to_state": CaseState.certified,
        "round": 1,
        "comment": "",
        "comment_public": False,
        "remote_addr": None,
    }
    return {**row, **changes}


def _stored(ids):
    return {
        event.id: event
        for event in db.session.scalars(sa.select(AuditEvent).where(AuditEvent.id.in_(ids)))
    }


def test_rows_shared_and_varying_values_come_back_each_with_its_key(submitted_case):
    other_moment = datetime(2026, 5, 2, 9, 0, tzinfo=UTC)
    rows = [
        _event(submitted_case.id),
        _event(submitted_case.id, round=2, comment="第二輪", remote_addr="127.0.0.1"),
        _event(submitted_case.id, from_state=None, created_at=other_moment),
    ]
    table = AuditEvent.__table__
    returned = insert_many(table, rows, returning=(table.c.id, table.c.round))

    assert len(returned) == 3 and len({event_id for event_id, _round in returned}) == 3
    stored = _stored([event_id for event_id, _round in returned])
    by_round = sorted(stored.values(), key=lambda event: (event.round, event.created_at))
    first, third, second = by_round
    assert [event.round for event in (first, second, third)] == [1, 2, 1]
    assert second.comment == "第二輪" and second.remote_addr == "127.0.0.1"
    assert first.comment == "" and first.remote_addr is None
    # enum columns, NULL among the values and time-zone aware moments survive the trip
    assert first.from_state is CaseState.passed and third.from_state is None
    assert {event.to_state for event in stored.values()} == {CaseState.certified}
    assert first.created_at == datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    assert third.created_at == other_moment
    for event_id, round_ in returned:
        assert stored[event_id].round == round_


def test_one_row_and_no_rows(submitted_case):
    table = AuditEvent.__table__
    assert insert_many(table, [], returning=(table.c.id,)) == []
    [(event_id,)] = insert_many(table, [_event(submitted_case.id)], returning=(table.c.id,))
    assert _stored([event_id])[event_id].action == "issue_certificate"


def test_without_returning_the_rows_are_written(submitted_case):
    before = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))
    rows = [_event(submitted_case.id, round=n % 2 + 1) for n in range(250)]
    assert insert_many(AuditEvent.__table__, rows) == []
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id))) == before + 250
