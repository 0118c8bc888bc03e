"""Background jobs on both databases: claimed once, progress seen, failures told, files apart."""

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa

from admin_app import jobs
from admin_app.extensions import db
from admin_app.i18n import now_utc
from exports import spreadsheets
from models import CaseState, County, Job, JobState
from views import spreadsheets_admin

from .factories import case_in


@pytest.fixture(autouse=True)
def back_office(app, tmp_path):
    """Jobs run when the test says so, and write into a folder of the test's own."""
    app.config.update(JOBS_IN_PROCESS=False, JOBS_FOLDER=str(tmp_path / "jobs"))
    if "spreadsheet_exports" not in app.blueprints:
        spreadsheets_admin.register(app.extensions["admin"][0])


def taipei():
    return db.session.scalar(sa.select(County).where(County.name == "臺北市"))


def export_job(cycle, user, county=None, report="cases"):
    job = jobs.enqueue("export", spreadsheets.export_parameters(report, cycle, county), user)
    db.session.commit()
    return job


def fresh(job):
    db.session.expire_all()
    return db.session.get(Job, job.id)


def files_in(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_a_job_is_claimed_once(app, cycle, staff):
    job = export_job(cycle, staff)

    assert jobs.claim(job.id) is True
    assert jobs.claim(job.id) is False
    job = fresh(job)
    assert job.state is JobState.running and job.attempts == 1 and job.worker


def test_run_writes_the_file_and_the_progress(app, cycle, staff):
    for _ in range(3):
        case_in(CaseState.formal_review, cycle, staff)
    job = export_job(cycle, staff)

    assert jobs.run(job.id) is JobState.done
    assert jobs.run(job.id) is None
    job = fresh(job)
    assert job.state is JobState.done and job.error is None
    assert (job.progress_done, job.progress_total, job.percent) == (3, 3, 100)
    assert job.result_name == "115學年度_全國_案件總表.xlsx"
    assert job.finished_at >= job.started_at >= job.created_at
    path = jobs.result_file(job)
    assert path and os.path.getsize(path) > 0
    assert files_in(app.config["JOBS_FOLDER"]) == [job.result_path]


def test_a_refused_job_says_why_in_chinese(app, cycle, staff):
    job = jobs.enqueue("export", {"report": "cases", "cycle_id": 9999, "county_id": None}, staff)
    db.session.commit()

    assert jobs.run(job.id) is JobState.failed
    job = fresh(job)
    assert job.error == "報表參數不正確（梯次或縣市已不存在），請重新產生。"
    assert job.result_path is None


def test_an_unexpected_error_leaves_no_file(app, cycle, staff, monkeypatch):
    def broken(path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"half a workbook")
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(
        spreadsheets.REPORTS,
        "cases",
        spreadsheets.Report("cases", "案件總表", broken, ""),
    )
    job = export_job(cycle, staff)

    assert jobs.run(job.id) is JobState.failed
    assert fresh(job).error == "處理時發生錯誤，請稍後再試；若一再發生請洽系統管理員。"
    assert files_in(app.config["JOBS_FOLDER"]) == []


def test_an_abandoned_job_is_taken_over_then_given_up(app, cycle, staff):
    job = export_job(cycle, staff)
    assert jobs.claim(job.id)
    # still fresh: nobody else may take it
    assert jobs.claim(job.id) is False

    long_ago = now_utc() - timedelta(hours=1)
    db.session.execute(sa.update(Job).where(Job.id == job.id).values(heartbeat_at=long_ago))
    db.session.commit()
    assert jobs.claim(job.id) is True
    assert fresh(job).attempts == 2

    db.session.execute(
        sa.update(Job)
        .where(Job.id == job.id)
        .values(heartbeat_at=long_ago, attempts=jobs.MAX_ATTEMPTS)
    )
    db.session.commit()
    assert jobs.claim(job.id) is False
    assert jobs.fail_abandoned() == 1
    job = fresh(job)
    assert job.state is JobState.failed and "多次中斷" in job.error


def test_run_pending_runs_everything_queued_in_order(app, cycle, staff):
    first = export_job(cycle, staff)
    second = export_job(cycle, staff, taipei(), "statistics")

    assert jobs.run_pending() == 2
    assert jobs.run_pending() == 0
    assert fresh(first).state is JobState.done and fresh(second).state is JobState.done
    assert fresh(second).result_name == "115學年度_臺北市_統計.xlsx"


def test_a_thread_of_the_web_process_runs_the_job(app, cycle, staff):
    app.config["JOBS_IN_PROCESS"] = True
    job = export_job(cycle, staff, taipei())

    thread = jobs.start(job)
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert fresh(job).state is JobState.done


def test_no_thread_when_jobs_run_elsewhere(app, cycle, staff):
    job = export_job(cycle, staff)
    assert jobs.start(job) is None
    assert fresh(job).state is JobState.queued


def test_a_progress_page_restarts_a_job_nobody_picked_up(app, cycle, staff):
    app.config["JOBS_IN_PROCESS"] = True
    job = export_job(cycle, staff)
    assert jobs.nudge(fresh(job)) is None  # just queued: give the worker a chance

    db.session.execute(
        sa.update(Job).where(Job.id == job.id).values(created_at=now_utc() - timedelta(minutes=5))
    )
    db.session.commit()
    thread = jobs.nudge(fresh(job))
    thread.join(timeout=60)
    assert fresh(job).state is JobState.done


def test_worker_command(app, cycle, staff):
    export_job(cycle, staff)
    export_job(cycle, staff, taipei())

    result = app.test_cli_runner().invoke(args=["run-jobs"])
    assert result.exit_code == 0, result.output
    assert "已完成 2 項背景工作。" in result.output
    db.session.expire_all()
    states = db.session.scalars(sa.select(Job.state)).all()
    assert states == [JobState.done, JobState.done]


def test_old_results_are_removed(app, cycle, staff):
    job = export_job(cycle, staff)
    jobs.run(job.id)
    job = fresh(job)
    assert jobs.purge_old_results() == 0
    assert jobs.result_file(job) is not None

    assert jobs.purge_old_results(days=-1) == 1
    job = fresh(job)
    assert job.result_path is None and jobs.result_file(job) is None
    assert files_in(app.config["JOBS_FOLDER"]) == []


def test_result_file_stays_inside_the_jobs_folder(app, cycle, staff, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    job = export_job(cycle, staff)
    job.state = JobState.done
    job.finished_at = now_utc()
    job.result_path = "../secret.txt"
    db.session.commit()

    assert jobs.result_file(job) is None


def test_job_visibility(app, cycle, staff, county_officer, teacher):
    job = export_job(cycle, county_officer, taipei())

    assert job.may_be_seen_by(county_officer)
    assert job.may_be_seen_by(staff)
    assert not job.may_be_seen_by(teacher)
