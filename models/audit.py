"""The audit trail people read: who did what to which case, when, and from where.

Every kind of event has a Chinese name for the people who read the trail. A state change is
named by its action in `operations.TRANSITIONS`; everything else that is recorded (with
`operations.record_event`) is named in `EVENT_LABELS` below, and recording a kind of event that
is not named there is refused.
"""

import sqlalchemy as sa

from admin_app.extensions import db
from admin_app.i18n import _l, now_utc

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


@sa.event.listens_for(AuditEvent, "before_update")
@sa.event.listens_for(AuditEvent, "before_delete")
def _refuse_changing_the_trail(mapper, connection, event):
    # whatever page or command tries it, the trail only grows
    raise ValueError(f"audit event {event.id} may not be changed or deleted")


# audited actions that are not state changes, as a clerk reads them
EVENT_LABELS = {
    # the candidate's own work on a case
    "open_case": _l("建立申請案"),
    "upload_document": _l("上傳文件"),
    "save_record": _l("儲存紀錄表"),
    # the committee
    "submit_review": _l("委員送出審查意見"),
    # logging in and out, and passwords (the comment of a failed login is the login typed)
    "login": _l("登入"),
    "login_failed": _l("登入失敗"),
    "login_locked": _l("登入遭鎖定（失敗次數過多）"),
    "logout": _l("登出"),
    "password_changed": _l("變更密碼"),
    "password_change_failed": _l("變更密碼失敗（目前的密碼不正確）"),
    # the back office
    "create_account": _l("建立帳號"),
    "update_account": _l("修改帳號"),
    "create_record": _l("新增資料"),
    "update_record": _l("修改資料"),
    "delete_record": _l("刪除資料"),
    "request_export": _l("匯出報表"),
    "import_training": _l("匯入研習時數"),
    "import_accounts": _l("匯入帳號"),
    "resend_mail": _l("重新寄送郵件"),
}


def action_label(action):
    """The Chinese name of an audited action; one recorded before it had a name, as recorded."""
    from .operations import TRANSITIONS

    if action in TRANSITIONS:
        return str(TRANSITIONS[action].label)
    if action in EVENT_LABELS:
        return str(EVENT_LABELS[action])
    return action


def every_action():
    """Every kind of event the trail can hold, state changes first: (name, Chinese name)."""
    from .operations import TRANSITIONS

    names = [*TRANSITIONS, *(name for name in EVENT_LABELS if name not in TRANSITIONS)]
    return [(name, action_label(name)) for name in names]
