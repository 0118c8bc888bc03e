"""Running background jobs: claim one atomically, run it, record its progress and its result.

A page that starts long work calls `enqueue`, commits, then `start`. Any number of processes may
try to run the same job: `claim` is one conditional UPDATE (`... WHERE state = 'queued'`), so
exactly one of them gets it. Jobs run in one of two places:

- a worker process, `flask --app admin_app run-jobs --loop` (production: one or more of them);
- a thread of the web process that enqueued the job, when `JOBS_IN_PROCESS` is on (the default,
  so that the zero-setup development server needs nothing else running). A job whose process
  dies stops sending heartbeats and is taken over by the next claim after `JOB_STALE_MINUTES`.

A handler receives a `JobContext`: the job, a progress reporter, and a path to write its result
file to. It returns a `JobResult` or raises `JobFailed` with a message for the person who asked.
The handler's database work and the job's final state are committed together.

Result files live in the jobs folder of the instance folder (shared storage when several app
machines serve the site) and are removed after `JOB_RESULT_DAYS`.
"""

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from .extensions import db
from .i18n import _, now_utc

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# how often a progress page reloads itself
REFRESH_SECONDS = 3
# a queued job nobody has claimed after this long is started again by its progress page
UNCLAIMED_SECONDS = 15
# at most one progress write per this many seconds, besides the first and the last
PROGRESS_INTERVAL = 1.0


class JobFailed(Exception):
    """Work that cannot be done; the message is for the person who asked for it."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = str(message)


@dataclass
class JobResult:
    """What a handler hands back: the download name of its file and a summary to show."""

    name: str | None = None
    summary: dict | None = None


@dataclass
class JobContext:
    """What a handler works with."""

    job: object
    progress: object
    folder: str
    outputs: list = field(default_factory=list)

    def output_path(self, suffix):
        """A path to write the result file to; it is kept only if the job succeeds."""
        name = f"{self.job.id}-{uuid.uuid4().hex}{suffix}"
        self.outputs.append(name)
        return os.path.join(self.folder, name + ".part")


class NullProgress:
    """Progress reporting for work run outside a job (CLI, tests, benchmarks)."""

    def start(self, total):
        self.total = total

    def step(self, count=1):
        pass


class Progress:
    """Reports a job's progress on a connection of its own, so others see it at once."""

    def __init__(self, job_id):
        self.job_id = job_id
        self.done = 0
        self.total = None
        self._written_at = 0.0

    def start(self, total):
        self.total = total
        self.done = 0
        self._write(force=True)

    def step(self, count=1):
        self.done += count
        self._write(force=self.total is not None and self.done >= self.total)

    def _write(self, force=False):
        moment = time.monotonic()
        if not force and moment - self._written_at < PROGRESS_INTERVAL:
            return
        self._written_at = moment
        _update_job(
            self.job_id,
            progress_done=self.done,
            progress_total=self.total,
            heartbeat_at=now_utc(),
        )


def _update_job(job_id, **values):
    """Write job columns in a short transaction of their own."""
    from models import Job

    with db.engine.begin() as connection:
        connection.execute(sa.update(Job).where(Job.id == job_id).values(**values))


def _handlers():
    """The kinds of job and the functions that run them."""
    from exports import imports, spreadsheets

    return {
        "export": spreadsheets.run_export_job,
        "import_preview": imports.run_preview_job,
        "import_apply": imports.run_apply_job,
    }


def jobs_folder(app=None):
    """Where result files and uploaded import files are kept."""
    app = app or current_app
    folder = app.config.get("JOBS_FOLDER") or os.path.join(app.instance_path, "jobs")
    os.makedirs(folder, exist_ok=True)
    return folder


def result_file(job):
    """The absolute path of a finished job's result file, or None if it has none (any more)."""
    if not job.result_path:
        return None
    folder = os.path.realpath(jobs_folder())
    path = os.path.realpath(os.path.join(folder, job.result_path))
    if os.path.dirname(path) != folder or not os.path.isfile(path):
        return None
    return path


