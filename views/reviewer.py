"""Pages for committee reviewers: their assigned cases and review forms."""

from flask import Blueprint

blueprint = Blueprint("reviewer", __name__, url_prefix="/review")
