"""The application case, its uploaded documents and its filled observation records."""

import sqlalchemy as sa

from admin_app.extensions import db
from admin_app.i18n import _l, now_utc

from .cycle import Cycle
from .people import County, School, User
from .types import LabelledEnum, UTCDateTime, enum_column


class CaseState(LabelledEnum):
    """Where a case stands; the label is what the candidate sees (see DESIGN.md, Case states)."""

    draft = "draft", _l("填寫中")
    formal_review = "formal_review", _l("形式審查")
    returned = "returned", _l("形式審查退件")
    awaiting_assignment = "awaiting_assignment", _l("分發委員")
    under_review = "under_review", _l("委員審查中")
    awaiting_verdict = "awaiting_verdict", _l("判定")
    revision_requested = "revision_requested", _l("修正後複審")
    passed = "passed", _l("通過可產證")
    certified = "certified", _l("已發證")
    announced = "announced", _l("已公告")
    failed = "failed", _l("未通過（可申復）")
    appeal_filed = "appeal_filed", _l("申復申請中")
    appeal_review = "appeal_review", _l("申復審查中")
    closed = "closed", _l("未通過")


# what the candidate sees of a failed case whose appeal window has run out, until the daily
# close-appeal-windows job closes it
APPEAL_LAPSED_LABEL = _l("未通過（申復期限已過）")

# states whose label names the round: 初審分發委員, 複審判定, ...
ROUND_LABELS = {
    CaseState.awaiting_assignment: (_l("初審分發委員"), _l("複審分發委員")),
    CaseState.under_review: (_l("初審（委員審查中）"), _l("複審（委員審查中）")),
    CaseState.awaiting_verdict: (_l("初審判定"), _l("複審判定")),
}

# states in which the candidate may change documents and records
EDITABLE_STATES = (CaseState.draft, CaseState.returned, CaseState.revision_requested)


def state_label(state, round_):
    """The label the candidate sees for a state in a round."""
    if state in ROUND_LABELS:
        return ROUND_LABELS[state][0 if round_ == 1 else 1]
    return state.label


class ItemKind(LabelledEnum):
    """How an application item is provided."""

    upload = "upload", _l("上傳 PDF")
    record = "record", _l("線上填寫")


class ApplicationItem(LabelledEnum):
    """The six items of an application, in the order the candidate sees them."""

    public_teaching = "public_teaching", _l("公開授課實施證明")
    community = "community", _l("教師專業學習社群參與證明")
    pre_conference = "pre_conference", _l("觀察前會談紀錄表")
    observation = "observation", _l("觀察紀錄表")
    post_conference = "post_conference", _l("觀察後會談紀錄表")
    checklist = "checklist", _l("認證檢核表")

    @property
    def kind(self):
        """Uploads are stamped PDFs; the three conference/observation items are online forms."""
        if self in (self.pre_conference, self.observation, self.post_conference):
            return ItemKind.record
        return ItemKind.upload

    @property
    def number(self):
        """1-based position in the list the candidate sees."""
        return list(ApplicationItem).index(self) + 1


class DocumentKind(LabelledEnum):
    """What an uploaded PDF is: one of the three upload items or an appeal attachment."""

    public_teaching = "public_teaching", _l("公開授課實施證明")
    community = "community", _l("教師專業學習社群參與證明")
    checklist = "checklist", _l("認證檢核表")
    appeal = "appeal", _l("申復附件")