def enqueue(kind, parameters, user):
    """Record a job to be run; the caller commits, then calls `start`."""
    from models import Job, JobState

    if kind not in _handlers():
        raise ValueError(f"unknown job kind {kind!r}")
    job = Job(kind=kind, parameters=parameters, state=JobState.queued, created_by_id=user.id)
    db.session.add(job)
    db.session.flush()
    log.info("job %s (%s) queued by %s", job.id, kind, user.login)
    return job


def start(job):
    """Run a committed job in a thread of this process when so configured; returns the thread."""
    app = current_app._get_current_object()
    if not app.config.get("JOBS_IN_PROCESS", True):
        return None
    thread = threading.Thread(
        target=_run_in_thread, args=(app, job.id), name=f"job-{job.id}", daemon=True
    )
    thread.start()
    return thread


def nudge(job):
    """From a progress page: run here a job no process has picked up (e.g. after a restart)."""
    from models import JobState

    if not current_app.config.get("JOBS_IN_PROCESS", True):
        return None
    moment = now_utc()
    waiting = job.state is JobState.queued and job.created_at < moment - timedelta(
        seconds=UNCLAIMED_SECONDS
    )
    abandoned = (
        job.state is JobState.running
        and job.heartbeat_at is not None
        and job.heartbeat_at < _stale_before()
    )
    return start(job) if waiting or abandoned else None


def _run_in_thread(app, job_id):
    with app.app_context():
        try:
            run(job_id)
        except Exception:
            log.exception("job %s: the runner itself failed", job_id)


def _stale_before():
    minutes = current_app.config.get("JOB_STALE_MINUTES", 10)
    return now_utc() - timedelta(minutes=minutes)


def _claimable():
    """The condition a job must meet to be taken: queued, or running but abandoned."""
    from models import Job, JobState

    return sa.or_(
        Job.state == JobState.queued,
        sa.and_(
            Job.state == JobState.running,
            Job.heartbeat_at < _stale_before(),
            Job.attempts < MAX_ATTEMPTS,
        ),
    )


def claim(job_id):
    """Take a job for this process; False if another process has it or it is finished."""
    from models import Job, JobState

    moment = now_utc()
    worker = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:100]
    with db.engine.begin() as connection:
        result = connection.execute(
            sa.update(Job)
            .where(Job.id == job_id, _claimable())
            .values(
                state=JobState.running,
                started_at=moment,
                heartbeat_at=moment,
                attempts=Job.attempts + 1,
                worker=worker,
                error=None,
            )
        )
    return result.rowcount == 1


def run(job_id):
    """Claim and run one job in a session of its own; returns its final state, or None.

    None means the job was not claimed here (another process runs it, or it is finished).
    """
    app = current_app._get_current_object()
    # a new app context gives the job a session of its own, apart from the caller's
    with app.app_context():
        if not claim(job_id):
            return None
        return _execute(job_id)


def _execute(job_id):
    from models import Job, JobState

    job = db.session.get(Job, job_id)
    handler = _handlers().get(job.kind)
    folder = jobs_folder()
    context = JobContext(job=job, progress=Progress(job_id), folder=folder)
    started = time.monotonic()
    try:
        if handler is None:
            raise JobFailed(_("無法執行的工作類型。"))
        result = handler(context)
        kept = _keep_outputs(context)
        _finish(job_id, JobState.done, result_path=kept, result=result)
        db.session.commit()
    except JobFailed as failure:
        db.session.rollback()
        _discard_outputs(context)
        _finish(job_id, JobState.failed, error=failure.message)
        db.session.commit()
        log.info("job %s (%s) refused: %s", job_id, job.kind, failure.message)
        return JobState.failed
    except sa.exc.IntegrityError:
        # another job or person changed the same rows at the same moment (e.g. two imports)
        db.session.rollback()
        _discard_outputs(context)
        log.warning("job %s (%s) collided with a concurrent change", job_id, job.kind)
        message = _("資料剛被其他作業同時修改，沒有寫入任何資料。請重新上傳預覽後再試。")
        _finish(job_id, JobState.failed, error=message)
        db.session.commit()
        return JobState.failed
    except Exception:
        db.session.rollback()
        _discard_outputs(context)
        log.exception("job %s (%s) failed", job_id, job.kind)
        _finish(
            job_id,
            JobState.failed,
            error=_("處理時發生錯誤，請稍後再試；若一再發生請洽系統管理員。"),
        )
        db.session.commit()
        return JobState.failed

    log.info("job %s (%s) done in %.1f s", job_id, job.kind, time.monotonic() - started)
    return JobState.done


