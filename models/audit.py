"""The audit trail people read: who did what to which case, when, and from where."""

import sqlalchemy as sa

from admin_app.extensions import db
from admin_app.i18n import now_utc

from .case import Case, CaseState
from .people import User
from .types import UTCDateTime, enum_column


class AuditEvent(db.Model):
    """One recorded action; rows are only ever added, never changed or deleted."""

    __tablename__ = "audit_event"

    id = sa.Column(sa.Integer, primary_key=True)
    created_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    actor_id = sa.Column(sa.ForeignKey("user.id"))
    case_id = sa.Column(sa.ForeignKey("case.id", ondelete="CASCADE"))
    action = sa.Column(sa.String(40), nullable=False)
    from_state = enum_column(CaseState, "audit_from_state")
    to_state = enum_column(CaseState, "audit_to_state")
    round = sa.Column(sa.SmallInteger)
    comment = sa.Column(sa.Text, nullable=False, default="")
    # whether the candidate sees the comment (formal-review and verdict comments)
    comment_public = sa.Column(sa.Boolean, nullable=False, default=False)
    remote_addr = sa.Column(sa.String(45))

    actor = db.relationship(User, lazy="joined")
    case = db.relationship(Case, backref=db.backref("events", lazy="select"))

    __table_args__ = (sa.Index("ix_audit_event_case", "case_id", "created_at"),)
