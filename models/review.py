"""Committee review: assignments, reviews, verdicts and appeals."""

import sqlalchemy as sa

from admin_app.extensions import db
from admin_app.i18n import _l, now_utc

from .case import Case, Document
from .people import User
from .types import LabelledEnum, UTCDateTime, enum_column


class Decision(LabelledEnum):
    """A verdict or a reviewer's recommendation."""

    passed = "passed", _l("通過")
    passed_after_revision = "passed_after_revision", _l("修正後通過")
    revise_and_review = "revise_and_review", _l("修正後複審")
    failed = "failed", _l("未通過")


# the decisions open in each round
ROUND_DECISIONS = {
    1: (
        Decision.passed,
        Decision.passed_after_revision,
        Decision.revise_and_review,
        Decision.failed,
    ),
    2: (Decision.passed, Decision.failed),
}


class ReviewAssignment(db.Model):
    """A committee member asked to review one case in one round."""

    __tablename__ = "review_assignment"

    id = sa.Column(sa.Integer, primary_key=True)
    case_id = sa.Column(sa.ForeignKey("case.id", ondelete="CASCADE"), nullable=False)
    round = sa.Column(sa.SmallInteger, nullable=False)
    reviewer_id = sa.Column(sa.ForeignKey("user.id"), nullable=False, index=True)
    assigned_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    assigned_by_id = sa.Column(sa.ForeignKey("user.id"))
    due_at = sa.Column(UTCDateTime)
    reminded_at = sa.Column(UTCDateTime)
    # the review's content, kept as a draft until submitted_at is set
    item_results = sa.Column(sa.JSON, nullable=False, default=dict)
    overall_comment = sa.Column(sa.Text, nullable=False, default="")
    recommendation = enum_column(Decision, "review_recommendation")
    submitted_at = sa.Column(UTCDateTime)

    case = db.relationship(Case, backref=db.backref("assignments", lazy="select"))
    reviewer = db.relationship(User, foreign_keys=[reviewer_id])

    __table_args__ = (
        sa.UniqueConstraint("case_id", "round", "reviewer_id", name="uq_assignment_reviewer"),
        sa.Index("ix_review_assignment_case", "case_id", "round"),
        sa.CheckConstraint(
            "submitted_at IS NULL OR recommendation IS NOT NULL", name="submitted_has_verdict"
        ),
    )


class Verdict(db.Model):
    """Staff's decision on a round; an undone verdict stays on record with its reason."""

    __tablename__ = "verdict"

    id = sa.Column(sa.Integer, primary_key=True)
    case_id = sa.Column(sa.ForeignKey("case.id", ondelete="CASCADE"), nullable=False)
    round = sa.Column(sa.SmallInteger, nullable=False)
    decision = enum_column(Decision, "verdict_decision", nullable=False)
    comment = sa.Column(sa.Text, nullable=False, default="")
    decided_by_id = sa.Column(sa.ForeignKey("user.id"), nullable=False)
    decided_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    # the transition's audit event, so that undoing the verdict can withdraw what it sent
    event_id = sa.Column(sa.ForeignKey("audit_event.id"))
    undone_at = sa.Column(UTCDateTime)
    undone_by_id = sa.Column(sa.ForeignKey("user.id"))
    undo_reason = sa.Column(sa.Text)

    case = db.relationship(Case, backref=db.backref("verdicts", lazy="select"))
    decided_by = db.relationship(User, foreign_keys=[decided_by_id])
    undone_by = db.relationship(User, foreign_keys=[undone_by_id])

    __table_args__ = (
        sa.Index("ix_verdict_case", "case_id", "round"),
        sa.CheckConstraint(
            "(undone_at IS NULL AND undone_by_id IS NULL AND undo_reason IS NULL) OR "
            "(undone_at IS NOT NULL AND undone_by_id IS NOT NULL AND undo_reason IS NOT NULL)",
            name="undo_complete",
        ),
    )


class AppealOutcome(LabelledEnum):
    """Where an appeal stands."""

    filed = "filed", _l("申復申請中")
    accepted = "accepted", _l("已受理")
    not_accepted = "not_accepted", _l("未受理")
    upheld = "upheld", _l("申復成立")
    dismissed = "dismissed", _l("申復不成立")


class Appeal(db.Model):
    """A failed candidate's appeal (申復), with an optional PDF attachment."""

    __tablename__ = "appeal"

    id = sa.Column(sa.Integer, primary_key=True)
    case_id = sa.Column(sa.ForeignKey("case.id", ondelete="CASCADE"), nullable=False, unique=True)
    reason = sa.Column(sa.Text, nullable=False)
    document_id = sa.Column(sa.ForeignKey("document.id"))
    filed_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    outcome = enum_column(AppealOutcome, "appeal_outcome", nullable=False)
    decided_by_id = sa.Column(sa.ForeignKey("user.id"))
    decided_at = sa.Column(UTCDateTime)
    comment = sa.Column(sa.Text, nullable=False, default="")

    case = db.relationship(Case, backref=db.backref("appeal", uselist=False))
    document = db.relationship(Document)
    decided_by = db.relationship(User, foreign_keys=[decided_by_id])

    __table_args__ = (
        sa.CheckConstraint(
            "outcome = 'filed' OR (decided_by_id IS NOT NULL AND decided_at IS NOT NULL)",
            name="decided_has_decider",
        ),
    )
