"""A national-scale dataset for the benchmarks, built with bulk inserts from a seed.

    .venv/bin/python -m bench.dataset --cases 100000 \
        --database postgresql://postgres@127.0.0.1:5432/bench
    .venv/bin/python -m bench.dataset --cases 2000 --database sqlite:////tmp/bench.db

The database is emptied first (PostgreSQL: its `public` schema is dropped and recreated; SQLite:
the file is removed), the schema is built by the migrations, then the 22 counties, the shipped
record templates and, for N cases:

- five intake cycles (學年度 111–115), the case count growing a little each year; the four past
  cycles hold finished cases (已公告 or 未通過), the newest one cases in every state;
- cases spread over the 22 counties by their approximate teacher numbers, in about 1,500
  schools, each case with its own applicant account;
- per case six documents (three upload items, each with an earlier file or a round-2 revision),
  three filled records, two committee reviews per round that reached review, the verdicts,
  appeals, one portal message with its sent e-mail, and audit events for every step (8 to 30
  per case, more for cases with a longer history);
- a staff account, 120 reviewers and a county officer for 臺北市.

Every value comes from `random.Random(seed)` and fixed dates, so the same seed and size give
the same rows. Documents have no files: every row carries the size and SHA-256 of one small
placeholder PDF (written to bench/out/placeholder.pdf), and the stored names are unique (the
schema insists), so downloading a benchmark document answers "file missing". Rows go in with
COPY on PostgreSQL (psycopg) and with SQLAlchemy core executemany on SQLite, in batches.
Every account's password is `bench-password` (hashed with few iterations, to keep logins in the
load test cheap).
"""

import argparse
import hashlib
import itertools
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

OUT = os.path.join(ROOT, "bench", "out")
PASSWORD = "bench-password"  # noqa: S105 - benchmark accounts only
BATCH = 5000

# approximate share of the country's teachers per county, in COUNTY_NAMES order
COUNTY_WEIGHTS = (
    11.0, 17.0, 10.0, 12.0, 8.0, 12.0, 1.5, 2.0, 1.2, 2.5, 2.3,
    5.3, 2.1, 2.8, 2.1, 3.4, 1.9, 1.4, 0.9, 0.5, 0.4, 0.1,
)  # fmt: skip
CYCLE_YEARS = (111, 112, 113, 114, 115)
CYCLE_WEIGHTS = (0.16, 0.18, 0.20, 0.22, 0.24)
PAST_STATES = (("announced", 0.72), ("closed", 0.28))
CURRENT_STATES = (
    ("draft", 0.15),
    ("formal_review", 0.08),
    ("returned", 0.04),
    ("awaiting_assignment", 0.06),
    ("under_review", 0.10),
    ("awaiting_verdict", 0.06),
    ("revision_requested", 0.05),
    ("passed", 0.12),
    ("certified", 0.06),
    ("announced", 0.05),
    ("failed", 0.05),
    ("appeal_filed", 0.03),
    ("appeal_review", 0.03),
    ("closed", 0.12),
)
# states a case can be in after a second round
ROUND_TWO_STATES = frozenset(
    {
        "awaiting_assignment",
        "under_review",
        "awaiting_verdict",
        "passed",
        "certified",
        "announced",
        "failed",
        "appeal_filed",
        "appeal_review",
        "closed",
    }
)
UPLOAD_KINDS = ("public_teaching", "community", "checklist")
RECORD_ITEMS = ("pre_conference", "observation", "post_conference")
REVIEWERS = 120
MAX_EVENTS = 30


def cycle_window(year):
    """Applications for 學年度 `year` open on 1 December and close at the end of March."""
    opens = datetime(year + 1911, 12, 1, tzinfo=UTC) - timedelta(hours=8)
    return opens, datetime(year + 1912, 3, 31, 15, 59, 59, tzinfo=UTC)


def weighted(rng, pairs):
    """One value of (value, weight) pairs."""
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights)[0]


