"""Logging in and out."""

import logging

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from admin_app.extensions import db
from admin_app.i18n import _
from models import Role, User
from models.operations import record_event

from .forms import LoginForm

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
    if form.validate_on_submit():
        user = db.session.scalar(sa.select(User).where(User.login == form.login.data.strip()))
        if user is not None and user.active and user.check_password(form.password.data):
            login_user(user)
            record_event(None, "login", user)
            db.session.commit()
            log.info("login: %s", user.login)
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
        flash(_("帳號或密碼錯誤。"), "error")

    return render_template("auth/login.html", form=form)


@blueprint.route("/logout", methods=["POST"])
def logout():
    """Log out (a POST, so that a link elsewhere cannot log someone out)."""
    logout_user()
    flash(_("您已登出。"), "info")
    return redirect(url_for("auth.login"))


def _safe_next(target):
    """Only follow a `next` that stays on this site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None
