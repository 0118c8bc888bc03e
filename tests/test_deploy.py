"""The production path: `/healthz`, the gunicorn settings, and two servers on one database.

The two-server test runs what the README's "Deploying" section describes: `flask init-db` on an
empty PostgreSQL schema, then two separate `gunicorn -c gunicorn.conf.py wsgi:app` processes
(two workers each) on loopback ports, sharing the database and one upload folder, with CSRF on.
Each person's browser keeps one cookie jar for both servers, as behind a load balancer without
sticky sessions.
"""

import contextlib
import http.cookiejar
import os
import re
import runpy
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from admin_app import create_app
from admin_app.config import ENVIRONMENT
from admin_app.extensions import db
from admin_app.i18n import now_utc
from bench.rush import multipart
from views import health

from .conftest import PASSWORD, PG_URL, _postgres_schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# bounds on everything that waits for a server process
INIT_DB_TIMEOUT = 180
START_TIMEOUT = 60
STOP_TIMEOUT = 20
REQUEST_TIMEOUT = 30
CSRF_TOKEN = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


# --- /healthz through the test client ---------------------------------------------------------


def test_healthz_answers_ok_without_login_or_cookie(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok", "database": "ok", "uploads": "ok"}
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_not_rate_limited(client):
    statuses = {client.get("/healthz").status_code for _ in range(40)}

    assert statuses == {200}


def test_healthz_leaves_no_file_in_the_upload_folder(app, client):
    client.get("/healthz")

    assert os.listdir(app.config["UPLOAD_FOLDER"]) == []


def test_healthz_answers_503_when_the_upload_folder_is_unwritable(app, client, tmp_path):
    # a file where the folder should be: unwritable even for root, unlike a chmod
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    app.config["UPLOAD_FOLDER"] = str(blocker)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "ok", "uploads": "unwritable"}


def test_healthz_answers_503_without_details_when_the_database_is_unreachable(tmp_path):
    with closed_port() as port:
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "test-secret",
                "SQLALCHEMY_DATABASE_URI": f"postgresql://healthz:s3cret-pw@127.0.0.1:{port}/x",
                "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            }
        )
        started = time.monotonic()
        response = app.test_client().get("/healthz")
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "unavailable", "uploads": "ok"}
    body = response.get_data(as_text=True)
    for secret in (str(port), "127.0.0.1", "s3cret-pw", "healthz:", "Traceback", "psycopg"):
        assert secret not in body
    assert elapsed < 10


def test_healthz_bounds_its_query_and_keeps_the_apps_connect_options(app):
    if "TEST_SCHEMA" not in app.config:
        pytest.skip("the connect and statement timeouts are PostgreSQL settings")
    with health._engine().connect() as connection:
        statement_timeout = connection.exec_driver_sql("SHOW statement_timeout").scalar()
        search_path = connection.exec_driver_sql("SHOW search_path").scalar()

    assert statement_timeout == f"{health.HEALTHZ_TIMEOUT}s"
    assert search_path == app.config["TEST_SCHEMA"]


def test_healthz_keeps_libpq_options_from_the_environment_or_the_url(monkeypatch):
    monkeypatch.setenv("PGOPTIONS", "-csearch_path=from_environment")
    plain = make_url("postgresql+psycopg://u@127.0.0.1/db")
    in_url = make_url("postgresql+psycopg://u@127.0.0.1/db?options=-csearch_path%3Dfrom_url")

    from_environment = health._with_statement_timeout(plain, {}, 2)
    from_url = health._with_statement_timeout(in_url, {}, 2)
    from_arguments = health._with_statement_timeout(in_url, {"options": "-cwork_mem=8MB"}, 2)

    assert from_environment == "-csearch_path=from_environment -c statement_timeout=2000"
    assert from_url == "-csearch_path=from_url -c statement_timeout=2000"
    assert from_arguments == "-cwork_mem=8MB -c statement_timeout=2000"


# --- wsgi.py and gunicorn.conf.py ---------------------------------------------------------------


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:9001, 127.0.0.1:9002")
    monkeypatch.delenv("GUNICORN_CONTROL_SOCKET", raising=False)

    settings = runpy.run_path(os.path.join(ROOT, "gunicorn.conf.py"))

    assert settings["workers"] == 3
    assert settings["bind"] == ["127.0.0.1:9001", "127.0.0.1:9002"]
    assert settings["preload_app"] is False
    assert settings["control_socket_disable"] is True


