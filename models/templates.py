"""Observation-record templates: staff-editable data, every edit a new version."""

import sqlalchemy as sa

from admin_app.extensions import db
from admin_app.i18n import _l, now_utc

from .people import User
from .types import LabelledEnum, UTCDateTime, enum_column


class RecordKind(LabelledEnum):
    """Which of the three online records a template is for."""

    pre_conference = "pre_conference", _l("觀察前會談紀錄表")
    observation = "observation", _l("觀察紀錄表")
    post_conference = "post_conference", _l("觀察後會談紀錄表")


class FormTemplate(db.Model):
    """A record template the candidate can choose (多擇一) for one record kind."""

    __tablename__ = "form_template"

    id = sa.Column(sa.Integer, primary_key=True)
    code = sa.Column(sa.String(40), nullable=False, unique=True)
    kind = enum_column(RecordKind, "record_kind", nullable=False)
    name = sa.Column(sa.String(100), nullable=False)
    description = sa.Column(sa.String(500), nullable=False, default="")
    active = sa.Column(sa.Boolean, nullable=False, default=True)
    sort_order = sa.Column(sa.Integer, nullable=False, default=0)

    versions = db.relationship(
        "FormTemplateVersion",
        back_populates="template",
        order_by="FormTemplateVersion.version",
        lazy="select",
    )

    def __str__(self):
        return self.name

    @property
    def current_version(self):
        """The newest version, the one new records are filled against."""
        return self.versions[-1] if self.versions else None


class FormTemplateVersion(db.Model):
    """One frozen field list of a template; records keep pointing at the version they used."""

    __tablename__ = "form_template_version"

    id = sa.Column(sa.Integer, primary_key=True)
    template_id = sa.Column(
        sa.ForeignKey("form_template.id", ondelete="CASCADE"), nullable=False, index=True
    )
    version = sa.Column(sa.Integer, nullable=False)
    fields = sa.Column(sa.JSON, nullable=False)
    created_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    created_by_id = sa.Column(sa.ForeignKey("user.id"))

    template = db.relationship(FormTemplate, back_populates="versions", lazy="joined")
    created_by = db.relationship(User)

    __table_args__ = (
        sa.UniqueConstraint("template_id", "version", name="uq_form_template_version"),
    )

    def __str__(self):
        return f"{self.template.name} 第 {self.version} 版"
