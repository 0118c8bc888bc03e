"""The deadline rush: N candidates at once log in, fill their records, upload PDFs and submit.

    .venv/bin/python -m bench.rush                                  # 300 candidates
    .venv/bin/python -m bench.rush --clients 30 --seconds 60 --workers 3

What it does, on PostgreSQL, in a schema of its own that it drops afterwards:

1. builds the tables, the counties and record templates, an intake cycle open now, and N
   eligible candidates (accounts created in bulk, one password hash shared by all), each with a
   draft case;
2. starts `gunicorn -c gunicorn.conf.py wsgi:app` (`--workers` sync workers, as in production,
   with CSRF on) on a free loopback port, with an upload folder of its own and a mail server
   address nobody listens on (mail is queued and retried, as when the mail server is down);
3. runs N simulated candidates at once, each a thread with its own cookies speaking HTTP/1.1
   with `http.client`: the login page and login, the application page, each of the three
   records (page, then save), each of the three uploads (page, POST of a PDF, the page it is
   sent back to), the submit page and then two submit POSTs at the same moment (a double click).
   Every form carries the CSRF token of its page. A candidate stops where it is when the run's
   time is up (`--seconds`, 600 by default; 0: no limit);
4. checks the database afterwards: every save the server acknowledged (a redirect to the
   application page) holds the text that was saved; every upload it acknowledged (the page says
   已上傳) is a document row whose file on disk has the uploaded bytes; no case was submitted
   twice (one `submit` audit event and one 已送出 message at most), and every acknowledged submit
   is a case in 形式審查; no answer was a server error (5xx) or a broken connection.

It prints the figures (requests, requests per second, latency p50/p95/p99 per kind of request,
errors) and what the check found, and exits 1 if the check found anything. `tests/test_rush.py`
runs a small version of it in the test suite.
"""

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import urlencode, urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import sqlalchemy as sa  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "rush-password-42"  # noqa: S105 (the simulated candidates' own, on loopback)
RECORD_ITEMS = ("pre_conference", "observation", "post_conference")
UPLOAD_ITEMS = ("public_teaching", "community", "checklist")
CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')
REQUEST_TIMEOUT = 120
START_TIMEOUT = 90
STOP_TIMEOUT = 30
UPLOADED = "已上傳「{name}」"


# --- the database -------------------------------------------------------------------------


def schema_app(database_url, schema, uploads):
    """An app on the rush's schema, for preparing the data and checking it afterwards."""
    from admin_app import create_app

    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "rush-setup",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {
                "pool_pre_ping": True,
                "connect_args": {"options": f"-csearch_path={schema}"},
            },
            "UPLOAD_FOLDER": uploads,
            "MAIL_SUPPRESS_SEND": True,
            "SEND_MAIL_AFTER_COMMIT": False,
            "JOBS_IN_PROCESS": False,
        }
    )


@contextlib.contextmanager
def private_schema(database_url):
    """A schema of its own in the database, dropped with everything in it afterwards."""
    from admin_app.config import normalise_database_url

    engine = sa.create_engine(normalise_database_url(database_url))
    schema = f"rush_{uuid.uuid4().hex[:10]}"
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield schema
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def prepare(app, clients):
    """Tables, reference data, an open cycle and the candidates with a draft case each.

    Returns the logins and, per record item, the template version and the fields to post.
    """
    from werkzeug.security import generate_password_hash

    from admin_app import demo
    from admin_app.extensions import db
    from admin_app.i18n import now_utc
    from models import (
        CertificateHeld,
        CertificateLevel,
        County,
        Cycle,
        FormTemplate,
        Position,
        RecordKind,
        Role,
        School,
        TrainingRecord,
        User,
    )
    from models.application import open_case

    with app.app_context():
        db.create_all()
        demo.load_reference_data()
        cycle = Cycle(
            academic_year=115,
            name="115 學年度進階專業回饋人才認證",
            opens_at=now_utc() - timedelta(days=30),
            closes_at=now_utc() + timedelta(hours=1),
            required_hours=18,
            hours_from_year=113,
            hours_to_year=114,
        )
        db.session.add(cycle)
        counties = db.session.scalars(sa.select(County).order_by(County.sort_order)).all()
        schools = [
            School(name=f"{county.name}立衝刺國民中學", county=county, code=f"rush-{county.id}")
            for county in counties
        ]
        db.session.add_all(schools)

        # one hash for everyone: hashing N passwords one by one would take minutes
        password_hash = generate_password_hash(PASSWORD)
        users = []
        for number in range(clients):
            user = User(
                login=f"rush{number:04d}",
                name=f"衝刺{number:04d}",
                email=f"rush{number:04d}@example.edu.tw",
                role=Role.applicant,
                position=Position.teacher,
                school=schools[number % len(schools)],
                password_hash=password_hash,
            )
            user.training_records.append(
                TrainingRecord(
                    course="進階培訓", hours=18, completed_on=date(2026, 3, 1), academic_year=114
                )
            )
            user.certificates.append(
                CertificateHeld(
                    level=CertificateLevel.basic,
                    number=f"初階-rush-{number}",
                    issued_on=date(2020, 1, 1),
                )
            )
            users.append(user)
        db.session.add_all(users)
        db.session.flush()
        for user in users:
            open_case(user, cycle)
        db.session.commit()

        forms = {}
        for item in RECORD_ITEMS:
            template = db.session.scalar(
                sa.select(FormTemplate)
                .where(FormTemplate.kind == RecordKind(item))
                .order_by(FormTemplate.sort_order)
                .limit(1)
            )
            version = template.current_version
            fields = list(demo.demo_formdata(version.fields).items(multi=True))
            marked = next(f["key"] for f in version.fields if f["type"] in ("text", "textarea"))
            forms[item] = {"version_id": version.id, "fields": fields, "marked": marked}
        logins = [user.login for user in users]
        db.session.remove()
        db.engine.dispose()
    return logins, forms


