"""County pages: a county centre downloads its own county's spreadsheets, nothing else.

The county is always the officer's own (`user.county`), never one named by the URL or the form;
a job started by someone else, or for another county, answers 404 as if it did not exist.
Staff and administrators export any county, or the whole country, in the back office.

The blueprint is named `county_centre` because Flask-Admin's county list already registers a
blueprint named `county`; the pages are at /county/.
"""

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user

from admin_app import jobs
from admin_app.extensions import db
from admin_app.security import roles_required
from exports.spreadsheets import MIME_TYPE, REPORTS, request_export
from models import Cycle, Job, JobState, Role

blueprint = Blueprint("county_centre", __name__, url_prefix="/county")

OFFICER = Role.county_officer
RECENT_JOBS = 20


def _own_county():
    """The officer's county; an officer account without one may not export anything."""
    if current_user.county is None:
        abort(403)
    return current_user.county


def _own_job(job_id):
    """A job of this officer, for this officer's county, or 404."""
    county = _own_county()
    job = db.session.get(Job, job_id)
    if (
        job is None
        or job.kind != "export"
        or job.created_by_id != current_user.id
        or (job.parameters or {}).get("county_id") != county.id
    ):
        abort(404)
    return job


@blueprint.route("/")
@roles_required(OFFICER, Role.staff, Role.admin)
def index():
    """The cycles and the spreadsheets the officer can ask for, and their recent requests."""
    if current_user.is_staff:
        exports_page = "spreadsheet_exports.index"
        if exports_page.split(".")[0] not in current_app.blueprints:
            exports_page = "admin.index"
        return redirect(url_for(exports_page))
    county = _own_county()

    cycles = db.session.scalars(sa.select(Cycle).order_by(Cycle.academic_year.desc())).all()
    recent = db.session.scalars(
        sa.select(Job)
        .where(Job.created_by_id == current_user.id, Job.kind == "export")
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(RECENT_JOBS)
    ).all()
    recent = [job for job in recent if job.parameters.get("county_id") == county.id]
    cycle_years = {cycle.id: cycle.academic_year for cycle in cycles}
    return render_template(
        "county/index.html",
        county=county,
        cycles=cycles,
        reports=REPORTS,
        jobs=recent,
        cycle_years=cycle_years,
    )


@blueprint.route("/exports", methods=["POST"])
@roles_required(OFFICER)
def start_export():
    """Queue one spreadsheet of the officer's county and show its progress page."""
    county = _own_county()
    asked = request.form.get("county_id")
    if asked not in (None, "", str(county.id)):
        abort(403)
    report = REPORTS.get(request.form.get("report", ""))
    cycle = db.session.get(Cycle, request.form.get("cycle_id", type=int) or 0)
    if report is None or cycle is None:
        abort(404)

    job = request_export(report, cycle, county, current_user)
    db.session.commit()
    jobs.start(job)
    return redirect(url_for(".job", job_id=job.id))


@blueprint.route("/jobs/<int:job_id>")
@roles_required(OFFICER)
def job(job_id):
    """The progress of a requested spreadsheet; the page reloads itself until it is ready."""
    job = _own_job(job_id)
    return _job_page(job)


def _job_page(job):
    jobs.nudge(job)
    report = REPORTS.get(job.parameters.get("report"))
    cycle = db.session.get(Cycle, job.parameters.get("cycle_id") or 0)
    page = render_template(
        "county/job.html",
        job=job,
        report=report,
        cycle=cycle,
        county=current_user.county,
        file_ready=job.state is JobState.done and jobs.result_file(job) is not None,
    )
    headers = {} if job.is_finished else {"Refresh": str(jobs.REFRESH_SECONDS)}
    return page, 200, headers


@blueprint.route("/jobs/<int:job_id>/download")
@roles_required(OFFICER)
def download(job_id):
    """The finished spreadsheet, for the officer who asked for it."""
    job = _own_job(job_id)
    path = jobs.result_file(job) if job.state is JobState.done else None
    if path is None:
        abort(404)
    return send_file(path, mimetype=MIME_TYPE, as_attachment=True, download_name=job.result_name)
