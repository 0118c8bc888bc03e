"""Every performance measurement of the product beside its anchor, in one command.

    .venv/bin/python -m bench.run --cases 100000 \
        --database postgresql://postgres@127.0.0.1:5432/bench
    .venv/bin/python -m bench.run --cases 2000 --quick          # a few minutes

It builds the dataset (`bench.dataset`; `--keep` reuses the one already there), then measures,
each beside an anchor measured in the same run:

- list: the back office's case list filtered by cycle, county and status, sorted by submission
  date, first page and last page (Flask test client, server time and SQL statements), against
  the same statements replayed directly on the database and against a plain, untuned
  Flask-Admin `ModelView` of the case table with the same filters;
- case: the back office's case page of a case with 6 documents, 3 records, 2 reviews and 30
  audit events, against its statements replayed directly;
- portal: under gunicorn (gunicorn.conf.py, its default workers) on loopback, N clients, each
  logged in as a candidate with a draft, alternately open the application and save a record
  for a bounded time, against a trivial endpoint (`bench/wsgi.py` adds it) in the same setup;
- export: `bench/export_benchmark.py` (the 案件總表 at 20,000 and 100,000 rows against
  openpyxl's write-only mode writing the same rows from a list);
- certificates: `workflow.issue_certificates` on 10,000 passed cases (set up in a transaction
  that is rolled back) against one direct UPDATE of the same rows;
- mail: the mail worker delivering 2,000 queued mails to a local aiosmtpd server against
  smtplib sending the same messages over one connection.

It prints a table (product, anchor, ratio) and writes the figures to bench/out/ as JSON.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import re
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import urlencode

import sqlalchemy as sa

from bench import dataset, export_benchmark

ROOT = dataset.ROOT
OUT = dataset.OUT
STAFF = "bench_staff"
PORTAL_ITEM = "pre_conference"


# --- helpers --------------------------------------------------------------------------------


def percentile(values, fraction):
    """The value below which `fraction` of the values fall (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


@contextmanager
def captured_statements(engine):
    """The (statement, parameters) pairs sent to the database inside the block."""
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)


def interleaved(client, engine, urls, repeat):
    """Server times of GETs of some pages and of their own statements replayed, in ms.

    After two warm-ups and one request whose statements are captured per page, each round
    requests every page once and replays every page's statements once on a DBAPI connection of
    its own, so that the machine's ups and downs fall on all of them alike. Returns
    {url: (page times, replay times, statements)}.
    """
    captured = {}
    for url in urls:
        for _ in range(2):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        with captured_statements(engine) as statements:
            client.get(url)
        captured[url] = statements

    times = {url: [] for url in urls}
    replays = {url: [] for url in urls}
    raw = engine.raw_connection()
    try:
        for _ in range(repeat):
            for url in urls:
                started = time.perf_counter()
                response = client.get(url)
                times[url].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
                replays[url].append(replay_once(raw, captured[url]))
    finally:
        raw.close()
    return {url: (times[url], replays[url], captured[url]) for url in urls}


def replay_once(raw, statements):
    """Milliseconds to run the statements on a DBAPI connection and fetch every row."""
    cursor = raw.cursor()
    started = time.perf_counter()
    for statement, parameters in statements:
        cursor.execute(statement, parameters)
        if cursor.description is not None:
            cursor.fetchall()
    elapsed = (time.perf_counter() - started) * 1000
    cursor.close()
    raw.rollback()
    return elapsed


def summary(times):
    return {"median_ms": statistics.median(times), "p95_ms": percentile(times, 0.95)}