# --- the server ---------------------------------------------------------------------------


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def closed_port():
    """A loopback port held bound but not listening: connecting to it is refused at once."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


@contextlib.contextmanager
def gunicorn(database_url, schema, folder, workers):
    """`gunicorn -c gunicorn.conf.py wsgi:app` on a free loopback port; yields (port, log path)."""
    port = free_port()
    log_path = os.path.join(folder, "gunicorn.log")
    keep = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GUNICORN_", "FLASK_", "PG", "MAIL_", "DATABASE_", "APP_"))
        and name not in ("SECRET_KEY", "UPLOAD_FOLDER", "JOBS_FOLDER", "WEB_CONCURRENCY")
    }
    with closed_port() as mail_port:
        env = {
            **keep,
            "APP_ENV": "production",
            "SECRET_KEY": secrets.token_hex(32),
            "DATABASE_URL": database_url,
            # libpq reads PGOPTIONS: every connection of every worker works in the schema
            "PGOPTIONS": f"-csearch_path={schema}",
            "INSTANCE_PATH": os.path.join(folder, "instance"),
            "UPLOAD_FOLDER": os.path.join(folder, "uploads"),
            "JOBS_FOLDER": os.path.join(folder, "jobs"),
            "JOBS_IN_PROCESS": "0",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(mail_port),
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "PYTHONUNBUFFERED": "1",
        }
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_until_healthy(port, process, log_path)
            yield port, log_path
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)


def _wait_until_healthy(port, process, log_path):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(log_path, errors="replace") as log:
                raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.read()}")
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"gunicorn on port {port} not healthy in {START_TIMEOUT}s")


# --- the candidates -----------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    location: str
    text: str


class Stopped(Exception):
    """The run's time is up, or the server broke the conversation: the candidate stops."""


