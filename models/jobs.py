"""Background jobs: long work (a workbook of 100,000 rows, a large import) recorded as a row.

A request only adds a `Job` and returns; a worker process (`flask --app admin_app run-jobs`) or a
thread of the web process runs it (see `admin_app.jobs`). The row carries what to do, how far
the work has got, and where the result file is, so that any app process can show the progress
page and serve the file.
"""

import sqlalchemy as sa

from admin_app.extensions import db
from admin_app.i18n import _l, now_utc

from .people import User
from .types import LabelledEnum, UTCDateTime, enum_column


class JobState(LabelledEnum):
    """Where a job stands."""

    queued = "queued", _l("排隊中")
    running = "running", _l("處理中")
    done = "done", _l("已完成")
    failed = "failed", _l("失敗")


class Job(db.Model):
    """One piece of background work, its progress and its result."""

    __tablename__ = "job"

    id = sa.Column(sa.Integer, primary_key=True)
    # what to run: a name registered in admin_app.jobs, e.g. "export_cases"
    kind = sa.Column(sa.String(40), nullable=False)
    parameters = sa.Column(sa.JSON, nullable=False, default=dict)
    state = enum_column(JobState, "job_state", nullable=False, default=JobState.queued)
    progress_done = sa.Column(sa.Integer, nullable=False, default=0)
    progress_total = sa.Column(sa.Integer)
    # the result file, relative to the jobs folder in the instance folder, and its download name
    result_path = sa.Column(sa.String(255))
    result_name = sa.Column(sa.String(255))
    # a summary of what the job found or did (import previews: counts and row errors)
    summary = sa.Column(sa.JSON)
    error = sa.Column(sa.Text)
    created_by_id = sa.Column(sa.ForeignKey("user.id"), nullable=False, index=True)
    created_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)
    started_at = sa.Column(UTCDateTime)
    # touched on every progress report, so that a job whose process died can be taken over
    heartbeat_at = sa.Column(UTCDateTime)
    finished_at = sa.Column(UTCDateTime)
    attempts = sa.Column(sa.Integer, nullable=False, default=0)
    worker = sa.Column(sa.String(100))

    created_by = db.relationship(User, lazy="joined")

    __table_args__ = (
        sa.Index("ix_job_state", "state", "created_at"),
        sa.CheckConstraint("progress_done >= 0", name="progress_not_negative"),
        sa.CheckConstraint(
            "state <> 'done' OR finished_at IS NOT NULL", name="done_has_finish_time"
        ),
    )

    def __str__(self):
        return f"#{self.id} {self.kind}"

    @property
    def is_finished(self):
        return self.state in (JobState.done, JobState.failed)

    @property
    def percent(self):
        """Progress in whole percent, or None while the amount of work is unknown."""
        if self.state is JobState.done:
            return 100
        if not self.progress_total:
            return None
        return min(100, int(self.progress_done * 100 / self.progress_total))

    def may_be_seen_by(self, user):
        """Only the person who started a job, or staff, may see it and fetch its file."""
        if user is None or not user.is_authenticated:
            return False
        return user.is_staff or self.created_by_id == user.id