def login(client, login_name):
    response = client.post(
        "/login", data={"login": login_name, "password": dataset.PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]


def bench_app(database_url):
    """The app the in-process measurements use, with a plain Flask-Admin view of the cases."""
    from flask_admin.contrib.sqla import ModelView
    from flask_admin.contrib.sqla.filters import FilterEqual, IntEqualFilter

    from admin_app.extensions import db
    from models import Case

    app = dataset.app_for(database_url, WTF_CSRF_ENABLED=False, SEND_MAIL_AFTER_COMMIT=False)

    class PlainCaseView(ModelView):
        """What Flask-Admin gives with no tuning: the table, three filters, a default sort."""

        column_filters = [
            IntEqualFilter(Case.cycle_id, "cycle"),
            IntEqualFilter(Case.county_id, "county"),
            FilterEqual(Case.state, "state"),
        ]
        column_default_sort = ("submitted_at", True)
        page_size = 50

    admin = app.extensions["admin"][0]
    admin.add_view(PlainCaseView(Case, db, endpoint="plain_case", url="/bench/plain-case"))
    return app


# --- back office ----------------------------------------------------------------------------


def measure_list(app, repeat):
    """The filtered case list, first and last page, against its SQL and a plain ModelView."""
    from admin_app.extensions import db
    from models import Case

    with app.app_context():
        cycle_id, county_id, state, count = db.session.execute(
            sa.select(Case.cycle_id, Case.county_id, Case.state, sa.func.count())
            .group_by(Case.cycle_id, Case.county_id, Case.state)
            .order_by(sa.func.count().desc(), Case.cycle_id, Case.county_id)
            .limit(1)
        ).one()
        db.session.remove()
    # the last full page: as many rows as the first, read after skipping nearly all the others
    last_page = max(0, count // 50 - 1)
    filters = {"flt0_0": cycle_id, "flt1_1": county_id, "flt2_2": state.value}
    results = {"filter": {**filters, "rows": count}}

    client = app.test_client()
    with app.app_context():
        login(client, STAFF)
        pages = {"first page": 0, "deep page": last_page}
        urls = {}
        for name, page in pages.items():
            arguments = {**filters, "page": page} if page else filters
            urls[name] = (
                "/admin/case/?" + urlencode(arguments),
                "/bench/plain-case/?" + urlencode(arguments),
            )
        figures = interleaved(
            client, db.engine, [url for pair in urls.values() for url in pair], repeat
        )
        for name, (product_url, plain_url) in urls.items():
            times, raw, statements = figures[product_url]
            plain, _raw, plain_statements = figures[plain_url]
            results[name] = {
                "page": pages[name],
                "product": summary(times),
                "statements": len(statements),
                "raw_sql": summary(raw),
                "plain_view": summary(plain),
                "plain_statements": len(plain_statements),
            }
        db.session.remove()
    return results


def measure_case_page(app, repeat):
    """The case page of a big case (and the statement count of a small one)."""
    from admin_app.extensions import db
    from models import AuditEvent, Case, ReviewAssignment

    events = (
        sa.select(sa.func.count())
        .where(AuditEvent.case_id == Case.id)
        .correlate(Case)
        .scalar_subquery()
    )
    reviews = (
        sa.select(sa.func.count())
        .where(ReviewAssignment.case_id == Case.id)
        .correlate(Case)
        .scalar_subquery()
    )
    with app.app_context():
        big = db.session.scalar(
            sa.select(Case.id).where(events == 30, reviews == 2).order_by(Case.id).limit(1)
        )
        small = db.session.scalar(sa.select(Case.id).order_by(events, Case.id).limit(1))
        small_events = db.session.scalar(
            sa.select(sa.func.count()).where(AuditEvent.case_id == small)
        )
        db.session.remove()

    client = app.test_client()
    with app.app_context():
        login(client, STAFF)
        big_url = f"/admin/case/details/?id={big}"
        small_url = f"/admin/case/details/?id={small}"
        figures = interleaved(client, db.engine, [big_url, small_url], repeat)
        times, raw, statements = figures[big_url]
        small_statements = figures[small_url][2]
        db.session.remove()
    return {
        "case_id": big,
        "product": summary(times),
        "statements": len(statements),
        "raw_sql": summary(raw),
        "small_case": {"case_id": small, "events": small_events},
        "small_case_statements": len(small_statements),
    }


# --- certificates ---------------------------------------------------------------------------


def _passed_cases_for_issue(db, wanted):
    """Turn up to `wanted` certificated cases of one past cycle back into passed cases.

    Runs in the caller's transaction, which is rolled back after the measurement.
    """
    from models import Case, CaseState, Cycle

    cycle = db.session.scalar(
        sa.select(Cycle)
        .join(Case, Case.cycle_id == Cycle.id)
        .where(Case.state == CaseState.announced)
        .group_by(Cycle.id)
        .order_by(sa.func.count().desc())
        .limit(1)
    )
    ids = db.session.scalars(
        sa.select(Case.id)
        .where(Case.cycle_id == cycle.id, Case.state == CaseState.announced)
        .order_by(Case.id)
        .limit(wanted)
    ).all()
    db.session.execute(
        sa.update(Case)
        .where(Case.id.in_(ids))
        .values(
            state=CaseState.passed,
            certificate_seq=None,
            certificate_number=None,
            certified_at=None,
            announced_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    return cycle, len(ids)


def _direct_issue(db, cycle):
    """One UPDATE giving every passed case of the cycle its number: the anchor."""
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        padded = "lpad((c.certificate_counter + s.n)::text, 5, '0')"
    else:
        padded = "printf('%05d', c.certificate_counter + s.n)"
    number = f"'進階回饋字第' || :year || {padded} || '號'"
    statement = f"""
        WITH ranked AS (
            SELECT id, row_number() OVER (ORDER BY county_id, submitted_at, id) AS n
            FROM "case" WHERE cycle_id = :cycle AND state = 'passed')
        UPDATE "case" SET state = 'certified', version = version + 1,
            certificate_seq = c.certificate_counter + s.n,
            certificate_number = {number},
            certified_at = :moment, state_changed_at = :moment, updated_at = :moment
        FROM ranked s, cycle c
        WHERE "case".id = s.id AND c.id = :cycle
    """  # noqa: S608 (no user input; the dialect picks one of two fixed fragments)
    moment = datetime.now(UTC)
    if dialect == "sqlite":
        moment = moment.replace(tzinfo=None).isoformat(" ")
    result = db.session.execute(
        sa.text(statement),
        {"cycle": cycle.id, "year": str(cycle.academic_year), "moment": moment},
    )
    return result.rowcount


def measure_certificates(app, wanted):
    """issue_certificates against one direct UPDATE, each on the same freshly passed cases."""
    from admin_app.extensions import db
    from models import User, workflow

    results = {}
    with app.app_context():
        staff = db.session.scalar(sa.select(User).where(User.login == STAFF))
        for what in ("product", "anchor"):
            cycle, count = _passed_cases_for_issue(db, wanted)
            with captured_statements(db.engine) as statements:
                started = time.perf_counter()
                if what == "product":
                    done = len(workflow.issue_certificates(cycle, staff))
                    db.session.flush()
                else:
                    done = _direct_issue(db, cycle)
                seconds = time.perf_counter() - started
            assert done == count, (what, done, count)
            results[what] = {"seconds": seconds, "cases": done, "statements": len(statements)}
            db.session.rollback()
            db.session.expunge_all()
        db.session.remove()
    return results


# --- mail -----------------------------------------------------------------------------------


class CountingHandler:
    """An aiosmtpd handler that accepts and counts every message."""

    def __init__(self):
        self.received = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.received += 1
        return "250 OK"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure_mail(app, count):
    """The mail worker's delivery of `count` queued mails against plain smtplib."""
    from aiosmtpd.controller import Controller

    from admin_app import mailer
    from admin_app.extensions import db
    from models import Case, MailState, OutgoingMail

    handler = CountingHandler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with app.app_context():
            app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_SUPPRESS_SEND=False)
            case_ids = db.session.scalars(sa.select(Case.id).order_by(Case.id).limit(count)).all()
            mails = [
                {
                    "case_id": case_ids[n % len(case_ids)],
                    "kind": "bench",
                    "recipient": f"candidate{n}@bench.example.edu.tw",
                    "subject": f"進階專業回饋人才認證：測試信 {n}",
                    "body": "您好：\n\n這是效能測試的信件。\n\n進階專業回饋人才認證中心\n" * 3,
                    "state": MailState.pending,
                }
                for n in range(count)
            ]
            db.session.execute(sa.insert(OutgoingMail), mails)
            db.session.commit()

            started = time.perf_counter()
            report = mailer.deliver_pending(recover=False)
            product = time.perf_counter() - started
            sent = report.sent
            db.session.execute(sa.delete(OutgoingMail).where(OutgoingMail.kind == "bench"))
            db.session.commit()
            db.session.remove()
        received_by_worker = handler.received

        messages = []
        for row in mails:
            message = EmailMessage()
            message["From"] = "進階專業回饋人才認證中心 <noreply@localhost>"
            message["To"] = row["recipient"]
            message["Subject"] = row["subject"]
            message.set_content(row["body"])
            messages.append(message)
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            for message in messages:
                smtp.send_message(message)
        anchor = time.perf_counter() - started
    finally:
        controller.stop()
    return {
        "product": {"seconds": product, "sent": sent, "received": received_by_worker},
        "anchor": {"seconds": anchor, "sent": count},
        "product_per_second": sent / product,
        "anchor_per_second": count / anchor,
    }


# --- portal under gunicorn ------------------------------------------------------------------


class Response:
    """What the load client keeps of an HTTP response."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def cookies(self):
        found = {}
        for name, value in self.headers:
            if name == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _sep, cookie = pair.partition("=")
                found[key.strip()] = cookie
        return found


async def http(port, method, path, cookies, form=None, timeout=30):
    """One HTTP/1.1 request on a connection of its own (sync workers close it anyway)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port), timeout=timeout
    )
    try:
        body = urlencode(form, doseq=True).encode() if form is not None else b""
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        if cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
        if form is not None:
            lines.append("Content-Type: application/x-www-form-urlencoded")
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        raw = await asyncio.wait_for(reader.read(), timeout=timeout)
    finally:
        writer.close()
    head, _sep, content = raw.partition(b"\r\n\r\n")
    head_lines = head.decode("latin-1").split("\r\n")
    status = int(head_lines[0].split()[1])
    headers = []
    for line in head_lines[1:]:
        name, _sep, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return Response(status, headers, content)


CSRF = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')


async def portal_session(port, login_name):
    """Log a candidate in through the real login page; returns (cookies, csrf token)."""
    cookies = {}
    page = await http(port, "GET", "/login", cookies)
    cookies.update(page.cookies())
    token = CSRF.search(page.body).group(1).decode()
    answer = await http(
        port,
        "POST",
        "/login",
        cookies,
        {"csrf_token": token, "login": login_name, "password": dataset.PASSWORD},
    )
    if answer.status != 302:
        raise RuntimeError(f"login of {login_name} answered {answer.status}")
    cookies.update(answer.cookies())
    record = await http(port, "GET", f"/apply/record/{PORTAL_ITEM}", cookies)
    cookies.update(record.cookies())
    match = CSRF.search(record.body)
    if record.status != 200 or match is None:
        raise RuntimeError(f"record page of {login_name} answered {record.status}")
    return cookies, match.group(1).decode()


async def load(port, sessions, form, seconds, trivial, think=0.0):
    """Every client in a loop for `seconds`: (latencies in ms, errors, elapsed seconds).

    With `think`, a client waits 0.5 to 1.5 times that many seconds after each answer, as a
    person reads the page before the next click; without it every client asks again at once.
    """
    latencies, errors = [], []
    deadline = time.monotonic() + seconds
    pauses = random.Random(6)

    async def client(cookies, token):
        step = 0
        if think:
            await asyncio.sleep(pauses.uniform(0, think))
        while time.monotonic() < deadline:
            if trivial:
                method, path, data, expected = "GET", "/bench/ping", None, 200
            elif step % 2 == 0:
                method, path, data, expected = "GET", "/apply", None, 200
            else:
                data = [("csrf_token", token), *form]
                method, path, expected = "POST", f"/apply/record/{PORTAL_ITEM}", 302
            step += 1
            started = time.monotonic()
            try:
                answer = await http(port, method, path, cookies, data)
                if answer.status != expected:
                    errors.append(f"{method} {path}: {answer.status}")
                    continue
            except (OSError, TimeoutError, ValueError, IndexError) as error:
                errors.append(f"{method} {path}: {type(error).__name__}")
                continue
            latencies.append((time.monotonic() - started) * 1000)
            if think:
                await asyncio.sleep(think * pauses.uniform(0.5, 1.5))

    started = time.monotonic()
    await asyncio.gather(*(client(cookies, token) for cookies, token in sessions))
    return latencies, errors, time.monotonic() - started


def _record_form(app):
    """The posted fields of the record the clients save, and the candidates with a draft."""
    from admin_app.demo import demo_formdata
    from admin_app.extensions import db
    from models import Case, CaseState, Cycle, FormTemplate, RecordKind, User

    with app.app_context():
        template = db.session.scalar(
            sa.select(FormTemplate)
            .where(FormTemplate.kind == RecordKind(PORTAL_ITEM))
            .order_by(FormTemplate.sort_order)
            .limit(1)
        )
        version = template.current_version
        form = [("template_version_id", str(version.id))]
        form += list(demo_formdata(version.fields).items(multi=True))

        # the newest cycle is the one open now, whatever day the benchmark runs
        newest = db.session.scalar(sa.select(Cycle).order_by(Cycle.academic_year.desc()).limit(1))
        newest.opens_at = datetime.now(UTC) - timedelta(days=3)
        newest.closes_at = datetime.now(UTC) + timedelta(days=60)
        logins = db.session.scalars(
            sa.select(User.login)
            .join(Case, Case.applicant_id == User.id)
            .where(Case.cycle_id == newest.id, Case.state == CaseState.draft)
            .order_by(User.login)
        ).all()
        db.session.commit()
        db.session.remove()
    return form, logins


@contextmanager
def gunicorn(database_url):
    """gunicorn with the product's settings on a free loopback port; yields the port."""
    port = _free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "benchmark",
        "INSTANCE_PATH": os.path.join(OUT, "instance"),
        "UPLOAD_FOLDER": os.path.join(OUT, "uploads"),
        "JOBS_FOLDER": os.path.join(OUT, "jobs"),
        "JOBS_IN_PROCESS": "0",
        "MAIL_SERVER": "127.0.0.1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
    }
    log_path = os.path.join(OUT, "gunicorn.log")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                os.path.join(os.path.dirname(sys.executable), "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "bench.wsgi:app",
            ],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(port)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _wait_for(port, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            answer = asyncio.run(http(port, "GET", "/bench/ping", {}, timeout=5))
            if answer.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("gunicorn did not answer")


def measure_portal(app, database_url, levels, seconds, think=0.0):
    """Open the application and save a record with N clients, against the trivial endpoint."""
    form, logins = _record_form(app)
    results = {"candidates_with_draft": len(logins), "seconds": seconds, "think": think}
    with gunicorn(database_url) as port:
        wanted = max(levels)
        sessions = []
        for number in range(wanted):
            # fewer drafts than clients (small datasets): clients share accounts
            sessions.append(asyncio.run(portal_session(port, logins[number % len(logins)])))
        for clients in levels:
            for what, trivial in (("product", False), ("anchor", True)):
                latencies, errors, elapsed = asyncio.run(
                    load(port, sessions[:clients], form, seconds, trivial, think)
                )
                results[f"{clients} {what}"] = {
                    "requests_per_second": len(latencies) / elapsed,
                    "p50_ms": percentile(latencies, 0.50),
                    "p95_ms": percentile(latencies, 0.95),
                    "p99_ms": percentile(latencies, 0.99),
                    "errors": len(errors),
                    "error_examples": sorted(set(errors))[:5],
                    "requests": len(latencies),
                }
    return results


# --- export (bench/export_benchmark.py) -----------------------------------------------------


def measure_export(rows_list, database_url):
    """The export benchmark's figures for each size, on the benchmark's database kind."""
    results = {}
    for rows in rows_list:
        target = export_database(database_url, rows)
        export_benchmark.build(target, rows)
        figures = {}
        for what in ("export", "plain"):
            timed = export_benchmark._child(target, rows, what, trace=False)
            traced = export_benchmark._child(target, rows, what, trace=True)
            figures[what] = {
                "seconds": timed["seconds"],
                "tracemalloc_peak_mb": traced["peak"] / 2**20,
                "maxrss_growth_mb": timed["grown_kib"] / 1024,
                "maxrss_mb": timed["maxrss_kib"] / 1024,
            }
        results[rows] = figures
    return results


def export_database(database_url, rows):
    """A database of its own for the export's synthetic cases, of the same kind as the main one."""
    if database_url.startswith("sqlite"):
        return os.path.join(OUT, f"export-{rows}.db")
    base = sa.engine.make_url(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{base.database}_export"
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        )
        if not exists:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


# --- the table ------------------------------------------------------------------------------


def table_rows(results):
    """(what, product, anchor, ratio) lines of the printed table."""
    rows = []
    listed = results.get("list")
    if listed:
        for name in ("first page", "deep page"):
            page = listed[name]
            product = page["product"]
            rows.append(
                (
                    f"case list, {name} (page {page['page'] + 1}), median / p95",
                    f"{product['median_ms']:.0f} / {product['p95_ms']:.0f} ms, "
                    f"{page['statements']} SQL",
                    f"raw SQL {page['raw_sql']['median_ms']:.1f} ms",
                    f"{product['median_ms'] / page['raw_sql']['median_ms']:.1f}x",
                )
            )
            plain = page["plain_view"]
            rows.append(
                (
                    f"case list, {name}, against plain Flask-Admin",
                    f"{product['median_ms']:.0f} ms",
                    f"plain view {plain['median_ms']:.0f} ms, {page['plain_statements']} SQL",
                    f"{product['median_ms'] / plain['median_ms']:.2f}x",
                )
            )
    case = results.get("case")
    if case:
        rows.append(
            (
                "case page (6 docs, 3 records, 2 reviews, 30 events)",
                f"{case['product']['median_ms']:.0f} ms, {case['statements']} SQL "
                f"(small case: {case['small_case_statements']} SQL)",
                f"raw SQL {case['raw_sql']['median_ms']:.1f} ms",
                f"{case['product']['median_ms'] / case['raw_sql']['median_ms']:.1f}x",
            )
        )
    portal = results.get("portal")
    if portal:
        pause = f", {portal['think']:g} s think time" if portal.get("think") else ""
        for key in portal:
            if not key.endswith(" product"):
                continue
            clients = key.split()[0]
            product, anchor = portal[key], portal[f"{clients} anchor"]
            rows.append(
                (
                    f"portal, {clients} clients{pause}: req/s, p50/p95/p99, errors",
                    f"{product['requests_per_second']:.0f}/s, {product['p50_ms']:.0f}/"
                    f"{product['p95_ms']:.0f}/{product['p99_ms']:.0f} ms, {product['errors']}",
                    f"{anchor['requests_per_second']:.0f}/s, {anchor['p50_ms']:.0f}/"
                    f"{anchor['p95_ms']:.0f}/{anchor['p99_ms']:.0f} ms, {anchor['errors']}",
                    f"{product['requests_per_second'] / anchor['requests_per_second']:.2f}x",
                )
            )
    for rows_count, figures in (results.get("export") or {}).items():
        export, plain = figures["export"], figures["plain"]
        rows.append(
            (
                f"export, {int(rows_count):,} rows: time, peak memory",
                f"{export['seconds']:.1f} s, {export['tracemalloc_peak_mb']:.0f} MB traced, "
                f"{export['maxrss_mb']:.0f} MB RSS",
                f"{plain['seconds']:.1f} s, {plain['tracemalloc_peak_mb']:.0f} MB traced",
                f"speed {plain['seconds'] / export['seconds']:.2f}x",
            )
        )
    certificates = results.get("certificates")
    if certificates:
        product, anchor = certificates["product"], certificates["anchor"]
        rows.append(
            (
                f"issue certificates, {product['cases']:,} passed cases",
                f"{product['seconds']:.2f} s, {product['statements']} SQL",
                f"direct UPDATE {anchor['seconds']:.2f} s",
                f"{product['seconds'] / anchor['seconds']:.1f}x",
            )
        )
    mail = results.get("mail")
    if mail:
        rows.append(
            (
                f"mail worker, {mail['anchor']['sent']:,} mails to local SMTP",
                f"{mail['product_per_second']:.0f} mails/s",
                f"smtplib {mail['anchor_per_second']:.0f} mails/s",
                f"{mail['product_per_second'] / mail['anchor_per_second']:.2f}x",
            )
        )
    return rows


def print_table(rows, file=sys.stdout):
    headers = ("what", "the product", "anchor, same run", "ratio")
    widths = [max(len(str(row[i])) for row in (headers, *rows)) for i in range(4)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
          file=file)  # fmt: skip
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=file)
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |",
              file=file)  # fmt: skip


