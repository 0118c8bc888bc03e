"""A small deadline rush in the test suite: 30 candidates at once on gunicorn and PostgreSQL.

`bench/rush.py` does the work (its docstring says how); this test runs it with 30 candidates
and checks counts, never times: every save and upload the server acknowledged is in the
database, no case was submitted twice although every candidate double-clicks 送出, and there
was no server error. `python -m bench.rush` runs the 300-candidate version and prints figures.
"""

import os

import pytest
import sqlalchemy as sa

from bench import rush

from .conftest import PG_URL

CLIENTS = 30


@pytest.fixture
def postgresql():
    """The test database's URL, or a skip outside CI when no server answers."""
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {error}")
    finally:
        engine.dispose()
    return PG_URL


def test_thirty_candidates_rush_and_nothing_is_lost(postgresql):
    # no time limit: every candidate goes to the end, however long a busy machine takes
    result = rush.run_rush(postgresql, clients=CLIENTS, seconds=None, workers=3, think=0.1)
    print(result.report())

    tally = result.tally
    assert result.all_problems == []
    assert tally.logged_in == CLIENTS
    assert tally.finished == CLIENTS
    assert len(tally.saves) == 3 * CLIENTS and len(tally.uploads) == 3 * CLIENTS
    # every candidate clicked 送出 twice at once: one went through, the other was refused
    assert sum(tally.submits.values()) == CLIENTS
    assert tally.refused_submits == CLIENTS
