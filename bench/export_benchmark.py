"""How long the 案件總表 export takes and how much memory it needs, at 20,000 and 100,000 cases.

    .venv/bin/python bench/export_benchmark.py                 # 20,000 and 100,000 rows
    .venv/bin/python bench/export_benchmark.py --rows 5000     # other sizes

For each size it builds a SQLite database in /tmp with synthetic cases (bulk inserted: accounts,
schools, cases, formal-review events, verdicts, appeals, certificate numbers), then measures, each
in a fresh Python process so that the peak resident size means something:

- export: `exports.spreadsheets.write_case_list`, reading from the database and writing the
  workbook (20,000 rows: one county's sheet; 100,000 rows: the whole country, 22 county sheets
  plus the summary);
- plain: openpyxl's write-only mode appending the same rows from a Python list built beforehand
  (the list is built before the measurement starts), as the floor the export is compared with.

Times are wall-clock without tracemalloc; the tracemalloc peak comes from a second run, because
tracing slows Python down. `maxrss +` is how much the process's peak resident size grew during
the measured part.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import sqlalchemy as sa  # noqa: E402

from admin_app.extensions import db  # noqa: E402

BATCH = 5000


def insert_synthetic_cases(cycle, count, county_names=None, schools_per_county=40):
    """Bulk insert `count` cases of the cycle spread over the counties; returns nothing.

    Used by the benchmark and by a test that checks the export's memory stays flat.
    """
    from models import (
        Appeal,
        AppealOutcome,
        AuditEvent,
        Case,
        CaseState,
        County,
        Decision,
        Position,
        Role,
        School,
        User,
        Verdict,
    )

    counties = db.session.execute(
        sa.select(County.id, County.name).order_by(County.sort_order)
    ).all()
    if county_names:
        counties = [row for row in counties if row.name in county_names]
    start = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    tag = os.urandom(3).hex()

    school_rows = [
        {
            "code": f"B{tag}{county_id:02d}{n:03d}",
            "name": f"{name}立測試學校{tag}{n}",
            "county_id": county_id,
        }
        for county_id, name in counties
        for n in range(schools_per_county)
    ]
    school_ids = _insert(School, school_rows)
    school_county = {
        sid: row["county_id"] for sid, row in zip(school_ids, school_rows, strict=True)
    }

    # a cycle of states, each with the facts the database insists on
    states = [
        (CaseState.formal_review, 1),
        (CaseState.returned, 1),
        (CaseState.under_review, 1),
        (CaseState.awaiting_verdict, 2),
        (CaseState.passed, 1),
        (CaseState.certified, 1),
        (CaseState.announced, 1),
        (CaseState.announced, 2),
        (CaseState.closed, 1),
        (CaseState.appeal_review, 1),
    ]
    seq = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.max(Case.certificate_seq), 0)).where(
            Case.cycle_id == cycle.id
        )
    )
    for first in range(0, count, BATCH):
        numbers = range(first, min(count, first + BATCH))
        users = []
        for n in numbers:
            school_id = school_ids[n % len(school_ids)]
            users.append(
                {
                    "login": f"bench{tag}{n:07d}",
                    "name": f"測試教師{n}",
                    "email": f"bench{n}@example.edu.tw",
                    "role": Role.applicant,
                    "position": Position.principal if n % 9 == 0 else Position.teacher,
                    "school_id": school_id,
                    "password_hash": "",
                    "active": True,
                    "created_at": start,
                }
            )
        user_ids = _insert(User, users)

        cases = []
        for n, user_id, user in zip(numbers, user_ids, users, strict=True):
            state, round_ = states[n % len(states)]
            submitted = start + timedelta(minutes=n)
            row = {
                "cycle_id": cycle.id,
                "applicant_id": user_id,
                "school_id": user["school_id"],
                "county_id": school_county[user["school_id"]],
                "state": state,
                "round": round_,
                "version": 5,
                "created_at": submitted,
                "updated_at": submitted,
                "submitted_at": submitted,
                "state_changed_at": submitted,
                "certificate_seq": None,
                "certificate_number": None,
                "certified_at": None,
                "announced_at": None,
            }
            if state in (CaseState.certified, CaseState.announced):
                seq += 1
                row.update(
                    certificate_seq=seq,
                    certificate_number=cycle.format_certificate_number(seq),
                    certified_at=submitted + timedelta(days=60),
                    announced_at=(
                        submitted + timedelta(days=70) if state is CaseState.announced else None
                    ),
                )
            cases.append(row)
        case_ids = _insert(Case, cases)

        events, verdicts, appeals = [], [], []
        for case_id, row in zip(case_ids, cases, strict=True):
            state, moment = row["state"], row["submitted_at"]
            if state is CaseState.formal_review:
                continue
            action = (
                "return_for_correction" if state is CaseState.returned else "pass_formal_review"
            )
            events.append(
                {
                    "created_at": moment + timedelta(days=3),
                    "case_id": case_id,
                    "action": action,
                    "from_state": CaseState.formal_review,
                    "to_state": CaseState.returned
                    if state is CaseState.returned
                    else CaseState.awaiting_assignment,
                    "round": 1,
                    "comment": "",
                    "comment_public": False,
                }
            )
            decided = state not in (
                CaseState.returned,
                CaseState.under_review,
                CaseState.awaiting_verdict,
            )
            if decided or row["round"] == 2:
                failed = state in (CaseState.closed, CaseState.appeal_review)
                verdicts.append(
                    {
                        "case_id": case_id,
                        "round": 1,
                        "decision": Decision.revise_and_review
                        if row["round"] == 2
                        else (Decision.failed if failed else Decision.passed),
                        "comment": "",
                        "decided_by_id": user_ids[0],
                        "decided_at": moment + timedelta(days=30),
                    }
                )
            if decided and row["round"] == 2:
                verdicts.append(
                    {
                        "case_id": case_id,
                        "round": 2,
                        "decision": Decision.passed,
                        "comment": "",
                        "decided_by_id": user_ids[0],
                        "decided_at": moment + timedelta(days=50),
                    }
                )
            if state in (CaseState.closed, CaseState.appeal_review):
                dismissed = state is CaseState.closed
                appeals.append(
                    {
                        "case_id": case_id,
                        "reason": "請重新審查。",
                        "filed_at": moment + timedelta(days=33),
                        "outcome": AppealOutcome.dismissed if dismissed else AppealOutcome.accepted,
                        "decided_by_id": user_ids[0],
                        "decided_at": moment + timedelta(days=40),
                        "comment": "",
                    }
                )
        _insert(AuditEvent, events, returning=False)
        _insert(Verdict, verdicts, returning=False)
        _insert(Appeal, appeals, returning=False)

    db.session.execute(
        sa.update(type(cycle)).where(type(cycle).id == cycle.id).values(certificate_counter=seq)
    )
    db.session.commit()


def _insert(model, rows, returning=True):
    """Insert rows with one executemany; the new ids in the order of the rows."""
    if not rows:
        return []
    table = model.__table__
    if not returning:
        db.session.execute(table.insert(), rows)
        return []
    statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
    return list(db.session.execute(statement, rows).scalars())


# --- building a database and measuring, each in its own process ----------------------------


def _app(database_path):
    from admin_app import create_app

    os.environ.setdefault("INSTANCE_PATH", os.path.join(tempfile.gettempdir(), "bench-instance"))
    # a path is a SQLite file; a URL (bench/run.py on PostgreSQL) is used as it is
    uri = database_path if "://" in database_path else f"sqlite:///{database_path}"
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": uri,
            "SECRET_KEY": "benchmark",
            "JOBS_IN_PROCESS": False,
        }
    )


def build(database_path, rows):
    """A fresh SQLite database with a cycle and `rows` synthetic cases."""
    from admin_app import demo
    from models import Cycle

    if "://" in database_path:
        engine = sa.create_engine(database_path)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    elif os.path.exists(database_path):
        os.remove(database_path)
    app = _app(database_path)
    with app.app_context():
        db.create_all()
        demo.load_reference_data()
        cycle = Cycle(
            academic_year=114,
            name="114 學年度進階專業回饋人才認證",
            opens_at=datetime(2025, 2, 1, tzinfo=UTC),
            closes_at=datetime(2025, 5, 31, tzinfo=UTC),
            hours_from_year=112,
            hours_to_year=113,
        )
        db.session.add(cycle)
        db.session.commit()
        # one county's spreadsheet up to 20,000 rows; beyond that, the whole country
        counties = ["臺北市"] if rows <= 20_000 else None
        insert_synthetic_cases(cycle, rows, counties)
        # the planner's statistics, as autovacuum keeps them on a database in service
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()


def _measured(function, trace):
    """Run function(); (seconds, tracemalloc peak bytes or None, maxrss growth and end in KiB).

    The end figure is the process's peak resident size during the measured part when Linux lets
    it be reset first (/proc/self/clear_refs); otherwise ru_maxrss, which a child process
    inherits from the parent it was forked from and so may overstate.
    """
    reset = _reset_peak_rss()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    function()
    seconds = time.perf_counter() - started
    peak = None
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if reset:
        after = _peak_rss_kib() or after
    return seconds, peak, max(0, after - before), after


def _reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_kib():
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def measure(database_path, rows, what, trace):
    """One measurement, printed as JSON for the parent process."""
    from openpyxl import Workbook

    from exports import spreadsheets
    from models import County, Cycle

    app = _app(database_path)
    output = os.path.join(tempfile.gettempdir(), f"bench-{what}-{rows}.xlsx")
    with app.app_context():
        cycle = db.session.scalar(sa.select(Cycle))
        county = None
        if rows <= 20_000:
            county = db.session.scalar(sa.select(County).where(County.name == "臺北市"))

        if what == "export":

            def work():
                spreadsheets.write_case_list(output, cycle, county)

        else:
            listed = list(
                spreadsheets.case_rows(cycle, county.id if county else None, county is None)
            )
            headers = [column.header for column in spreadsheets.case_columns()]

            def work():
                workbook = Workbook(write_only=True)
                sheet = workbook.create_sheet("案件總表")
                sheet.append(headers)
                for row in listed:
                    sheet.append(row)
                workbook.save(output)

        seconds, peak, grown, maxrss = _measured(work, trace)
    size = os.path.getsize(output)
    os.remove(output)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak": peak,
                "grown_kib": grown,
                "maxrss_kib": maxrss,
                "bytes": size,
            }
        )
    )


def _child(database_path, rows, what, trace):
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--measure",
        what,
        "--database",
        database_path,
        "--rows",
        str(rows),
    ]
    if trace:
        command.append("--trace")
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--measure", choices=["export", "plain"])
    parser.add_argument("--database")
    parser.add_argument("--trace", action="store_true")
    arguments = parser.parse_args()

    if arguments.measure:
        measure(arguments.database, arguments.rows[0], arguments.measure, arguments.trace)
        return

    print(
        f"{'rows':>8} {'what':<7} {'seconds':>8} {'tracemalloc peak':>17} {'maxrss +':>10}"
        f" {'maxrss':>9}  file"
    )
    for rows in arguments.rows:
        database_path = os.path.join(tempfile.gettempdir(), f"bench-export-{rows}.db")
        started = time.perf_counter()
        build(database_path, rows)
        print(f"# {rows:,} synthetic cases inserted in {time.perf_counter() - started:.1f} s")
        for what in ("export", "plain"):
            timed = _child(database_path, rows, what, trace=False)
            traced = _child(database_path, rows, what, trace=True)
            print(
                f"{rows:>8} {what:<7} {timed['seconds']:>8.1f} "
                f"{traced['peak'] / 2**20:>14.1f} MB {timed['grown_kib'] / 1024:>7.1f} MB"
                f" {timed['maxrss_kib'] / 1024:>6.0f} MB  {timed['bytes'] / 2**20:.1f} MB"
            )


if __name__ == "__main__":
    main()
