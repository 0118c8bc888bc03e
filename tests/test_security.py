"""Logging in safely: throttling, the audit trail of logins, password rules and changes,
cookies, the session lifetime and the security headers of pages and downloads."""

import threading
from datetime import timedelta

import itsdangerous.timed
import pytest
import sqlalchemy as sa
from flask import g

from admin_app import create_app
from admin_app.extensions import db
from admin_app.i18n import now_utc
from admin_app.security import password_problems
from models import AuditEvent, Document, LoginThrottle, Role, User
from models import login_throttle as throttle_module

from .conftest import PASSWORD
from .pages import flashes, text

WRONG = "wrong-password-99"
LOCKED = "登入失敗次數過多，請 15 分鐘後再試。"
FAILED = "帳號或密碼錯誤。"


def attempt(client, login, password, address="198.51.100.1", headers=None):
    return client.post(
        "/login",
        data={"login": login, "password": password},
        environ_base={"REMOTE_ADDR": address},
        headers=headers or {},
    )


def events(action):
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def logged_in(client):
    """Whether the client's session is a logged-in one (the portal does not send it away)."""
    return client.get("/profile").status_code == 200


def later(monkeypatch, minutes):
    """Move the throttle's clock forward."""
    moment = now_utc() + timedelta(minutes=minutes)
    monkeypatch.setattr(throttle_module, "now_utc", lambda: moment)


# --- the audit trail of logins --------------------------------------------------------------


def test_login_is_audited_with_who_and_the_address(client, teacher):
    response = attempt(client, "teacher1", PASSWORD, address="203.0.113.7")

    assert response.status_code == 302
    [event] = events("login")
    assert event.actor_id == teacher.id
    assert event.remote_addr == "203.0.113.7"
    assert event.created_at > now_utc() - timedelta(minutes=1)


@pytest.mark.parametrize("login_name", ["teacher1", "nobody-here"])
def test_failure_message_is_generic_and_the_attempt_audited(client, teacher, login_name):
    response = attempt(client, login_name, WRONG, address="203.0.113.8")

    assert response.status_code == 200
    assert flashes(response) == [FAILED]
    [event] = events("login_failed")
    assert event.actor_id is None
    assert event.comment == login_name
    assert event.remote_addr == "203.0.113.8"
    assert not logged_in(client)


def test_unknown_account_and_wrong_password_read_the_same(client, teacher):
    known = attempt(client, "teacher1", WRONG)
    unknown = attempt(client, "nobody-here", WRONG)

    assert text(known) == text(unknown).replace("nobody-here", "teacher1")


def test_logout_is_audited(client, teacher):
    attempt(client, "teacher1", PASSWORD, address="203.0.113.9")

    response = client.post("/logout", environ_base={"REMOTE_ADDR": "203.0.113.9"})

    assert response.status_code == 302
    [event] = events("logout")
    assert event.actor_id == teacher.id and event.remote_addr == "203.0.113.9"
    assert not logged_in(client)


def test_inactive_account_is_refused_like_a_wrong_password(client, teacher):
    teacher.active = False
    db.session.commit()

    response = attempt(client, "teacher1", PASSWORD)

    assert flashes(response) == [FAILED]
    assert not logged_in(client)


def test_demo_style_short_password_still_logs_in(client, make_user):
    user = make_user("demo-teacher")
    user.set_password("demo1234")
    db.session.commit()

    assert attempt(client, "demo-teacher", "demo1234").status_code == 302
    assert logged_in(client)


# --- throttling -----------------------------------------------------------------------------


@pytest.mark.parametrize("login_name", ["teacher1", "nobody-here"])
def test_five_failures_lock_the_account_even_against_the_right_password(
    client, teacher, login_name
):
    for _ in range(5):
        assert flashes(attempt(client, login_name, WRONG)) == [FAILED]

    refused = attempt(client, login_name, PASSWORD)

    assert refused.status_code == 429
    assert flashes(refused) == [LOCKED]
    assert not logged_in(client)
    assert [event.comment for event in events("login_locked")] == [login_name]
    assert len(events("login_failed")) == 5


