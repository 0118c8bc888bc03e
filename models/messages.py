"""What the candidate and reviewers are told: portal messages and the outgoing mail queue."""

import sqlalchemy as sa

from admin_app.extensions import db
from admin_app.i18n import _l, now_utc

from .case import Case
from .people import User
from .types import LabelledEnum, UTCDateTime, enum_column


class MailState(LabelledEnum):
    """Delivery state of one outgoing mail."""

    pending = "pending", _l("待寄送")
    sending = "sending", _l("寄送中")
    sent = "sent", _l("已寄出")
    failed = "failed", _l("寄送失敗")
    cancelled = "cancelled", _l("已取消")


class Notification(db.Model):
    """A message shown in a person's portal inbox; its text is the e-mail's text."""

    __tablename__ = "notification"

    id = sa.Column(sa.Integer, primary_key=True)
    user_id = sa.Column(sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    case_id = sa.Column(sa.ForeignKey("case.id", ondelete="CASCADE"), index=True)
    kind = sa.Column(sa.String(40), nullable=False)
    subject = sa.Column(sa.String(200), nullable=False)
    body = sa.Column(sa.Text, nullable=False)
    created_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    read_at = sa.Column(UTCDateTime)
    # the audit event that caused it, so that undoing that decision can withdraw it
    event_id = sa.Column(sa.ForeignKey("audit_event.id"), index=True)
    withdrawn_at = sa.Column(UTCDateTime)

    user = db.relationship(User)
    case = db.relationship(Case)

    __table_args__ = (sa.Index("ix_notification_user", "user_id", "created_at"),)


class OutgoingMail(db.Model):
    """One e-mail queued in the same transaction as its decision and delivered after commit."""

    __tablename__ = "outgoing_mail"

    id = sa.Column(sa.Integer, primary_key=True)
    notification_id = sa.Column(sa.ForeignKey("notification.id", ondelete="SET NULL"))
    case_id = sa.Column(sa.ForeignKey("case.id", ondelete="CASCADE"), index=True)
    event_id = sa.Column(sa.ForeignKey("audit_event.id"), index=True)
    kind = sa.Column(sa.String(40), nullable=False)
    recipient = sa.Column(sa.String(254), nullable=False)
    subject = sa.Column(sa.String(200), nullable=False)
    body = sa.Column(sa.Text, nullable=False)
    state = enum_column(MailState, "mail_state", nullable=False, default=MailState.pending)
    attempts = sa.Column(sa.Integer, nullable=False, default=0)
    last_error = sa.Column(sa.Text, nullable=False, default="")
    created_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    next_attempt_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    claimed_at = sa.Column(UTCDateTime)
    claimed_by = sa.Column(sa.String(80))
    sent_at = sa.Column(UTCDateTime)

    notification = db.relationship(Notification)
    case = db.relationship(Case)

    __table_args__ = (
        sa.Index("ix_outgoing_mail_due", "state", "next_attempt_at"),
        sa.CheckConstraint("state <> 'sent' OR sent_at IS NOT NULL", name="sent_has_time"),
    )
