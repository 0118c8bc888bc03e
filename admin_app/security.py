"""Login sessions, cookies, role checks, password rules and the headers every response carries."""

import functools
import hmac

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from .extensions import db, login_manager
from .i18n import _, _l

PASSWORD_MIN_LENGTH = 10

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)


def init_app(app):
    """Wire Flask-Login, cookie settings, the proxy rule and the response headers into the app."""
    if app.config.get("REMEMBER_COOKIE_SECURE") is None:
        app.config["REMEMBER_COOKIE_SECURE"] = bool(app.config.get("SESSION_COOKIE_SECURE"))
    proxies = int(app.config.get("TRUSTED_PROXY_COUNT") or 0)
    if proxies > 0:
        # only then may X-Forwarded-For name the client (audit trail, login throttling)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)

    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("請先登入。")
    login_manager.login_message_category = "warning"

    @login_manager.user_loader
    def load_user(user_id):
        from models import User

        number, _dot, stamp = str(user_id).partition(".")
        if not number.isdigit():
            return None
        user = db.session.get(User, int(number))
        if user is None or not user.active:
            return None
        # a session opened before the password last changed has another stamp
        return user if hmac.compare_digest(stamp, user.session_stamp()) else None

    @app.after_request
    def add_security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def roles_required(*roles):
    """Decorator: the view is for logged-in users with one of these roles; others get 403."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                flash(login_manager.login_message, "warning")
                return redirect(url_for("auth.login", next=request.full_path))
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def password_problems(password, user=None):
    """What is wrong with a new password, as messages for the person choosing it (empty: fine).

    `user` is the account it is for (anything with `login` and `name`), or None.
    """
    problems = []
    password = password or ""
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(_("密碼至少需要 %(count)s 個字元。", count=PASSWORD_MIN_LENGTH))
    if password.isdigit():
        problems.append(_("密碼不可全為數字。"))
    if user is not None:
        folded = password.strip().casefold()
        names = {
            (getattr(user, attribute, "") or "").strip().casefold()
            for attribute in ("login", "name")
        }
        if folded and folded in names:
            problems.append(_("密碼不可與帳號或姓名相同。"))
    return problems
