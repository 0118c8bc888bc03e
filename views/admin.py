"""The Flask-Admin back office for staff and administrators."""

from flask import abort, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_login import current_user


class StaffIndexView(AdminIndexView):
    """The back office's front page, for staff and administrators only."""

    def is_accessible(self):
        return current_user.is_authenticated and current_user.is_staff

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)

    @expose("/")
    def index(self):
        return self.render("admin/index.html")


def init_admin(app):
    """Attach the back office at /admin."""
    admin = Admin(app, name="認證中心後台", index_view=StaffIndexView(url="/admin"))
    return admin