@dataclass
class Tally:
    """What every candidate saw, shared by the threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict = field(default_factory=lambda: defaultdict(list))
    server_errors: list = field(default_factory=list)
    broken: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    saves: dict = field(default_factory=dict)  # (login, item) -> last acknowledged marker
    uploads: dict = field(default_factory=dict)  # (login, item) -> (file name, sha256)
    submits: dict = field(default_factory=lambda: defaultdict(int))  # login -> acknowledged
    refused_submits: int = 0
    finished: int = 0
    logged_in: int = 0

    def add(self, attribute, key, value):
        with self.lock:
            getattr(self, attribute)[key] = value


class Candidate:
    """One person's browser: cookies, the CSRF token of the last form, one request at a time."""

    def __init__(self, port, login, tally, deadline, think, seed):
        self.port = port
        self.login = login
        self.tally = tally
        self.deadline = deadline
        self.think = think
        self.random = random.Random(seed)
        self.cookies = {}
        self.cookie_lock = threading.Lock()

    def request(self, kind, method, path, fields=None, files=None):
        """Send one request on a connection of its own; record its time and status."""
        body, headers = b"", {"Connection": "close"}
        if files:
            body, headers["Content-Type"] = multipart(fields or [], files)
        elif fields is not None:
            body = urlencode(fields).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        with self.cookie_lock:
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())

        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            connection.request(method, path, body=body if method == "POST" else None,
                               headers=headers)  # fmt: skip
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as error:
            with self.tally.lock:
                self.tally.broken.append(f"{method} {path}: {type(error).__name__}: {error}")
            raise Stopped from error
        finally:
            connection.close()
        elapsed = time.monotonic() - started

        with self.cookie_lock:
            for header in response.headers.get_all("Set-Cookie") or ():
                name, _sep, value = header.split(";", 1)[0].partition("=")
                self.cookies[name.strip()] = value
        with self.tally.lock:
            self.tally.latencies[kind].append(elapsed)
            if response.status >= 500:
                self.tally.server_errors.append(f"{method} {path}: {response.status}")
        location = urlsplit(response.headers.get("Location", "")).path
        return Answer(response.status, location, text)

    def expect(self, answer, status, what, location=None):
        """Note an answer that is not the one a working server gives, and stop."""
        if answer.status != status or (location is not None and answer.location != location):
            self.fail(f"{what}: {answer.status} {answer.location}".strip())

    def fail(self, what):
        with self.tally.lock:
            self.tally.unexpected.append(f"{self.login} {what}")
        raise Stopped

    def page_token(self, kind, path):
        answer = self.request(kind, "GET", path)
        self.expect(answer, 200, f"GET {path}")
        match = CSRF.search(answer.text)
        if match is None:
            self.fail(f"no token on {path}")
        return match.group(1)

    def pause(self):
        """A person's pause between two clicks; the run's end stops the candidate."""
        if self.think:
            time.sleep(self.random.uniform(0, 2 * self.think))
        if time.monotonic() > self.deadline:
            raise Stopped

    # the steps -------------------------------------------------------------------------------

    def run(self, forms):
        with contextlib.suppress(Stopped):
            self.log_in()
            self.pause()
            self.expect(self.request("page", "GET", "/apply"), 200, "GET /apply")
            for item in RECORD_ITEMS:
                self.pause()
                self.save_record(item, forms[item])
            for item in UPLOAD_ITEMS:
                self.pause()
                self.upload(item)
            self.pause()
            self.submit()
            with self.tally.lock:
                self.tally.finished += 1

    def log_in(self):
        token = self.page_token("page", "/login")
        fields = {"csrf_token": token, "login": self.login, "password": PASSWORD}
        answer = self.request("login", "POST", "/login", fields)
        self.expect(answer, 302, "login", location="/")
        with self.tally.lock:
            self.tally.logged_in += 1

    def save_record(self, item, form):
        path = f"/apply/record/{item}"
        token = self.page_token("page", path)
        marker = f"{self.login}-{item}-{uuid.uuid4().hex[:8]}"
        fields = [("csrf_token", token), ("template_version_id", str(form["version_id"]))]
        fields += [(k, marker if k == form["marked"] else v) for k, v in form["fields"]]
        answer = self.request("save record", "POST", path, fields)
        self.expect(answer, 302, f"save {item}", location="/apply")
        self.tally.add("saves", (self.login, item), marker)

    def upload(self, item):
        path = f"/apply/item/{item}"
        token = self.page_token("page", path)
        name = f"{self.login}-{item}.pdf"
        content = pdf_bytes(name)
        files = [("file", name, content)]
        answer = self.request("upload", "POST", path, [("csrf_token", token)], files)
        self.expect(answer, 302, f"upload {item}", location=path)
        page = self.request("page", "GET", path)
        self.expect(page, 200, f"GET {path} after upload")
        if UPLOADED.format(name=name) not in page.text:
            self.fail(f"upload {item} not confirmed")
        self.tally.add("uploads", (self.login, item), (name, hashlib.sha256(content).hexdigest()))

    def submit(self):
        """Two submit POSTs at the same moment, as from a double click."""
        token = self.page_token("page", "/apply/submit")
        start = threading.Barrier(2)
        answers = [None, None]

        def click(index):
            with contextlib.suppress(threading.BrokenBarrierError, Stopped):
                start.wait(timeout=REQUEST_TIMEOUT)
                answers[index] = self.request(
                    "submit", "POST", "/apply/submit", {"csrf_token": token}
                )

        second = threading.Thread(target=click, args=(1,))
        second.start()
        click(0)
        second.join()

        for answer in answers:
            if answer is None:
                continue
            if answer.status == 302 and answer.location == "/apply/flow":
                with self.tally.lock:
                    self.tally.submits[self.login] += 1
            elif answer.status == 302 and answer.location == "/apply":
                with self.tally.lock:
                    self.tally.refused_submits += 1
            else:
                self.expect(answer, 302, "submit", location="/apply/flow")


