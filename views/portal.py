"""The teacher portal: profile, eligibility, the six items, submission and the flow chart."""

from flask import Blueprint, render_template
from flask_login import login_required

blueprint = Blueprint("portal", __name__)


@blueprint.route("/")
@login_required
def home():
    """The portal's start page."""
    return render_template("portal/home.html")


@blueprint.route("/profile")
@login_required
def profile():
    """個人資料."""
    return render_template("portal/home.html")