class Writer:
    """Buffered bulk inserts: COPY on PostgreSQL, executemany through SQLAlchemy elsewhere."""

    def __init__(self, connection):
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self.buffers = {}
        self.counts = {}

    def add(self, table, row):
        self.buffers.setdefault(table, []).append(row)

    def flush(self, *order):
        """Write the buffered rows, tables in the given order (parents before children)."""
        for table in order:
            rows = self.buffers.pop(table, None)
            if not rows:
                continue
            self.counts[table] = self.counts.get(table, 0) + len(rows)
            if self.postgres:
                self._copy(table, rows)
            else:
                from admin_app.extensions import db

                self.connection.execute(db.metadata.tables[table].insert(), rows)

    def _copy(self, table, rows):
        from admin_app.extensions import db

        columns = list(rows[0])
        json_columns = {
            name for name in columns if isinstance(db.metadata.tables[table].c[name].type, sa.JSON)
        }
        names = ", ".join(f'"{name}"' for name in columns)
        raw = self.connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(
                    [
                        json.dumps(row[name], ensure_ascii=False)
                        if name in json_columns
                        else row[name]
                        for name in columns
                    ]
                )


class Ids:
    """The next free id of each table, so that rows can point at each other before insertion."""

    def __init__(self, connection, tables):
        from admin_app.extensions import db

        self.next = {
            name: (connection.scalar(sa.select(sa.func.max(db.metadata.tables[name].c.id))) or 0)
            + 1
            for name in tables
        }

    def take(self, table):
        value = self.next[table]
        self.next[table] = value + 1
        return value


TABLES = (
    "school",
    "user",
    "case",
    "document",
    "form_entry",
    "review_assignment",
    "audit_event",
    "verdict",
    "appeal",
    "notification",
    "outgoing_mail",
)


def placeholder_pdf():
    """The one PDF every document row describes: (size, sha256)."""
    from admin_app.demo import demo_pdf

    os.makedirs(OUT, exist_ok=True)
    content = demo_pdf("benchmark placeholder")
    with open(os.path.join(OUT, "placeholder.pdf"), "wb") as handle:
        handle.write(content)
    return len(content), hashlib.sha256(content).hexdigest()