def test_gunicorn_defaults_are_loopback_and_capped(monkeypatch):
    for name in ("WEB_CONCURRENCY", "GUNICORN_BIND", "GUNICORN_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)

    settings = runpy.run_path(os.path.join(ROOT, "gunicorn.conf.py"))

    assert settings["bind"] == ["127.0.0.1:8000"]
    assert 3 <= settings["workers"] <= settings["MAX_DEFAULT_WORKERS"]
    assert settings["timeout"] > 0


def test_production_refuses_to_start_without_secret_key(tmp_path):
    env = _base_env(tmp_path)
    env.pop("SECRET_KEY", None)
    env.update(
        APP_ENV="production",
        DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
        GUNICORN_BIND=f"127.0.0.1:{free_port()}",
        WEB_CONCURRENCY="1",
    )

    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr + result.stdout


def test_readme_deploying_lists_every_environment_variable():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        deploying = handle.read().split("## Deploying", 1)[1]

    names = {*ENVIRONMENT, "APP_ENV", "INSTANCE_PATH", "WEB_CONCURRENCY", "GUNICORN_BIND"}
    missing = sorted(name for name in names if f"`{name}`" not in deploying)
    assert missing == []


# --- two gunicorn servers on one PostgreSQL schema ----------------------------------------------


@dataclass
class Deployment:
    """What the servers share: the environment, the schema and the upload folder."""

    env: dict
    schema: str
    uploads: str
    tmp_path: object


@pytest.fixture
def deployment(tmp_path):
    """An empty PostgreSQL schema, a shared upload folder and the servers' environment."""
    schema, drop = _postgres_schema()
    uploads = tmp_path / "shared-uploads"
    uploads.mkdir()
    with closed_port() as mail_port:
        env = _base_env(tmp_path)
        env.update(
            APP_ENV="production",
            DATABASE_URL=PG_URL,
            # libpq reads PGOPTIONS; psycopg connects through libpq
            PGOPTIONS=f"-csearch_path={schema}",
            UPLOAD_FOLDER=str(uploads),
            JOBS_IN_PROCESS="0",
            # the mail sent after a commit meets a port nobody listens on, and is retried later
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=str(mail_port),
            WEB_CONCURRENCY="2",
        )
        try:
            yield Deployment(env=env, schema=schema, uploads=str(uploads), tmp_path=tmp_path)
        finally:
            drop()


def test_two_servers_share_one_database_and_upload_folder(deployment):
    timings = {}
    started = time.monotonic()

    init_db = [sys.executable, "-m", "flask", "--app", "admin_app", "init-db"]
    result = subprocess.run(
        init_db,
        cwd=ROOT,
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=INIT_DB_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    timings["init-db"] = time.monotonic() - started
    # the README runs it on every upgrade: a second run changes nothing and succeeds
    again = subprocess.run(
        init_db, cwd=ROOT, env=deployment.env, capture_output=True, timeout=INIT_DB_TIMEOUT
    )
    assert again.returncode == 0, again.stdout + again.stderr

    checker = _schema_app(deployment)
    try:
        with checker.app_context():
            people = _prepare_people()
        mark = time.monotonic()

        servers = GunicornServer(deployment, "one"), GunicornServer(deployment, "two")
        with running(*servers) as (one, two):
            timings["both servers healthy"] = time.monotonic() - mark
            mark = time.monotonic()

            _record_saved_on_one_is_seen_on_two(one, two, people)
            document_id, content = _upload_on_one_downloads_on_two(one, two, people)
            outcomes = _concurrent_submits(one, two, people)
            _staff_on_two_sees_the_case(two, people, document_id, content)
            timings["scenario"] = time.monotonic() - mark
            mark = time.monotonic()
        timings["both servers stopped"] = time.monotonic() - mark

        assert sorted(outcomes) == ["refused", "refused", "refused", "submitted"], outcomes
        with checker.app_context():
            _assert_submitted_once(people["case_b"])
    finally:
        with checker.app_context():
            db.engine.dispose()

    timings["total"] = time.monotonic() - started
    print("two-server timings:", ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


def _record_saved_on_one_is_seen_on_two(one, two, people):
    """Teacher A opens a case and saves a record through server one; server two shows it."""
    browser = Browser()
    browser.log_in(one, people["login_a"])

    token = browser.csrf_token(one, "/apply")
    response = browser.post(one, "/apply/start", {"csrf_token": token})
    assert response.status == 302, response.text[:500]

    token = browser.csrf_token(one, "/apply/record/pre_conference")
    fields = [("csrf_token", token), ("template_version_id", str(people["version_id"]))]
    response = browser.post(one, "/apply/record/pre_conference", fields + people["record"])
    assert response.status == 302 and response.location.endswith("/apply"), response.text[:500]

    page = browser.get(two, "/apply/record/pre_conference")
    assert page.status == 200
    assert people["marker"] in page.text
    people["browser_a"] = browser


def _upload_on_one_downloads_on_two(one, two, people):
    """A PDF uploaded through server one downloads, byte for byte, through server two."""
    from admin_app.demo import demo_pdf

    browser = people["browser_a"]
    content = demo_pdf("deploy-test")
    token = browser.csrf_token(one, "/apply/item/public_teaching")
    response = browser.post(
        one,
        "/apply/item/public_teaching",
        [("csrf_token", token)],
        files=[("file", "公開授課.pdf", content)],
    )
    assert response.status == 302, response.text[:500]

    page = browser.get(two, "/apply/item/public_teaching")
    assert "公開授課.pdf" in page.text
    document_id = int(re.search(r"/apply/document/(\d+)", page.text).group(1))
    download = browser.get(two, f"/apply/document/{document_id}")
    assert download.status == 200
    assert download.body == content
    return document_id, content


def _concurrent_submits(one, two, people):
    """Four identical submit POSTs for teacher B's case, two per server, at the same moment."""
    browser = Browser()
    browser.log_in(two, people["login_b"])
    token = browser.csrf_token(one, "/apply/submit")

    servers = [one, two, one, two]
    barrier = threading.Barrier(len(servers))
    outcomes = [None] * len(servers)

    def submit(index, server):
        barrier.wait(timeout=REQUEST_TIMEOUT)
        response = browser.post(server, "/apply/submit", {"csrf_token": token})
        if response.status == 302 and response.location.endswith("/apply/flow"):
            outcomes[index] = "submitted"
        elif response.status == 302 and response.location.endswith("/apply"):
            outcomes[index] = "refused"
        else:
            outcomes[index] = f"HTTP {response.status}"

    threads = [
        threading.Thread(target=submit, args=(index, server), daemon=True)
        for index, server in enumerate(servers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT * 2)
    return outcomes


def _staff_on_two_sees_the_case(two, people, document_id, content):
    """Staff logged in on server two see the submitted case and download the upload."""
    browser = Browser()
    browser.log_in(two, people["login_staff"])

    page = browser.get(two, f"/admin/case/details/?id={people['case_b']}")
    assert page.status == 200, page.text[:500]
    assert people["name_b"] in page.text
    assert "形式審查" in page.text

    download = browser.get(two, f"/admin/document/download/{document_id}/")
    assert download.status == 200
    assert download.body == content


def _assert_submitted_once(case_id):
    from models import AuditEvent, Case, CaseState, Notification, OutgoingMail

    case = db.session.get(Case, case_id)
    assert case.state is CaseState.formal_review

    def count(model, **where):
        query = sa.select(sa.func.count()).select_from(model).filter_by(case_id=case_id, **where)
        return db.session.scalar(query)

    assert count(AuditEvent, action="submit") == 1
    assert count(Notification, kind="submitted") == 1
    assert count(OutgoingMail, kind="submitted") == 1


def _schema_app(deployment):
    """An app on the deployment's schema, for preparing and checking rows from the test."""
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": PG_URL,
            "SQLALCHEMY_ENGINE_OPTIONS": {
                "connect_args": {"options": f"-csearch_path={deployment.schema}"}
            },
            "UPLOAD_FOLDER": deployment.uploads,
            "MAIL_SUPPRESS_SEND": True,
            "SEND_MAIL_AFTER_COMMIT": False,
        }
    )


def _prepare_people():
    """An open cycle, teachers A (no case yet) and B (all six items filled), and a staff member."""
    from admin_app.demo import demo_formdata, fill_application
    from models import Cycle, FormTemplate, RecordKind, Role, User
    from models.application import open_case

    from .factories import new_applicant

    cycle = Cycle(
        academic_year=115,
        name="115 學年度進階專業回饋人才認證",
        opens_at=now_utc() - timedelta(days=10),
        closes_at=now_utc() + timedelta(days=10),
        required_hours=18,
        hours_from_year=113,
        hours_to_year=114,
    )
    db.session.add(cycle)
    db.session.flush()
    teacher_a = new_applicant(cycle)
    teacher_b = new_applicant(cycle)
    case_b = open_case(teacher_b, cycle)
    db.session.flush()
    fill_application(case_b, teacher_b)
    staff = User(
        login="deploy_staff", name="部署測試承辦人", role=Role.staff, email="staff@example.edu.tw"
    )
    staff.set_password(PASSWORD)
    db.session.add(staff)

    template = db.session.scalar(
        sa.select(FormTemplate)
        .where(FormTemplate.kind == RecordKind.pre_conference)
        .order_by(FormTemplate.sort_order)
        .limit(1)
    )
    version = template.current_version
    record = demo_formdata(version.fields)
    marker = f"deploy-marker-{uuid.uuid4().hex[:8]}"
    first_long_text = next(field for field in version.fields if field["type"] == "textarea")
    record.setlist(first_long_text["key"], [marker])
    db.session.commit()

    return {
        "login_a": teacher_a.login,
        "login_b": teacher_b.login,
        "name_b": teacher_b.name,
        "login_staff": staff.login,
        "case_b": case_b.id,
        "version_id": version.id,
        "record": list(record.items(multi=True)),
        "marker": marker,
    }


# --- servers, ports and a small browser ---------------------------------------------------------


def _opener(*handlers):
    # no proxy from the environment: every request stays on the loopback servers
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), *handlers)