def pdf_bytes(title):
    from admin_app.demo import demo_pdf

    return demo_pdf(title)


def multipart(fields, files):
    """A multipart/form-data body of the fields and the (name, file name, bytes) files."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for name, filename, content in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'
        )
        parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def run_candidates(port, logins, forms, seconds, think):
    """Every candidate in a thread of its own, all at once; returns (tally, elapsed seconds)."""
    tally = Tally()
    deadline = time.monotonic() + seconds if seconds else float("inf")
    threads = [
        threading.Thread(
            target=Candidate(port, login, tally, deadline, think, seed=number).run,
            args=(forms,),
            daemon=True,
        )
        for number, login in enumerate(logins)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        # a request under way when the time is up may still finish
        left = deadline - time.monotonic() if seconds else None
        thread.join(timeout=None if left is None else max(0, left) + REQUEST_TIMEOUT)
    return tally, time.monotonic() - started


# --- the check ----------------------------------------------------------------------------


def check(app, tally):
    """What the database holds against what the server acknowledged: a list of problems."""
    from admin_app import storage
    from admin_app.extensions import db
    from models import (
        ApplicationItem,
        AuditEvent,
        Case,
        CaseState,
        Document,
        FormEntry,
        Notification,
        User,
    )

    problems = []
    with app.app_context():
        cases = dict(db.session.execute(sa.select(User.login, Case.id).join(Case.applicant)).all())
        for (login, item), marker in sorted(tally.saves.items()):
            entry = db.session.scalar(
                sa.select(FormEntry).where(
                    FormEntry.case_id == cases[login],
                    FormEntry.item == ApplicationItem(item),
                    FormEntry.round == 1,
                )
            )
            if entry is None or marker not in json.dumps(entry.data, ensure_ascii=False):
                problems.append(f"lost save: {login} {item}")

        for (login, item), (name, digest) in sorted(tally.uploads.items()):
            document = db.session.scalar(
                sa.select(Document).where(
                    Document.case_id == cases[login],
                    Document.original_name == name,
                    Document.superseded_at.is_(None),
                )
            )
            if document is None or document.sha256 != digest:
                problems.append(f"lost upload: {login} {item}")
                continue
            with open(storage.path_of(document.stored_name), "rb") as stored:
                if hashlib.sha256(stored.read()).hexdigest() != digest:
                    problems.append(f"upload differs on disk: {login} {item}")

        submits = dict(
            db.session.execute(
                sa.select(AuditEvent.case_id, sa.func.count())
                .where(AuditEvent.action == "submit")
                .group_by(AuditEvent.case_id)
            ).all()
        )
        notices = dict(
            db.session.execute(
                sa.select(Notification.case_id, sa.func.count())
                .where(Notification.kind == "submitted")
                .group_by(Notification.case_id)
            ).all()
        )
        states = dict(db.session.execute(sa.select(Case.id, Case.state)).all())
        for login, case_id in sorted(cases.items()):
            acknowledged = tally.submits.get(login, 0)
            if submits.get(case_id, 0) > 1 or notices.get(case_id, 0) > 1:
                problems.append(f"submitted twice: {login}")
            if acknowledged > 1:
                problems.append(f"two submits acknowledged: {login}")
            if acknowledged and (
                states[case_id] is not CaseState.formal_review or submits.get(case_id) != 1
            ):
                problems.append(f"acknowledged submit not recorded: {login}")
        db.session.remove()
        db.engine.dispose()
    return problems


# --- the figures --------------------------------------------------------------------------


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class RushResult:
    """The figures of a run and what the check found."""

    clients: int
    workers: int
    seconds_allowed: float
    elapsed: float
    tally: Tally
    problems: list
    log_errors: list
    server_times: dict  # kind -> seconds the server spent on each request (its access log)

    @property
    def requests(self):
        return sum(len(times) for times in self.tally.latencies.values())

    @property
    def all_problems(self):
        return [
            *self.problems,
            *(f"server error: {e}" for e in self.tally.server_errors),
            *(f"broken connection: {e}" for e in self.tally.broken),
            *(f"unexpected answer: {e}" for e in self.tally.unexpected),
            *(f"in the server log: {line}" for line in self.log_errors),
        ]

    def report(self):
        tally = self.tally
        limit = f"at most {self.seconds_allowed:.0f} s" if self.seconds_allowed else "no limit"
        busy = sum(sum(times) for times in self.server_times.values())
        lines = [
            f"deadline rush: {self.clients} candidates, {self.workers} gunicorn workers, "
            f"PostgreSQL, {limit}",
            f"  requests {self.requests} in {self.elapsed:.1f} s = "
            f"{self.requests / self.elapsed:.1f} per second; workers busy "
            f"{busy / self.elapsed:.1f} of {self.workers} on average",
            "  as the candidates waited (queueing included):",
            *latency_table(tally.latencies),
            "  as the server spent (gunicorn's access log):",
            *latency_table(self.server_times),
            f"  logged in {tally.logged_in}, finished {tally.finished} of {self.clients}",
            f"  saves acknowledged {len(tally.saves)}, uploads acknowledged {len(tally.uploads)}, "
            f"submits acknowledged {sum(tally.submits.values())}, "
            f"second clicks refused {tally.refused_submits}",
            f"  server errors (5xx) {len(tally.server_errors)}, broken connections "
            f"{len(tally.broken)}, unexpected answers {len(tally.unexpected)}, "
            f"errors in the server log {len(self.log_errors)}",
            f"  check of the database: {len(self.problems)} problems",
        ]
        lines += [f"    {problem}" for problem in self.all_problems[:20]]
        return "\n".join(lines)


def latency_table(latencies):
    """Lines of count and p50/p95/p99/max in milliseconds, per kind of request and in all."""
    everything = [t for times in latencies.values() for t in times]
    lines = [
        f"    {'kind':<12} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    ]
    for kind, times in [*sorted(latencies.items()), ("all", everything)]:
        lines.append(
            f"    {kind:<12} {len(times):>6} {percentile(times, 0.5) * 1000:>8.0f} "
            f"{percentile(times, 0.95) * 1000:>8.0f} {percentile(times, 0.99) * 1000:>8.0f} "
            f"{max(times, default=0) * 1000:>8.0f}"
        )
    return lines


ACCESS_LINE = re.compile(r'"(GET|POST) (\S+) HTTP/[\d.]+" (\d{3}) \S+ (\d+)ms')
KINDS = (
    ("POST", "/login", "login"),
    ("POST", "/apply/record/", "save record"),
    ("POST", "/apply/item/", "upload"),
    ("POST", "/apply/submit", "submit"),
)


def server_times(log_path):
    """The server's own time per request of the candidates, by kind, from the access log."""
    times = defaultdict(list)
    with open(log_path, errors="replace") as log:
        for line in log:
            match = ACCESS_LINE.search(line)
            if match is None or match.group(2) == "/healthz":
                continue
            method, path, _status, milliseconds = match.groups()
            kind = next(
                (k for m, prefix, k in KINDS if m == method and path.startswith(prefix)), "page"
            )
            times[kind].append(int(milliseconds) / 1000)
    return dict(times)