class Builder:
    """Generates the rows of every case from one random generator."""

    def __init__(self, connection, seed):
        from werkzeug.security import generate_password_hash

        self.rng = random.Random(seed)
        self.writer = Writer(connection)
        self.ids = Ids(connection, TABLES)
        self.connection = connection
        self.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
        self.pdf_size, self.pdf_sha = placeholder_pdf()
        self.counties = connection.execute(
            sa.text("SELECT id, name FROM county ORDER BY sort_order")
        ).all()
        self.versions = {}
        for kind, version_id, fields in connection.execute(
            sa.text(
                "SELECT t.kind, v.id, v.fields FROM form_template t "
                "JOIN form_template_version v ON v.template_id = t.id "
                "ORDER BY t.sort_order, v.version"
            )
        ):
            if kind not in self.versions:
                fields = json.loads(fields) if isinstance(fields, str) else fields
                self.versions[kind] = (version_id, record_data(fields))
        self.review_results = {
            item: {"result": "meets", "comment": "內容完整。"}
            for item in (*UPLOAD_KINDS[:2], *RECORD_ITEMS, UPLOAD_KINDS[2])
        }

    # --- people and places --------------------------------------------------------------

    def user(self, login, name, role, **values):
        row = {
            "id": self.ids.take("user"),
            "login": login,
            "name": name,
            "email": f"{login}@bench.example.edu.tw",
            "role": role,
            "position": values.get("position"),
            "school_id": values.get("school_id"),
            "county_id": values.get("county_id"),
            "password_hash": self.password_hash,
            "active": True,
            "created_at": datetime(2022, 8, 1, tzinfo=UTC),
        }
        self.writer.add("user", row)
        return row["id"]

    def places(self):
        """About 1,500 schools, the staff account, the reviewers and a county officer."""
        total = sum(COUNTY_WEIGHTS)
        self.schools = []  # (school_id, county_id, weight)
        for (county_id, name), weight in zip(self.counties, COUNTY_WEIGHTS, strict=True):
            for number in range(max(4, round(1500 * weight / total))):
                school_id = self.ids.take("school")
                self.writer.add(
                    "school",
                    {
                        "id": school_id,
                        "code": f"B{county_id:02d}{number:04d}",
                        "name": f"{name}立第{number + 1}國民中小學",
                        "county_id": county_id,
                    },
                )
                self.schools.append((school_id, county_id, weight))
        self.writer.flush("school")
        self.school_weights = list(
            itertools.accumulate(weight for _id, _county, weight in self.schools)
        )

        self.staff_id = self.user("bench_staff", "認證中心承辦人", "staff")
        self.user("bench_admin", "系統管理員", "admin")
        self.reviewer_ids = []
        for number in range(REVIEWERS):
            school_id, county_id, _weight = self.rng.choice(self.schools)
            self.reviewer_ids.append(
                self.user(
                    f"bench_reviewer{number:03d}",
                    f"審查委員{number:03d}",
                    "reviewer",
                    school_id=school_id,
                    county_id=county_id,
                )
            )
        taipei = self.counties[0][0]
        self.user("bench_officer", "臺北市教專中心", "county_officer", county_id=taipei)
        self.writer.flush("user")

    def cycles(self):
        """The five intake cycles; returns [(cycle_id, year)]."""
        from models import Cycle

        made = []
        for year in CYCLE_YEARS:
            opens, closes = cycle_window(year)
            cycle_id = self.connection.execute(
                Cycle.__table__.insert().returning(Cycle.__table__.c.id),
                {
                    "academic_year": year,
                    "name": f"{year} 學年度進階專業回饋人才認證",
                    "opens_at": opens,
                    "closes_at": closes,
                    "required_hours": 18,
                    "hours_from_year": year - 2,
                    "hours_to_year": year - 1,
                    "requires_basic_certificate": True,
                    "appeal_days": 10,
                    "reviewers_per_case": 2,
                    "review_days": 14,
                    "certificate_format": "進階回饋字第{year}{seq:05d}號",
                    "certificate_counter": 0,
                },
            ).scalar_one()
            made.append((cycle_id, year))
        return made

    # --- cases ------------------------------------------------------------------------------

    def cases(self, count, cycles):
        """`count` cases over the cycles, written in batches."""
        per_cycle = _split(count, CYCLE_WEIGHTS)
        counters = {}
        number = 0
        for (cycle_id, year), size in zip(cycles, per_cycle, strict=True):
            current = year == CYCLE_YEARS[-1]
            for _ in range(size):
                number += 1
                state = weighted(self.rng, CURRENT_STATES if current else PAST_STATES)
                self.case(number, cycle_id, year, state, counters)
                if number % BATCH == 0:
                    self.flush_cases()
        self.flush_cases()
        for cycle_id, last in counters.items():
            self.connection.execute(
                sa.text("UPDATE cycle SET certificate_counter = :last WHERE id = :id"),
                {"last": last, "id": cycle_id},
            )

    def flush_cases(self):
        self.writer.flush(*TABLES)

    def case(self, number, cycle_id, year, state, counters):
        rng = self.rng
        school = rng.choices(self.schools, cum_weights=self.school_weights)[0]
        school_id, county_id, _weight = school
        login = f"b{number:06d}"
        applicant_id = self.user(
            login,
            f"教師{number:06d}",
            "applicant",
            position="principal" if rng.random() < 0.08 else "teacher",
            school_id=school_id,
        )
        case_id = self.ids.take("case")
        second_round = state in ROUND_TWO_STATES and rng.random() < 0.15
        opens, _closes = cycle_window(year)
        moment = opens + timedelta(minutes=rng.randrange(0, 110 * 24 * 60))
        created = moment
        history = History(self, case_id, applicant_id, moment)

        # the application: two files per upload item, three records, a few more saves
        history.event("open_case", None, None, 1)
        for kind in UPLOAD_KINDS:
            first = self.document(case_id, kind, 1, applicant_id, history.step(hours=6))
            history.event("upload_document", None, None, 1, comment=f"{kind}：第一版.pdf")
            if not second_round:
                first["superseded_at"] = history.step(hours=3)
                self.document(case_id, kind, 1, applicant_id, first["superseded_at"])
                history.event("upload_document", None, None, 1, comment=f"{kind}：定稿.pdf")
        for item in RECORD_ITEMS:
            version_id, data = self.versions[item]
            saved = history.step(hours=5)
            self.writer.add(
                "form_entry",
                {
                    "id": self.ids.take("form_entry"),
                    "case_id": case_id,
                    "item": item,
                    "round": 1,
                    "template_version_id": version_id,
                    "data": data,
                    "created_at": saved,
                    "updated_at": saved,
                    "updated_by_id": applicant_id,
                },
            )
            history.event("save_record", None, None, 1, comment=item)

        facts = walk(history, state, second_round)
        if second_round:
            for kind in UPLOAD_KINDS:
                self.document(case_id, kind, 2, applicant_id, facts["revised_at"])

        # more saves for some cases, so that case sizes differ (up to 30 events)
        target = rng.randint(len(history.events), MAX_EVENTS)
        while len(history.events) < target:
            history.events.insert(
                3,
                history.make("save_record", None, None, 1, created + timedelta(minutes=30)),
            )

        certificate = {}
        if state in ("certified", "announced"):
            seq = counters[cycle_id] = counters.get(cycle_id, 0) + 1
            certificate = {
                "certificate_seq": seq,
                "certificate_number": f"進階回饋字第{year}{seq:05d}號",
                "certified_at": facts["certified_at"],
            }
        row = {
            "id": case_id,
            "cycle_id": cycle_id,
            "applicant_id": applicant_id,
            "school_id": school_id,
            "county_id": county_id,
            "state": state,
            "round": 2 if second_round else 1,
            "version": len(history.events) + 1,
            "created_at": created,
            "updated_at": history.moment,
            "submitted_at": facts.get("submitted_at"),
            "state_changed_at": history.moment,
            "appeal_deadline": facts.get("appeal_deadline"),
            "certificate_seq": certificate.get("certificate_seq"),
            "certificate_number": certificate.get("certificate_number"),
            "certified_at": certificate.get("certified_at"),
            "announced_at": facts.get("announced_at"),
        }
        self.writer.add("case", row)
        history.write(facts)

    def document(self, case_id, kind, round_, applicant_id, moment):
        document_id = self.ids.take("document")
        name = f"{document_id:032x}"
        row = {
            "id": document_id,
            "case_id": case_id,
            "kind": kind,
            "round": round_,
            "original_name": f"{kind}-{round_}.pdf",
            "stored_name": f"{name[-2:]}/{name}.pdf",
            "size": self.pdf_size,
            "sha256": self.pdf_sha,
            "uploaded_at": moment,
            "uploaded_by_id": applicant_id,
            "superseded_at": None,
        }
        self.writer.add("document", row)
        return row


