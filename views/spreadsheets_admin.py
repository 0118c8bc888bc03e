"""Back-office pages under 報表與匯入: spreadsheets of any county or the whole country, and imports.

Both only queue background jobs and show their progress (see `admin_app.jobs`): a workbook of the
whole country or an import of 50,000 rows takes longer than a request may. An import is
previewed by one job; staff read the preview and confirm, which queues a second job that reads
the file again and writes it all, or nothing.
"""

from io import BytesIO

import sqlalchemy as sa
from flask import abort, flash, redirect, request, send_file, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from admin_app import jobs
from admin_app.extensions import db
from admin_app.i18n import _, _l
from exports import imports, spreadsheets, templates
from models import County, Cycle, Job, JobState

from .admin.base import StaffAccess

CATEGORY = _l("報表與匯入")
RECENT_JOBS = 30
IMPORT_KINDS = ("import_preview", "import_apply")
EVERY_COUNTY = "all"


def register(admin):
    """Add the export and import pages to the back office, under 報表與匯入."""
    admin.add_view(
        ExportView(
            name=_l("報表匯出"), endpoint="spreadsheet_exports", url="exports", category=CATEGORY
        )
    )
    admin.add_view(
        ImportView(
            name=_l("資料匯入"), endpoint="spreadsheet_imports", url="imports", category=CATEGORY
        )
    )


def _job_or_404(job_id, kinds):
    job = db.session.get(Job, job_id)
    if job is None or job.kind not in kinds or not job.may_be_seen_by(current_user):
        abort(404)
    return job


def _recent_jobs(kinds):
    return db.session.scalars(
        sa.select(Job)
        .where(Job.kind.in_(kinds))
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(RECENT_JOBS)
    ).all()


def _refresh_headers(job):
    return {} if job.is_finished else {"Refresh": str(jobs.REFRESH_SECONDS)}


def _send_result(job):
    path = jobs.result_file(job) if job.state is JobState.done else None
    if path is None:
        abort(404)
    return send_file(
        path, mimetype=spreadsheets.MIME_TYPE, as_attachment=True, download_name=job.result_name
    )


class ExportView(StaffAccess, BaseView):
    """報表匯出: any report of any cycle, for one county or the whole country."""

    @expose("/")
    def index(self):
        cycles = db.session.scalars(sa.select(Cycle).order_by(Cycle.academic_year.desc())).all()
        counties = db.session.scalars(sa.select(County).order_by(County.sort_order)).all()
        return self.render(
            "admin/spreadsheets/exports.html",
            cycles=cycles,
            counties=counties,
            reports=spreadsheets.REPORTS,
            every_county=EVERY_COUNTY,
            jobs=_recent_jobs(("export",)),
            describe=self._describe,
        )

    @expose("/start", methods=["POST"])
    def start(self):
        report = spreadsheets.REPORTS.get(request.form.get("report", ""))
        cycle = db.session.get(Cycle, request.form.get("cycle_id", type=int) or 0)
        where = request.form.get("county", "")
        county = None
        if where != EVERY_COUNTY:
            county = db.session.get(County, int(where)) if where.isdigit() else None
            if county is None:
                report = None
        if report is None or cycle is None:
            flash(_("請選擇梯次、縣市與報表。"), "error")
            return redirect(url_for(".index"))

        job = spreadsheets.request_export(report, cycle, county, current_user)
        db.session.commit()
        jobs.start(job)
        return redirect(url_for(".job", job_id=job.id))

    @expose("/jobs/<int:job_id>")
    def job(self, job_id):
        job = _job_or_404(job_id, ("export",))
        jobs.nudge(job)
        page = self.render(
            "admin/spreadsheets/export_job.html",
            job=job,
            title=self._describe(job),
            file_ready=job.state is JobState.done and jobs.result_file(job) is not None,
        )
        return page, 200, _refresh_headers(job)

    @expose("/jobs/<int:job_id>/download")
    def download(self, job_id):
        return _send_result(_job_or_404(job_id, ("export",)))

    @staticmethod
    def _describe(job):
        """「115 學年度…・臺北市・案件總表」 for lists and headings."""
        parameters = job.parameters or {}
        report = spreadsheets.REPORTS.get(parameters.get("report"))
        cycle = db.session.get(Cycle, parameters.get("cycle_id") or 0)
        county_id = parameters.get("county_id")
        county = db.session.get(County, county_id) if county_id else None
        return "・".join(
            (
                cycle.name if cycle else "",
                county.name if county else _("全國（各縣市分頁）"),
                str(report.title) if report else "",
            )
        )


