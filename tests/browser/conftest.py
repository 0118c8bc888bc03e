"""Browser fixtures: Debian's chromium, driven by Playwright, against the app served on loopback.

The application runs in a thread of the test process (werkzeug on 127.0.0.1, a free port) on a
fresh SQLite file loaded with the demo data, and mails through an aiosmtpd server on loopback.
Chromium is the distribution's package (`apt-get install chromium chromium-l10n fonts-noto-cjk`);
Playwright never downloads a browser. Without /usr/bin/chromium the tests are skipped, except
in CI (`CI=true`), where they fail.

Every person in a test gets a browser context of their own (`person("staff")`). `Person.snap`
saves the page at 1280×800 and at 390×844 to test-artifacts/screenshots/ and checks that the
page shows no English, raised no script error, had no script refused by the
Content-Security-Policy, asked nothing of any other host, and at phone size does not scroll
sideways. `Person.on` names the page in the message of any step that fails in it and saves a
`FAILED-<page>` screenshot.
"""

import email
import os
import re
import socket
import threading
from contextlib import contextmanager
from email import policy
from pathlib import Path

import pytest

from admin_app import create_app, demo
from admin_app.extensions import db

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# the browser's own words (file pickers, date and time fields) in Traditional Chinese, as a
# Taiwanese teacher's browser shows them: chromium on Linux takes its language from LANGUAGE
# (with Debian's chromium-l10n installed); LANG and LC_ALL stay a UTF-8 locale found everywhere, or
# chromium cannot name downloaded files in Chinese
CHROMIUM_LANGUAGE = {"LANGUAGE": "zh_TW", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
STEP_TIMEOUT_MS = 15_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

# Latin words a Chinese page may show: file types, units, indicator codes such as A-2, the
# demo's login names and mail addresses
ALLOWED_LATIN = re.compile(
    r"^(PDF|pdf|Excel|xlsx|csv|CSV|MB|KB|email|Email|E-mail|[A-Z](-\d+)*|[a-z0-9_.]+@[a-z0-9.]+|"
    r"(teacher|reviewer|county|staff|admin)[a-z0-9_]*)$"
)


def pytest_collection_modifyitems(items):
    """Every browser test talks to its own loopback SMTP server on purpose."""
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.real_smtp)
            item.add_marker(pytest.mark.browser)


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives chromium against a live server")