class History:
    """A case's audit events in order, with the rows that hang off them."""

    def __init__(self, builder, case_id, applicant_id, moment):
        self.builder = builder
        self.case_id = case_id
        self.applicant_id = applicant_id
        self.moment = moment
        self.events = []
        self.verdicts = []
        self.last_told = None

    def step(self, hours=24, days=0):
        self.moment += timedelta(
            days=days, minutes=self.builder.rng.randrange(10, max(11, int(hours * 60)))
        )
        return self.moment

    def make(self, action, from_state, to_state, round_, moment, actor=None, comment=""):
        return {
            "created_at": moment,
            "actor_id": actor or self.applicant_id,
            "case_id": self.case_id,
            "action": action,
            "from_state": from_state,
            "to_state": to_state,
            "round": round_,
            "comment": comment,
            "comment_public": bool(comment) and to_state is not None,
            "remote_addr": "127.0.0.1",
        }

    def event(self, action, from_state, to_state, round_, actor=None, comment="", days=0):
        moment = self.step(days=days) if to_state is not None else self.moment
        row = self.make(action, from_state, to_state, round_, moment, actor, comment)
        self.events.append(row)
        return row

    def write(self, facts):
        """Give the events ids in time order and write them with the rows that point at them."""
        builder = self.builder
        for row in self.events:
            row["id"] = builder.ids.take("audit_event")
            builder.writer.add("audit_event", row)
        for verdict, event in self.verdicts:
            verdict["event_id"] = event["id"]
            builder.writer.add("verdict", verdict)
        if self.last_told is not None:
            self.message(self.last_told)

    def message(self, event):
        """The candidate's portal message about the latest decision, and its sent e-mail."""
        builder = self.builder
        notification_id = builder.ids.take("notification")
        subject = f"進階專業回饋人才認證：{event['action']}"
        body = "您好：\n\n您的申請案狀態已更新，請登入系統查看。\n\n進階專業回饋人才認證中心\n"
        builder.writer.add(
            "notification",
            {
                "id": notification_id,
                "user_id": self.applicant_id,
                "case_id": self.case_id,
                "kind": event["action"],
                "subject": subject,
                "body": body,
                "created_at": event["created_at"],
                "read_at": event["created_at"] + timedelta(days=1),
                "event_id": event["id"],
                "withdrawn_at": None,
            },
        )
        builder.writer.add(
            "outgoing_mail",
            {
                "id": builder.ids.take("outgoing_mail"),
                "notification_id": notification_id,
                "case_id": self.case_id,
                "event_id": event["id"],
                "kind": event["action"],
                "recipient": "candidate@bench.example.edu.tw",
                "subject": subject,
                "body": body,
                "state": "sent",
                "attempts": 1,
                "last_error": "",
                "created_at": event["created_at"],
                "next_attempt_at": event["created_at"],
                "claimed_at": event["created_at"],
                "claimed_by": "bench",
                "sent_at": event["created_at"] + timedelta(seconds=5),
            },
        )


