"""Logging in and out, and changing one's own password.

Every login, failed login, refused login (too many failures) and logout is written to the audit
trail with the client's address. Failed logins are counted per login name and per address in
`models.login_throttle`; the messages never tell whether an account exists.
"""

import functools
import logging
import secrets

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from admin_app.extensions import db
from admin_app.i18n import _
from admin_app.security import password_problems
from models import Role, User, login_throttle
from models.operations import record_event

from .forms import LoginForm, PasswordChangeForm

log = logging.getLogger(__name__)
blueprint = Blueprint("auth", __name__)


def home_for(user):
    """Where each role lands after logging in."""
    if user.role in (Role.staff, Role.admin):
        return url_for("admin.index")
    if user.role is Role.reviewer:
        return url_for("reviewer.index")
    if user.role is Role.county_officer:
        return url_for("county_centre.index")
    return url_for("portal.home")


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    """The login page for every role."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))

    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form)

    login_name = form.login.data.strip()
    attempt = login_throttle.begin_attempt(login_name, request.remote_addr)
    # committed before the (slow) password check, so that every app process counts it at once
    db.session.commit()
    if attempt.locked:
        record_event(None, "login_locked", None, comment=login_name)
        db.session.commit()
        log.warning("login refused, too many failures: %s from %s", login_name, request.remote_addr)
        _flash_locked()
        return render_template("auth/login.html", form=form), 429

    user = _authenticate(login_name, form.password.data)
    if user is None:
        attempt.failed()
        record_event(None, "login_failed", None, comment=login_name)
        db.session.commit()
        log.info("login failed: %s from %s", login_name, request.remote_addr)
        flash(_("帳號或密碼錯誤。"), "error")
        return render_template("auth/login.html", form=form)

    attempt.succeeded()
    login_user(user)
    record_event(None, "login", user)
    db.session.commit()
    log.info("login: %s from %s", user.login, request.remote_addr)
    return redirect(_safe_next(request.args.get("next")) or home_for(user))


@blueprint.route("/logout", methods=["POST"])
def logout():
    """Log out (a POST, so that a link elsewhere cannot log someone out)."""
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        record_event(None, "logout", user)
        db.session.commit()
        log.info("logout: %s", user.login)

    logout_user()
    flash(_("您已登出。"), "info")
    return redirect(url_for("auth.login"))


@blueprint.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    """變更密碼: the current password, then the new one twice, checked against the rules."""
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return render_template("auth/password.html", form=form)

    user = current_user._get_current_object()
    status = _check_current_password(form, user)
    if status is not None:
        return render_template("auth/password.html", form=form), status

    problems = password_problems(form.new_password.data, user)
    if form.new_password.data == form.current_password.data:
        problems.append(_("新密碼不可與目前的密碼相同。"))
    if problems:
        form.new_password.errors.extend(problems)
        return render_template("auth/password.html", form=form)

    user.set_password(form.new_password.data)
    record_event(None, "password_changed", user)
    db.session.commit()
    # the new password ends every other session; this one carries on under the new stamp
    login_user(user)
    log.info("password changed: %s", user.login)
    flash(_("密碼已變更，下次登入請使用新密碼。"), "success")
    return redirect(home_for(user))


def _check_current_password(form, user):
    """Check the current password, counted like a login; an HTTP status if it is refused."""
    attempt = login_throttle.begin_attempt(user.login, request.remote_addr)
    db.session.commit()
    if attempt.locked:
        _flash_locked()
        return 429

    if not user.check_password(form.current_password.data):
        attempt.failed()
        record_event(None, "password_change_failed", user)
        db.session.commit()
        log.info("password change refused, wrong current password: %s", user.login)
        form.current_password.errors.append(_("目前的密碼不正確。"))
        return 200

    attempt.succeeded()
    return None


def _authenticate(login_name, password):
    """The active account with this login and password, or None."""
    user = db.session.scalar(sa.select(User).where(User.login == login_name))
    if user is None:
        # as slow as a real check, so that the timing does not tell which accounts exist
        check_password_hash(_stand_in_hash(), password)
        return None
    if not user.check_password(password) or not user.active:
        return None
    return user


@functools.cache
def _stand_in_hash():
    return generate_password_hash(secrets.token_hex(16))


def _flash_locked():
    flash(
        _(
            "登入失敗次數過多，請 %(minutes)s 分鐘後再試。",
            minutes=current_app.config["LOGIN_LOCK_MINUTES"],
        ),
        "error",
    )


def _safe_next(target):
    """Only follow a `next` that stays on this site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None