def log_errors(log_path):
    """Lines of the gunicorn log that tell of an exception or a worker that died."""
    with open(log_path, errors="replace") as log:
        return [
            line.strip()
            for line in log
            if "Traceback" in line or "[ERROR]" in line or "[CRITICAL]" in line
        ]


def run_rush(database_url=DEFAULT_DATABASE, clients=300, seconds=600, workers=4, think=0.5):
    """Prepare, serve, run the candidates and check; returns a RushResult.

    `seconds` bounds the run (None or 0: every candidate goes to the end).
    """
    folder = tempfile.mkdtemp(prefix="rush-")
    uploads = os.path.join(folder, "uploads")
    try:
        with private_schema(database_url) as schema:
            app = schema_app(database_url, schema, uploads)
            logins, forms = prepare(app, clients)
            with gunicorn(database_url, schema, folder, workers) as (port, log_path):
                tally, elapsed = run_candidates(port, logins, forms, seconds, think)
            problems = check(app, tally)
            return RushResult(
                clients,
                workers,
                seconds,
                elapsed,
                tally,
                problems,
                log_errors(log_path),
                server_times(log_path),
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="PostgreSQL URL")
    parser.add_argument("--clients", type=int, default=300, help="simulated candidates")
    parser.add_argument("--seconds", type=float, default=600, help="the run's time limit (0: none)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--think", type=float, default=0.5, help="mean pause between clicks (s)")
    options = parser.parse_args(argv)

    result = run_rush(
        options.database, options.clients, options.seconds, options.workers, options.think
    )
    print(result.report())
    return 1 if result.all_problems else 0


if __name__ == "__main__":
    sys.exit(main())