def _finish(job_id, state, result_path=None, result=None, error=None):
    """Record the job's outcome in the handler's own transaction, committed with its work."""
    from models import Job

    values = {"state": state, "finished_at": now_utc(), "heartbeat_at": now_utc(), "error": error}
    if result is not None:
        values.update(result_path=result_path, result_name=result.name, summary=result.summary)
    db.session.execute(
        sa.update(Job).where(Job.id == job_id).values(**values),
        execution_options={"synchronize_session": False},
    )


def _keep_outputs(context):
    """Move the finished result file into place; returns its name in the jobs folder."""
    kept = None
    for name in context.outputs:
        partial = os.path.join(context.folder, name + ".part")
        if os.path.exists(partial):
            os.replace(partial, os.path.join(context.folder, name))
            kept = name
    return kept


def _discard_outputs(context):
    for name in context.outputs:
        for path in (
            os.path.join(context.folder, name + ".part"),
            os.path.join(context.folder, name),
        ):
            if os.path.exists(path):
                os.remove(path)


def run_pending(limit=None):
    """Run queued (and abandoned) jobs one after another; returns how many ran here."""
    from models import Job

    fail_abandoned()
    ran = 0
    while limit is None or ran < limit:
        job_id = db.session.scalar(
            sa.select(Job.id).where(_claimable()).order_by(Job.created_at, Job.id).limit(1)
        )
        db.session.rollback()
        if job_id is None:
            break
        if run(job_id) is not None:
            ran += 1
    return ran


def fail_abandoned():
    """Give up on jobs whose process died MAX_ATTEMPTS times (e.g. killed for lack of memory)."""
    from models import Job, JobState

    with db.engine.begin() as connection:
        result = connection.execute(
            sa.update(Job)
            .where(
                Job.state == JobState.running,
                Job.heartbeat_at < _stale_before(),
                Job.attempts >= MAX_ATTEMPTS,
            )
            .values(
                state=JobState.failed,
                finished_at=now_utc(),
                error=_("處理程序多次中斷，工作未完成。請重新產生，若一再發生請洽系統管理員。"),
            )
        )
    if result.rowcount:
        log.warning("%s abandoned job(s) marked failed", result.rowcount)
    return result.rowcount


def purge_old_results(days=None):
    """Delete result and upload files of jobs finished more than `days` ago; returns how many."""
    from models import Job

    days = current_app.config.get("JOB_RESULT_DAYS", 7) if days is None else days
    before = now_utc() - timedelta(days=days)
    folder = jobs_folder()
    old = db.session.execute(
        sa.select(Job.id, Job.result_path, Job.parameters).where(
            Job.finished_at < before,
            sa.or_(Job.result_path.is_not(None), Job.kind.in_(("import_preview", "import_apply"))),
        )
    ).all()
    removed = 0
    for job_id, result_path, parameters in old:
        for name in (result_path, (parameters or {}).get("upload")):
            path = os.path.join(folder, name) if name else None
            inside = path and os.path.dirname(os.path.realpath(path)) == os.path.realpath(folder)
            if inside and os.path.exists(path):
                os.remove(path)
                removed += 1
        if result_path:
            _update_job(job_id, result_path=None)
    db.session.rollback()
    return removed
