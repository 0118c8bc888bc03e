"""The Flask-Admin back office at /admin, for certification-centre staff and administrators.

Every page is staff-only (see `base.StaffAccess`), every form is a Flask-WTF form carrying the
CSRF token, and every Flask-Admin string comes from its zh_Hant_TW catalogue.
"""

import os

import sqlalchemy as sa
from flask import Blueprint
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.theme import Bootstrap4Theme

from admin_app.extensions import db
from admin_app.i18n import _l, reword_flask_admin
from models import (
    AuditEvent,
    Case,
    CaseState,
    County,
    Cycle,
    Document,
    FormTemplate,
    OutgoingMail,
    School,
    TrainingRecord,
    User,
    state_label,
)
from models.application import current_cycle

from .. import spreadsheets_admin
from .base import StaffAccess
from .cases import CaseView
from .certificates import CertificateView
from .mail import NotifyPreviewView, OutgoingMailView
from .people import CountyView, SchoolView, TrainingRecordView, UserView
from .records import AuditEventView, DocumentView
from .settings import CycleView, FormTemplateView

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = _l("審查作業")
PEOPLE = _l("人員與學校")
SETTINGS = _l("認證設定")
SYSTEM = _l("系統")


class StaffIndexView(StaffAccess, AdminIndexView):
    """The back office's front page: the current cycle's cases by status."""

    @expose("/")
    def index(self):
        cycle = current_cycle()
        counts = []
        if cycle is not None:
            rows = db.session.execute(
                sa.select(Case.state, Case.round, sa.func.count())
                .where(Case.cycle_id == cycle.id)
                .group_by(Case.state, Case.round)
            ).all()
            found = {(state, round_): count for state, round_, count in rows}
            counts = [
                (state, round_, state_label(state, round_), found[(state, round_)])
                for state in CaseState
                for round_ in (1, 2)
                if (state, round_) in found
            ]
        return self.render("admin/index.html", cycle=cycle, counts=counts)


def init_admin(app):
    """Attach the back office at /admin."""
    reword_flask_admin()
    admin = Admin(
        app,
        name="認證中心後台",
        index_view=StaffIndexView(name=_l("後台首頁"), url="/admin"),
        theme=Bootstrap4Theme(
            base_template="admin/staff_base.html", swatch=app.config["FLASK_ADMIN_SWATCH"]
        ),
    )
    views = [
        CaseView(Case, name=_l("案件"), endpoint="case", category=CASES),
        CertificateView(
            name=_l("發證與公告"), endpoint="certificates", url="certificates", category=CASES
        ),
        DocumentView(Document, name=_l("上傳文件"), endpoint="document", category=CASES),
        UserView(User, name=_l("使用者"), endpoint="user", category=PEOPLE),
        SchoolView(School, name=_l("學校"), endpoint="school", category=PEOPLE),
        CountyView(County, name=_l("縣市"), endpoint="county", category=PEOPLE),
        TrainingRecordView(
            TrainingRecord, name=_l("研習時數"), endpoint="training", category=PEOPLE
        ),
        CycleView(Cycle, name=_l("認證梯次"), endpoint="cycle", category=SETTINGS),
        FormTemplateView(
            FormTemplate, name=_l("紀錄表範本"), endpoint="template", category=SETTINGS
        ),
        AuditEventView(AuditEvent, name=_l("稽核紀錄"), endpoint="audit", category=SYSTEM),
        OutgoingMailView(OutgoingMail, name=_l("寄件紀錄"), endpoint="mail", category=SYSTEM),
        NotifyPreviewView(
            name=_l("通知範本預覽"),
            endpoint="notify_preview",
            url="notify-preview",
            category=SYSTEM,
        ),
    ]
    for view in views:
        admin.add_view(view)
    spreadsheets_admin.register(admin)

    app.register_blueprint(
        Blueprint(
            "staff_assets",
            __name__,
            static_folder=os.path.join(HERE, "static"),
            static_url_path="/admin/assets",
        )
    )
    return admin