def test_lock_reads_the_same_for_an_existing_and_an_unknown_account(client, teacher):
    for login_name in ("teacher1", "nobody-here"):
        for _ in range(5):
            attempt(client, login_name, WRONG)

    known = attempt(client, "teacher1", PASSWORD)
    unknown = attempt(client, "nobody-here", PASSWORD)

    assert known.status_code == unknown.status_code == 429
    assert text(known) == text(unknown).replace("nobody-here", "teacher1")


def test_lock_holds_for_fifteen_minutes_then_ends(client, teacher, monkeypatch):
    for _ in range(5):
        attempt(client, "teacher1", WRONG)

    later(monkeypatch, 14)
    assert attempt(client, "teacher1", PASSWORD).status_code == 429

    later(monkeypatch, 16)
    assert attempt(client, "teacher1", PASSWORD).status_code == 302
    assert logged_in(client)


def test_attempts_during_a_lock_do_not_extend_it(client, teacher, monkeypatch):
    for _ in range(5):
        attempt(client, "teacher1", WRONG)
    for minutes in (5, 10, 14):
        later(monkeypatch, minutes)
        assert attempt(client, "teacher1", WRONG).status_code == 429

    later(monkeypatch, 16)
    assert attempt(client, "teacher1", PASSWORD).status_code == 302


def test_failures_older_than_the_window_are_forgotten(client, teacher, monkeypatch):
    for _ in range(4):
        attempt(client, "teacher1", WRONG)

    later(monkeypatch, 16)
    for _ in range(4):
        assert flashes(attempt(client, "teacher1", WRONG)) == [FAILED]

    assert attempt(client, "teacher1", PASSWORD).status_code == 302


def test_a_success_resets_the_account_counter(client, teacher):
    for _ in range(4):
        attempt(client, "teacher1", WRONG)
    assert attempt(client, "teacher1", PASSWORD).status_code == 302
    client.post("/logout")

    for _ in range(4):
        assert FAILED in flashes(attempt(client, "teacher1", WRONG))

    assert attempt(client, "teacher1", PASSWORD).status_code == 302


def test_twenty_failures_from_one_address_lock_that_address(client, teacher, other_teacher):
    for number in range(20):
        assert flashes(attempt(client, f"guess{number}", WRONG, address="192.0.2.50")) == [FAILED]

    from_there = attempt(client, "teacher1", PASSWORD, address="192.0.2.50")
    assert from_there.status_code == 429 and flashes(from_there) == [LOCKED]

    elsewhere = attempt(client, "teacher1", PASSWORD, address="192.0.2.51")
    assert elsewhere.status_code == 302


def test_successes_from_a_shared_address_do_not_count(client, make_user):
    for number in range(25):
        make_user(f"colleague{number}")
    db.session.commit()

    for number in range(25):
        response = attempt(client, f"colleague{number}", PASSWORD, address="192.0.2.60")
        assert response.status_code == 302
        client.post("/logout")

    assert attempt(client, "colleague0", PASSWORD, address="192.0.2.60").status_code == 302


def test_the_counter_is_shared_by_every_app_process(app, database, client, teacher, tmp_path):
    """A second app (its own engine and connections) sees the failures the first counted."""
    other = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": "test-secret",
            "UPLOAD_FOLDER": str(tmp_path / "other-uploads"),
            **database,
        }
    )
    other_client = other.test_client()

    for _ in range(3):
        attempt(client, "teacher1", WRONG)
    for _ in range(2):
        assert attempt(other_client, "teacher1", WRONG).status_code == 200

    assert attempt(client, "teacher1", PASSWORD).status_code == 429
    with other.app_context():
        db.engine.dispose()