def walk(history, state, second_round):
    """The events that bring a case from draft to `state`; returns dates the case row needs."""
    builder = history.builder
    rng = builder.rng
    staff = builder.staff_id
    facts = {}
    if state == "draft":
        return facts

    history.event("submit", "draft", "formal_review", 1)
    facts["submitted_at"] = history.moment
    if state == "formal_review":
        return facts
    if state == "returned":
        history.last_told = history.event(
            "return_for_correction", "formal_review", "returned", 1, staff, "請補蓋學校章。"
        )
        return facts
    history.event("pass_formal_review", "formal_review", "awaiting_assignment", 1, staff, days=2)

    def review_round(round_, recommendation, complete=True):
        assigned = history.event("assign_reviewers", "awaiting_assignment", "under_review",
                                 round_, staff, days=3)  # fmt: skip
        panel = rng.sample(builder.reviewer_ids, 2)
        for reviewer in panel:
            submitted = history.step(days=5) if complete else None
            builder.writer.add(
                "review_assignment",
                {
                    "id": builder.ids.take("review_assignment"),
                    "case_id": history.case_id,
                    "round": round_,
                    "reviewer_id": reviewer,
                    "assigned_at": assigned["created_at"],
                    "assigned_by_id": staff,
                    "due_at": assigned["created_at"] + timedelta(days=14),
                    "reminded_at": None,
                    "item_results": builder.review_results if complete else {},
                    "overall_comment": "整體表現良好。" if complete else "",
                    "recommendation": recommendation if complete else None,
                    "submitted_at": submitted,
                },
            )
            if complete:
                history.event("submit_review", None, None, round_, reviewer)
        if complete:
            history.event("complete_reviews", "under_review", "awaiting_verdict", round_, panel[-1])

    def verdict(round_, decision, action, to_state, comment):
        event = history.event(action, "awaiting_verdict", to_state, round_, staff, comment, days=7)
        history.verdicts.append(
            (
                {
                    "id": builder.ids.take("verdict"),
                    "case_id": history.case_id,
                    "round": round_,
                    "decision": decision,
                    "comment": comment,
                    "decided_by_id": staff,
                    "decided_at": event["created_at"],
                    "event_id": None,
                    "undone_at": None,
                    "undone_by_id": None,
                    "undo_reason": None,
                },
                event,
            )
        )
        history.last_told = event

    round_ = 1
    if second_round:
        review_round(1, "revise_and_review")
        verdict(1, "revise_and_review", "verdict_revise_and_review", "revision_requested",
                "請依委員意見修正觀察紀錄。")  # fmt: skip
        history.event("submit_revision", "revision_requested", "awaiting_assignment", 1, days=10)
        facts["revised_at"] = history.moment
        round_ = 2
    if state == "awaiting_assignment":
        return facts
    review_round(round_, "passed", complete=state != "under_review")
    if state in ("under_review", "awaiting_verdict"):
        return facts
    if state == "revision_requested":
        verdict(1, "revise_and_review", "verdict_revise_and_review", "revision_requested",
                "請修正觀察紀錄的事實摘要。")  # fmt: skip
        return facts
    if state in ("passed", "certified", "announced"):
        verdict(round_, "passed", "verdict_passed", "passed", "")
        if state != "passed":
            history.last_told = history.event(
                "issue_certificate", "passed", "certified", round_, staff, days=20
            )
            facts["certified_at"] = history.moment
        if state == "announced":
            history.last_told = history.event(
                "announce", "certified", "announced", round_, staff, days=5
            )
            facts["announced_at"] = history.moment
        return facts

    verdict(round_, "failed", "verdict_failed", "failed", "觀察紀錄與會談紀錄內容不一致。")
    facts["appeal_deadline"] = history.moment + timedelta(days=10)
    if state == "failed":
        return facts
    if state == "closed" and rng.random() < 0.5:
        history.event("close_appeal_window", "failed", "closed", round_, days=11)
        return facts

    filed = history.event("file_appeal", "failed", "appeal_filed", round_, days=3,
                          comment="請重新審查。")  # fmt: skip
    appeal = {
        "id": builder.ids.take("appeal"),
        "case_id": history.case_id,
        "reason": "觀察紀錄已依規定填寫，請重新審查。",
        "document_id": None,
        "filed_at": filed["created_at"],
        "outcome": "filed",
        "decided_by_id": None,
        "decided_at": None,
        "comment": "",
    }
    builder.writer.add("appeal", appeal)
    if state == "appeal_filed":
        return facts
    accepted = history.event("accept_appeal", "appeal_filed", "appeal_review", round_, staff)
    appeal.update(outcome="accepted", decided_by_id=staff, decided_at=accepted["created_at"])
    if state == "appeal_review":
        return facts
    history.last_told = history.event(
        "dismiss_appeal", "appeal_review", "closed", round_, staff, "申復理由不成立。", days=14
    )
    appeal.update(outcome="dismissed", decided_at=history.moment, comment="申復理由不成立。")
    return facts