class GunicornServer:
    """`gunicorn -c gunicorn.conf.py wsgi:app` on a free loopback port."""

    def __init__(self, deployment, name):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**deployment.env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        self.log_path = deployment.tmp_path / f"gunicorn-{name}.log"
        self.process = None

    def start(self):
        with open(self.log_path, "wb") as log_file:
            # a session of its own, so that the workers can be stopped with their master
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until_healthy(self):
        opener = _opener()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            try:
                with opener.open(self.base + "/healthz", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        pytest.fail(f"gunicorn on port {self.port} not healthy in {START_TIMEOUT}s:\n{self.log()}")

    def terminate(self):
        """Ask for a graceful shutdown (SIGTERM to the master)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self):
        """Wait for the shutdown, killing the process group if it takes too long."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError):
            # workers left behind by a master that did not shut down cleanly
            os.killpg(self.process.pid, signal.SIGKILL)

    def log(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()[-4000:]


@contextlib.contextmanager
def running(*servers):
    """Start the servers together, wait until each is healthy, and stop them all afterwards."""
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_until_healthy()
        yield servers
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait_stopped()


def free_port():
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def closed_port():
    """A loopback port held (bound, never listening) so that connecting to it is refused."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def _base_env(tmp_path):
    """This process's environment without any app or server settings, plus a private
    instance folder and a random SECRET_KEY."""
    settings = {*ENVIRONMENT, "APP_ENV", "INSTANCE_PATH", "DATABASE_URL", "WEB_CONCURRENCY"}
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in settings and not name.startswith(("GUNICORN_", "FLASK_", "PG"))
    }
    env.update(
        INSTANCE_PATH=str(tmp_path / "instance"),
        SECRET_KEY=secrets.token_hex(32),
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Response:
    """What came back: status, headers and the raw body."""

    status: int
    headers: object
    body: bytes

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    @property
    def location(self):
        return self.headers.get("Location", "")


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """One person's browser: one cookie jar for both servers, redirects not followed."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = _opener(urllib.request.HTTPCookieProcessor(self.jar), _KeepRedirects)

    def get(self, server, path):
        return self._open(server.base + path)

    def post(self, server, path, fields, files=()):
        if files:
            body, content_type = multipart(fields, files)
        else:
            body = urllib.parse.urlencode(fields).encode()
            content_type = "application/x-www-form-urlencoded"
        return self._open(server.base + path, body, {"Content-Type": content_type})

    def csrf_token(self, server, path):
        page = self.get(server, path)
        match = CSRF_TOKEN.search(page.text)
        assert match, f"no csrf_token on {path} (HTTP {page.status}): {page.text[:300]}"
        return match.group(1)

    def log_in(self, server, login):
        token = self.csrf_token(server, "/login")
        fields = {"csrf_token": token, "login": login, "password": PASSWORD}
        response = self.post(server, "/login", fields)
        assert response.status == 302, response.text[:500]

    def _open(self, url, body=None, headers=None):
        # every URL here is http://127.0.0.1:<port>/..., built by this module
        request = urllib.request.Request(url, data=body, headers=headers or {})  # noqa: S310
        try:
            with self.opener.open(request, timeout=REQUEST_TIMEOUT) as answer:
                return Response(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as error:
            with error:
                return Response(error.code, error.headers, error.read())