def test_parallel_guesses_get_no_more_than_five_password_checks(app, teacher, monkeypatch):
    checks = []
    original = User.check_password

    def counted(self, password):
        checks.append(password)
        return original(self, password)

    monkeypatch.setattr(User, "check_password", counted)
    start = threading.Barrier(12)
    statuses = []

    def guess(number):
        client = app.test_client()
        start.wait()
        statuses.append(attempt(client, "teacher1", f"guess-{number:04d}").status_code)

    threads = [threading.Thread(target=guess, args=(number,)) for number in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(checks) <= 5
    assert sorted(statuses).count(429) >= 7
    assert attempt(app.test_client(), "teacher1", PASSWORD).status_code == 429


def test_old_counters_are_pruned(client, teacher, monkeypatch):
    attempt(client, "old-guess", WRONG, address="192.0.2.70")
    later(monkeypatch, 20)

    attempt(client, "new-guess", WRONG, address="192.0.2.71")

    subjects = set(db.session.scalars(sa.select(LoginThrottle.subject)))
    assert "old-guess" not in subjects and "192.0.2.70" not in subjects
    assert {"new-guess", "192.0.2.71"} <= subjects


def test_forwarded_address_is_ignored_without_a_trusted_proxy(client, teacher):
    attempt(
        client, "teacher1", PASSWORD, address="10.0.0.5", headers={"X-Forwarded-For": "1.2.3.4"}
    )

    [event] = events("login")
    assert event.remote_addr == "10.0.0.5"


def test_forwarded_address_is_used_behind_a_trusted_proxy(app, database, teacher, tmp_path):
    proxied = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": "test-secret",
            "UPLOAD_FOLDER": str(tmp_path / "proxied-uploads"),
            "TRUSTED_PROXY_COUNT": 1,
            **database,
        }
    )

    response = attempt(
        proxied.test_client(),
        "teacher1",
        PASSWORD,
        address="10.0.0.5",
        headers={"X-Forwarded-For": "1.2.3.4"},
    )

    assert response.status_code == 302
    [event] = events("login")
    assert event.remote_addr == "1.2.3.4"
    with proxied.app_context():
        db.engine.dispose()


# --- password rules and changing one's password ---------------------------------------------


class Person:
    login = "wang.teacher"
    name = "王小明"


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short-1", "密碼至少需要 10 個字元。"),
        ("1234567890123", "密碼不可全為數字。"),
        ("wang.teacher", "密碼不可與帳號或姓名相同。"),
        ("WANG.TEACHER", "密碼不可與帳號或姓名相同。"),
    ],
)
def test_password_rules(app, password, problem):
    assert problem in password_problems(password, Person())


def test_a_good_password_has_no_problems(app):
    assert password_problems("correct-horse-42", Person()) == []
    assert password_problems("correct-horse-42", None) == []


def test_create_user_applies_the_password_rules(app):
    runner = app.test_cli_runner()

    weak = runner.invoke(
        args=[
            "create-user",
            "clerk9",
            "--name",
            "王書記",
            "--role",
            "staff",
            "--password",
            "12345678",
        ]
    )
    assert weak.exit_code != 0
    assert "密碼至少需要 10 個字元。" in weak.output and "密碼不可全為數字。" in weak.output
    assert db.session.scalar(sa.select(User).where(User.login == "clerk9")) is None

    good = runner.invoke(
        args=[
            "create-user",
            "clerk9",
            "--name",
            "王書記",
            "--role",
            "staff",
            "--password",
            PASSWORD,
        ]
    )
    assert good.exit_code == 0, good.output
    db.session.expire_all()
    created = db.session.scalar(sa.select(User).where(User.login == "clerk9"))
    assert created.role is Role.staff and created.check_password(PASSWORD)


def change(client, current, new, again=None):
    return client.post(
        "/password",
        data={"current_password": current, "new_password": new, "confirm_password": again or new},
    )


def test_password_page_needs_a_login(client):
    response = client.get("/password")

    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_password_change(login, teacher):
    client = login(teacher)
    assert "變更密碼" in text(client.get("/password"))

    response = change(client, PASSWORD, "a-brand-new-secret")

    assert response.status_code == 302
    db.session.expire_all()
    assert teacher.check_password("a-brand-new-secret")
    assert [event.actor_id for event in events("password_changed")] == [teacher.id]
    client.post("/logout")
    assert attempt(client, "teacher1", PASSWORD).status_code == 200
    assert attempt(client, "teacher1", "a-brand-new-secret").status_code == 302


def test_a_new_password_ends_the_other_sessions(app, teacher):
    elsewhere, here = app.test_client(), app.test_client()
    for client in (elsewhere, here):
        client.post("/logout")
        assert attempt(client, teacher.login, PASSWORD).status_code == 302
    assert elsewhere.get("/apply").status_code == 200

    assert change(here, PASSWORD, "a-brand-new-secret").status_code == 302

    assert here.get("/apply").status_code == 200
    assert "/login" in elsewhere.get("/apply").headers["Location"]