class ImportView(StaffAccess, BaseView):
    """資料匯入: training hours and accounts, previewed before anything is written."""

    @expose("/")
    def index(self):
        return self.render(
            "admin/spreadsheets/imports.html",
            datasets=imports.DATASETS,
            jobs=_recent_jobs(IMPORT_KINDS),
            max_rows=f"{imports.MAX_ROWS:,}",
        )

    @expose("/upload", methods=["POST"])
    def upload(self):
        dataset = imports.DATASETS.get(request.form.get("dataset", ""))
        upload = request.files.get("file")
        if dataset is None or upload is None or not upload.filename:
            flash(_("請選擇要匯入的資料種類與檔案。"), "error")
            return redirect(url_for(".index"))

        stored = imports.store_upload(upload)
        try:
            imports.check_signature(imports.upload_path(stored))
        except imports.ImportRefused as refusal:
            imports.discard_upload(stored)
            flash(refusal.message, "error")
            return redirect(url_for(".index"))

        parameters = {"dataset": dataset.key, "upload": stored, "filename": upload.filename[:200]}
        job = jobs.enqueue("import_preview", parameters, current_user)
        db.session.commit()
        jobs.start(job)
        return redirect(url_for(".job", job_id=job.id))

    @expose("/jobs/<int:job_id>")
    def job(self, job_id):
        job = _job_or_404(job_id, IMPORT_KINDS)
        jobs.nudge(job)
        dataset = imports.DATASETS.get(job.parameters.get("dataset"))
        page = self.render(
            "admin/spreadsheets/import_job.html",
            job=job,
            dataset=dataset,
            summary=job.summary or {},
            applied_by=self._apply_job_of(job),
        )
        return page, 200, _refresh_headers(job)

    @expose("/jobs/<int:job_id>/apply", methods=["POST"])
    def apply(self, job_id):
        preview = _job_or_404(job_id, ("import_preview",))
        summary = preview.summary or {}
        if preview.state is not JobState.done or summary.get("error_count", 1) != 0:
            flash(_("只有沒有錯誤的預覽才能匯入。"), "error")
            return redirect(url_for(".job", job_id=preview.id))
        earlier = self._apply_job_of(preview)
        if earlier is not None:
            return redirect(url_for(".job", job_id=earlier.id))

        parameters = {**preview.parameters, "preview_job_id": preview.id}
        job = jobs.enqueue("import_apply", parameters, current_user)
        db.session.commit()
        jobs.start(job)
        return redirect(url_for(".job", job_id=job.id))

    @expose("/template/<dataset_key>.xlsx")
    def template(self, dataset_key):
        if dataset_key not in imports.DATASETS:
            abort(404)
        return send_file(
            BytesIO(templates.template_workbook(dataset_key)),
            mimetype=spreadsheets.MIME_TYPE,
            as_attachment=True,
            download_name=templates.template_name(dataset_key),
        )

    @staticmethod
    def _apply_job_of(preview):
        """The import job started from this preview, if any (a second click finds the first)."""
        if preview.kind != "import_preview":
            return None
        candidates = db.session.scalars(
            sa.select(Job)
            .where(Job.kind == "import_apply", Job.created_at >= preview.created_at)
            .order_by(Job.id)
        )
        for candidate in candidates:
            if (candidate.parameters or {}).get("preview_job_id") == preview.id:
                return candidate
        return None