def record_data(fields):
    """The stored value of a record filled with the demo content, as the product would store it."""
    from admin_app.demo import demo_formdata
    from models import form_schema

    data, errors = form_schema.parse_submission(fields, demo_formdata(fields))
    if errors:
        raise RuntimeError(f"demo record does not validate: {errors}")
    return data


def _split(total, weights):
    """Integer parts of `total` proportional to the weights, summing to `total`."""
    parts = [int(total * weight / sum(weights)) for weight in weights]
    parts[-1] += total - sum(parts)
    return parts


def app_for(database_url, **overrides):
    """The application on the benchmark database, with its uploads and jobs under bench/out."""
    from admin_app import create_app

    os.environ.setdefault("INSTANCE_PATH", os.path.join(OUT, "instance"))
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "benchmark",
            "UPLOAD_FOLDER": os.path.join(OUT, "uploads"),
            "JOBS_FOLDER": os.path.join(OUT, "jobs"),
            "JOBS_IN_PROCESS": False,
            **overrides,
        }
    )


def empty_database(database_url):
    """Drop everything in the benchmark database (PostgreSQL) or remove the file (SQLite)."""
    from admin_app.config import normalise_database_url

    url = sa.engine.make_url(normalise_database_url(database_url))
    if url.get_backend_name() == "sqlite":
        if url.database and os.path.exists(url.database):
            os.remove(url.database)
        return
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def build(database_url, cases, seed=6, echo=print):
    """Empty the database, migrate it and fill it; returns {table: rows written}."""
    from flask_migrate import upgrade

    from admin_app import demo
    from admin_app.extensions import db

    started = time.perf_counter()
    empty_database(database_url)
    app = app_for(database_url)
    with app.app_context():
        upgrade()
        demo.load_reference_data()
        db.session.commit()

        with db.engine.begin() as connection:
            builder = Builder(connection, seed)
            builder.places()
            cycles = builder.cycles()
            builder.cases(cases, cycles)
            counts = builder.writer.counts
            if connection.dialect.name == "postgresql":
                for table in TABLES:
                    column = db.metadata.tables[table].c.id
                    sequence = sa.func.pg_get_serial_sequence(f'"{table}"', "id")
                    last = sa.select(sa.func.max(column)).scalar_subquery()
                    connection.execute(sa.select(sa.func.setval(sequence, last)))
        # a settled production database: statistics current, visibility maps set
        with db.engine.connect() as connection:
            postgres = connection.dialect.name == "postgresql"
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                sa.text("VACUUM ANALYZE" if postgres else "ANALYZE")
            )
        db.engine.dispose()
    echo(
        f"# {cases:,} cases built in {time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{table} {count:,}" for table, count in counts.items())
    )
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--database", required=True, help="sqlite:///path or postgresql://...")
    parser.add_argument("--seed", type=int, default=6)
    arguments = parser.parse_args()
    build(arguments.database, arguments.cases, arguments.seed)


if __name__ == "__main__":
    main()