def machine():
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if "model name" in line]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = platform.python_version()
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GB RAM, Python {python}"


# steps that leave dead rows behind (rolled back or updated), which autovacuum would clear
WRITING_STEPS = {"certificates", "mail", "portal"}


def settle(database_url):
    """VACUUM ANALYZE on PostgreSQL, as autovacuum keeps a database in service.

    Without it, a step that rolls back 10,000 updates (certificates) leaves the case table's
    pages marked as changed, and the next measurement or run reads the cases from the table
    where it would read an index alone: the work-queue counts took 79 ms instead of 3 ms.
    """
    if not database_url.startswith("postgresql"):
        return
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1:5432/bench", help="its data is lost"
    )
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="use the dataset already built")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter load")
    parser.add_argument("--clients", type=int, nargs="*", default=[50, 150, 300])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--think", type=float, default=0.0, help="seconds a portal client waits between clicks"
    )
    parser.add_argument("--export-rows", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--certificates", type=int, default=10_000)
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument(
        "--only", nargs="*", choices=["list", "case", "portal", "export", "certificates", "mail"]
    )
    arguments = parser.parse_args()
    only = set(arguments.only or ["list", "case", "portal", "export", "certificates", "mail"])
    repeat = 10 if arguments.quick else 30
    seconds = min(arguments.seconds, 8) if arguments.quick else arguments.seconds
    url = arguments.database
    os.makedirs(OUT, exist_ok=True)

    results = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "cases": arguments.cases,
        "database": sa.engine.make_url(url).get_backend_name(),
    }
    if not arguments.keep:
        results["dataset"] = dataset.build(url, arguments.cases, arguments.seed)

    app = bench_app(url)
    steps = (
        ("list", lambda: measure_list(app, repeat)),
        ("case", lambda: measure_case_page(app, repeat)),
        ("certificates", lambda: measure_certificates(app, arguments.certificates)),
        ("mail", lambda: measure_mail(app, arguments.mails)),
        ("portal", lambda: measure_portal(app, url, arguments.clients, seconds, arguments.think)),
        ("export", lambda: measure_export(arguments.export_rows, url)),
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    settle(url)
    for name, step in steps:
        if name not in only:
            continue
        started = time.perf_counter()
        results[name] = step()
        print(f"# {name}: {time.perf_counter() - started:.0f} s", flush=True)
        if name in WRITING_STEPS:
            settle(url)
        # written after every step, so that a long run cut short keeps what it measured
        for path in (os.path.join(OUT, f"run-{stamp}.json"), os.path.join(OUT, "latest.json")):
            with open(path, "w") as handle:
                json.dump(results, handle, indent=2, ensure_ascii=False, default=str)

    print(f"\n{arguments.cases:,} cases on {results['database']}, {results['machine']}\n")
    print_table(table_rows(results))


if __name__ == "__main__":
    main()