def test_a_password_reset_by_staff_ends_the_teachers_sessions(app, teacher):
    teacher_client = app.test_client()
    assert attempt(teacher_client, teacher.login, PASSWORD).status_code == 302
    teacher.set_password("reset-by-the-centre")
    db.session.commit()

    assert "/login" in teacher_client.get("/apply").headers["Location"]


@pytest.mark.parametrize(
    ("current", "new", "again", "message"),
    [
        (WRONG, "a-brand-new-secret", None, "目前的密碼不正確。"),
        (PASSWORD, "a-brand-new-secret", "another-new-secret", "兩次輸入的新密碼不一致。"),
        (PASSWORD, "short", None, "密碼至少需要 10 個字元。"),
        (PASSWORD, "12345678901", None, "密碼不可全為數字。"),
        (PASSWORD, "teacher1", None, "密碼不可與帳號或姓名相同。"),
        (PASSWORD, PASSWORD, None, "新密碼不可與目前的密碼相同。"),
    ],
    ids=["wrong-current", "mismatch", "short", "digits", "login", "unchanged"],
)
def test_password_change_refusals(login, teacher, current, new, again, message):
    client = login(teacher)

    response = change(client, current, new, again)

    assert response.status_code == 200
    assert message in text(response)
    db.session.expire_all()
    assert teacher.check_password(PASSWORD)
    assert events("password_changed") == []


def test_guessing_the_current_password_is_throttled(login, teacher):
    client = login(teacher)
    for _ in range(5):
        change(client, WRONG, "a-brand-new-secret")

    response = change(client, PASSWORD, "a-brand-new-secret")

    assert response.status_code == 429 and LOCKED in flashes(response)
    db.session.expire_all()
    assert teacher.check_password(PASSWORD)


# --- cookies and the session ----------------------------------------------------------------


def session_cookie(response):
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


def test_session_cookie_is_httponly_and_lax(app, client, teacher):
    cookie = session_cookie(attempt(client, "teacher1", PASSWORD))

    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=8)


def test_cookies_are_secure_when_configured(database, teacher, tmp_path):
    secure = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": "test-secret",
            "UPLOAD_FOLDER": str(tmp_path / "secure-uploads"),
            "SESSION_COOKIE_SECURE": True,
            **database,
        }
    )

    cookie = session_cookie(attempt(secure.test_client(), "teacher1", PASSWORD))

    assert "Secure" in cookie and "HttpOnly" in cookie
    assert secure.config["REMEMBER_COOKIE_SECURE"] is True
    assert secure.config["REMEMBER_COOKIE_HTTPONLY"] is True
    with secure.app_context():
        db.engine.dispose()


def test_a_session_ends_eight_hours_after_it_was_written(client, teacher, monkeypatch):
    # from the address later requests come from, so that Flask-Login does not rewrite the session
    attempt(client, "teacher1", PASSWORD, address="127.0.0.1")
    assert logged_in(client)
    signed_at = itsdangerous.timed.TimestampSigner.get_timestamp

    monkeypatch.setattr(
        itsdangerous.timed.TimestampSigner,
        "get_timestamp",
        lambda self: signed_at(self) + 7 * 3600,
    )
    g.pop("_login_user", None)
    assert logged_in(client)

    monkeypatch.setattr(
        itsdangerous.timed.TimestampSigner,
        "get_timestamp",
        lambda self: signed_at(self) + 8 * 3600 + 60,
    )
    # the test's app context outlives requests; forget the user the earlier request loaded
    g.pop("_login_user", None)
    response = client.get("/profile")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- security headers -----------------------------------------------------------------------


def assert_security_headers(response):
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "object-src 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_headers_on_a_portal_page(login, teacher):
    response = login(teacher).get("/apply")

    assert response.status_code == 200
    assert_security_headers(response)


def test_headers_on_an_admin_page(login, staff):
    response = login(staff).get("/admin/")

    assert response.status_code == 200
    assert_security_headers(response)


def test_headers_on_the_login_page_and_an_error_page(client):
    assert_security_headers(client.get("/login"))
    assert_security_headers(client.get("/no-such-page"))


def test_headers_on_a_download(login, teacher, filled_case):
    document = db.session.scalar(sa.select(Document).where(Document.case_id == filled_case.id))

    response = login(teacher).get(f"/apply/document/{document.id}")

    assert response.status_code == 200
    assert_security_headers(response)
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.data.startswith(b"%PDF-")