class Case(db.Model):
    """One candidate's application in one intake cycle, from draft to announcement."""

    __tablename__ = "case"

    id = sa.Column(sa.Integer, primary_key=True)
    cycle_id = sa.Column(sa.ForeignKey("cycle.id"), nullable=False)
    applicant_id = sa.Column(sa.ForeignKey("user.id"), nullable=False, index=True)
    # the applicant's school and county when the case was opened, for county spreadsheets
    school_id = sa.Column(sa.ForeignKey("school.id"), index=True)
    county_id = sa.Column(sa.ForeignKey("county.id"))
    state = enum_column(CaseState, "case_state", nullable=False, default=CaseState.draft)
    round = sa.Column(sa.SmallInteger, nullable=False, default=1)
    # bumped by every transition so that a stale read can never win a conditional update
    version = sa.Column(sa.Integer, nullable=False, default=1)
    created_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    updated_at = sa.Column(UTCDateTime, nullable=False, default=now_utc, onupdate=now_utc)
    submitted_at = sa.Column(UTCDateTime)
    state_changed_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    appeal_deadline = sa.Column(UTCDateTime)
    certificate_seq = sa.Column(sa.Integer)
    certificate_number = sa.Column(sa.String(60), unique=True)
    certified_at = sa.Column(UTCDateTime)
    announced_at = sa.Column(UTCDateTime)

    cycle = db.relationship(Cycle, lazy="joined")
    applicant = db.relationship(User, lazy="joined", foreign_keys=[applicant_id])
    school = db.relationship(School, foreign_keys=[school_id])
    county = db.relationship(County, foreign_keys=[county_id])

    __table_args__ = (
        sa.UniqueConstraint("cycle_id", "applicant_id", name="uq_case_cycle_applicant"),
        sa.UniqueConstraint("cycle_id", "certificate_seq", name="uq_case_cycle_seq"),
        sa.CheckConstraint("round IN (1, 2)", name="round_is_1_or_2"),
        sa.CheckConstraint(
            "(certificate_number IS NULL) = (certified_at IS NULL)", name="number_with_date"
        ),
        sa.CheckConstraint(
            "state NOT IN ('certified', 'announced') OR certificate_number IS NOT NULL",
            name="certified_has_number",
        ),
        sa.Index("ix_case_list", "cycle_id", "county_id", "state", "submitted_at"),
        sa.Index("ix_case_cycle_submitted", "cycle_id", "submitted_at"),
        sa.Index("ix_case_state", "state", "round"),
        # the work-queue counts and the certificate steps read one cycle's cases by state
        sa.Index("ix_case_cycle_state", "cycle_id", "state", "round"),
        # a county's spreadsheet reads its cases of a cycle in id order, a thousand at a time
        sa.Index("ix_case_county_export", "cycle_id", "county_id", "id"),
    )

    def __str__(self):
        return f"#{self.id} {self.applicant.name if self.applicant else ''}"

    @property
    def status_label(self):
        """What the candidate sees as the case's status."""
        if self.appeal_lapsed:
            return APPEAL_LAPSED_LABEL
        return state_label(self.state, self.round)

    @property
    def appeal_lapsed(self):
        """Failed, and the appeal deadline has passed (the case is not closed yet)."""
        return (
            self.state is CaseState.failed
            and self.appeal_deadline is not None
            and now_utc() > self.appeal_deadline
        )

    @property
    def is_editable(self):
        """Whether the candidate may change documents and records now."""
        return self.state in EDITABLE_STATES

    @property
    def edit_round(self):
        """The round new documents and records belong to: 2 once a revision is requested."""
        return 2 if self.state is CaseState.revision_requested else self.round

    def belongs_to(self, user):
        return user is not None and user.is_authenticated and self.applicant_id == user.id


class Document(db.Model):
    """An uploaded PDF, stored under a generated name; a new upload never overwrites an old one."""

    __tablename__ = "document"

    id = sa.Column(sa.Integer, primary_key=True)
    case_id = sa.Column(sa.ForeignKey("case.id", ondelete="CASCADE"), nullable=False)
    kind = enum_column(DocumentKind, "document_kind", nullable=False)
    round = sa.Column(sa.SmallInteger, nullable=False, default=1)
    original_name = sa.Column(sa.String(255), nullable=False)
    stored_name = sa.Column(sa.String(80), nullable=False, unique=True)
    size = sa.Column(sa.Integer, nullable=False)
    sha256 = sa.Column(sa.String(64), nullable=False)
    uploaded_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    uploaded_by_id = sa.Column(sa.ForeignKey("user.id"), nullable=False)
    # set when a later upload of the same item and round replaces this one for review
    superseded_at = sa.Column(UTCDateTime)

    case = db.relationship(Case, backref=db.backref("documents", lazy="select"))
    uploaded_by = db.relationship(User)

    __table_args__ = (
        sa.Index("ix_document_case", "case_id", "kind", "round"),
        sa.Index(
            "uq_document_current",
            "case_id",
            "kind",
            "round",
            unique=True,
            sqlite_where=sa.text("superseded_at IS NULL"),
            postgresql_where=sa.text("superseded_at IS NULL"),
        ),
        sa.CheckConstraint("size > 0", name="not_empty"),
    )


class FormEntry(db.Model):
    """A filled observation record, pinned to the template version it was filled against."""

    __tablename__ = "form_entry"

    id = sa.Column(sa.Integer, primary_key=True)
    case_id = sa.Column(sa.ForeignKey("case.id", ondelete="CASCADE"), nullable=False)
    item = enum_column(ApplicationItem, "form_entry_item", nullable=False)
    round = sa.Column(sa.SmallInteger, nullable=False, default=1)
    template_version_id = sa.Column(sa.ForeignKey("form_template_version.id"), nullable=False)
    data = sa.Column(sa.JSON, nullable=False, default=dict)
    created_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    updated_at = sa.Column(UTCDateTime, nullable=False, default=now_utc, onupdate=now_utc)
    updated_by_id = sa.Column(sa.ForeignKey("user.id"))

    case = db.relationship(Case, backref=db.backref("form_entries", lazy="select"))
    template_version = db.relationship("FormTemplateVersion", lazy="joined")

    __table_args__ = (
        sa.UniqueConstraint("case_id", "item", "round", name="uq_form_entry_case_item_round"),
        sa.CheckConstraint(
            "item IN ('pre_conference', 'observation', 'post_conference')", name="record_item"
        ),
    )