def _unavailable(reason):
    """Skip the browser tests on a developer machine; fail them in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="package")
def chromium():
    """Debian's chromium, launched headless by Playwright."""
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as error:
        _unavailable(f"playwright is not installed: {error}")

    # a shared CI machine can be slow: wait as long for an expected text as for an element
    expect.set_options(timeout=STEP_TIMEOUT_MS)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, env={**os.environ, **CHROMIUM_LANGUAGE}
        )
        yield browser
        browser.close()


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def subjects_to(self, address):
        """Subjects of the messages sent to one address, oldest first."""
        return [str(message["Subject"]) for rcpt, message in self.messages if address in rcpt]


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def mailbox():
    """A loopback SMTP server collecting what the application sends."""
    from aiosmtpd.controller import Controller

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def live_app(tmp_path_factory, mailbox):
    """The application on a fresh SQLite file with the demo data, mailing to the loopback server."""
    # TODO(browser walk on PostgreSQL too): every other test runs on both databases; this one
    # only on SQLite, to keep the suite's run time down
    folder = tmp_path_factory.mktemp("browser")
    app = create_app(
        {
            # TESTING only keeps create_app from configuring the test process's logging
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'browser.db'}",
            "SECRET_KEY": "browser-test-secret",
            "UPLOAD_FOLDER": str(folder / "uploads"),
            "JOBS_FOLDER": str(folder / "jobs"),
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": mailbox.port,
            "MAIL_TIMEOUT": 5,
        }
    )
    with app.app_context():
        db.create_all()
        demo.load_reference_data()
        demo.load_demo()
        db.session.commit()
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def live_server(live_app):
    """The application served by werkzeug on a free loopback port; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


class Person:
    """One person's browser tab, logged in, with steps that name their page when they fail."""

    def __init__(self, page, base_url, prefix):
        self.page = page
        self.base_url = base_url
        self.prefix = prefix
        self.shots = 0
        self.page_name = "登入"
        self.script_errors = []
        page.on("pageerror", lambda error: self.script_errors.append(str(error)))
        page.on("console", self._console)
        page.on("request", self._request)

    def goto(self, path):
        self.page.goto(self.base_url + path)

    def login(self, login, password=demo.DEMO_PASSWORD):
        with self.on("登入"):
            self.goto("/login")
            self.page.fill("#login", login)
            self.page.fill("#password", password)
            self.page.click("form button[type=submit]")
            assert "/login" not in self.page.url, self.flash_text()

    def _console(self, message):
        # the Content-Security-Policy refuses inline scripts and handlers; report any page that
        # still has them, since what they were meant to do silently does not happen
        if message.type == "error" and "Content Security Policy" in message.text:
            self.script_errors.append(message.text)

    def _request(self, request):
        # every page is served by the app on loopback: no fonts, scripts or trackers from outside
        if not request.url.startswith((self.base_url, "data:", "blob:", "about:")):
            self.script_errors.append(f"request outside the application: {request.url}")

    def flash_text(self):
        """The flashed messages on the page, for assertion messages."""
        return " / ".join(self.page.locator(".flash, .alert").all_inner_texts())

    @contextmanager
    def on(self, page_name):
        """Run the steps of one page; a failure names that page, its URL and its messages."""
        self.page_name = page_name
        try:
            yield self.page
        except Exception as error:
            self._save(f"FAILED-{_slug(page_name)}", full_page=True)
            raise AssertionError(
                f"on the page 「{page_name}」 ({self.page.url}): {error}\n"
                f"messages shown: {self.flash_text() or 'none'}"
            ) from error

    def snap(self, name, phone=True, fits_phone=True):
        """Save the page at desktop and phone size; check the phone view fits and reads Chinese."""
        # a click that navigates returns once the new page starts arriving, not once it is whole
        self.page.wait_for_load_state("load")
        self._save(f"{_slug(name)}-1280x800", full_page=True)
        assert not self.script_errors, f"script errors, refused scripts: {self.script_errors}"
        self.check_chinese()
        if not phone:
            return
        self.page.set_viewport_size(PHONE)
        try:
            self._save(f"{_slug(name)}-390x844", full_page=True)
            if fits_phone:
                width = self.page.evaluate(
                    "[document.documentElement.scrollWidth, window.innerWidth]"
                )
                assert width[0] <= width[1], (
                    f"the page scrolls sideways on a phone: {width[0]}px wide in a "
                    f"{width[1]}px window (widest: {self.widest()})"
                )
        finally:
            self.page.set_viewport_size(DESKTOP)

    def widest(self):
        """The element that sticks out furthest to the right, for overflow messages."""
        return self.page.evaluate(
            """() => {
                let worst = null, right = window.innerWidth;
                for (const el of document.body.querySelectorAll('*')) {
                    const box = el.getBoundingClientRect();
                    const edge = Math.max(box.right, box.left + el.scrollWidth);
                    if (edge > right + 0.5) { right = edge; worst = el; }
                }
                if (!worst) return 'none';
                return worst.tagName.toLowerCase() + '.' + worst.className + ' → ' + right + 'px';
            }"""
        )

    def check_chinese(self):
        """No English in what a person sees or hears: text, title, placeholders, labels, hints."""
        text = self.page.evaluate(
            """() => [document.title, document.body.innerText].concat(
                Array.from(
                    document.querySelectorAll("[placeholder], [title], [aria-label]"),
                    el => ["placeholder", "title", "aria-label"]
                        .map(name => el.getAttribute(name) || "").join(" ")
                )
            ).join("\\n")"""
        )
        # placeholders of a format staff write themselves, e.g. the certificate number {seq:04d}
        text = re.sub(r"\{[^{}]*\}", "", text)
        words = set(re.findall(r"[A-Za-z][A-Za-z0-9_.@-]*", text))
        english = sorted(word for word in words if not ALLOWED_LATIN.match(word))
        assert not english, f"English on the page: {english}"

    def _save(self, name, full_page):
        self.shots += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.prefix}-{self.shots:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)


def _slug(text):
    return re.sub(r"[^\w-]+", "-", text).strip("-") or "page"


@pytest.fixture
def person(chromium, live_server, request):
    """person("teacher_new"): a fresh browser context logged in as that demo account.

    person(None) is a visitor who has not logged in.
    """
    contexts = []
    test = request.node.name.removeprefix("test_")
    for stale in SCREENSHOTS.glob(f"{test}-*.png"):
        stale.unlink()

    def open_as(login):
        context = chromium.new_context(viewport=DESKTOP, locale="zh-TW", accept_downloads=True)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        contexts.append(context)
        someone = Person(context.new_page(), live_server, f"{test}-{login or 'visitor'}")
        if login is not None:
            someone.login(login)
        return someone

    yield open_as
    for context in contexts:
        context.close()
