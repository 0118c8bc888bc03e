"""發證與公告: give a cycle's passed cases their certificate numbers, then announce them.

Both steps act on every eligible case of the cycle at once. The confirmation page states how
many cases and which numbers; the POST carries what was shown, and if the operation finds a
different set (a case passed or was undone meanwhile) the whole step is rolled back and staff
confirm again.
"""

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from sqlalchemy.orm import joinedload

from admin_app.extensions import db
from admin_app.i18n import _
from models import Case, CaseState, County, Cycle, School, workflow
from models.application import current_cycle
from models.operations import TransitionRefused

from .base import StaffAccess
from .case_workflow import as_int

RECENT_NUMBERS = 20
COUNTED = (CaseState.passed, CaseState.certified, CaseState.announced)


def state_counts(cycle_ids):
    """{(cycle_id, state): count} of the states this page deals with."""
    if not cycle_ids:
        return {}
    rows = db.session.execute(
        sa.select(Case.cycle_id, Case.state, sa.func.count())
        .where(Case.cycle_id.in_(cycle_ids), Case.state.in_(COUNTED))
        .group_by(Case.cycle_id, Case.state)
    ).all()
    return {(cycle_id, state): count for cycle_id, state, count in rows}


def certified_cases(cycle):
    """The cycle's cases with a number that is not yet announced, in number order."""
    return db.session.scalars(
        sa.select(Case)
        .where(Case.cycle_id == cycle.id, Case.state == CaseState.certified)
        .options(joinedload(Case.school), joinedload(Case.county))
        .order_by(Case.certificate_seq)
    ).all()


def recent_numbers(cycle):
    """The last numbers issued in the cycle, newest first."""
    return db.session.scalars(
        sa.select(Case)
        .where(Case.cycle_id == cycle.id, Case.certificate_seq.is_not(None))
        .options(joinedload(Case.school))
        .order_by(Case.certificate_seq.desc())
        .limit(RECENT_NUMBERS)
    ).all()


def preload_places(cases):
    """Put the cases' schools and counties in the session with two queries, not one per case."""
    school_ids = {case.school_id for case in cases} - {None}
    county_ids = {case.county_id for case in cases} - {None}
    db.session.scalars(sa.select(School).where(School.id.in_(school_ids))).all()
    db.session.scalars(sa.select(County).where(County.id.in_(county_ids))).all()


class CertificateView(StaffAccess, BaseView):
    """發證與公告: per cycle, the passed and certified counts and the two bulk steps."""

    # both steps are set-based (workflow.issue_certificates): 10,000 cases take seconds, not
    # minutes (bench/run.py, README "Performance"), audit events and messages included.
    # TODO(long request): they still run inside the request; move them to background jobs
    # (admin_app.jobs) with progress, as the exports do, should cycles grow much larger

    def _cycle_or_404(self, cycle_id):
        cycle = db.session.get(Cycle, cycle_id)
        if cycle is None:
            abort(404)
        return cycle

    @expose("/")
    def index(self):
        """Every cycle with its counts; the current one first links to its page."""
        cycles = db.session.scalars(sa.select(Cycle).order_by(Cycle.academic_year.desc())).all()
        return self.render(
            "admin/certificates.html",
            cycles=cycles,
            current=current_cycle(),
            counts=state_counts([cycle.id for cycle in cycles]),
            states=COUNTED,
        )

    @expose("/<int:cycle_id>/")
    def cycle(self, cycle_id):
        """One cycle: how many cases wait for a number or for the announcement, last numbers."""
        cycle = self._cycle_or_404(cycle_id)
        counts = state_counts([cycle.id])
        return self.render(
            "admin/certificates_cycle.html",
            cycle=cycle,
            passed=counts.get((cycle.id, CaseState.passed), 0),
            certified=counts.get((cycle.id, CaseState.certified), 0),
            announced=counts.get((cycle.id, CaseState.announced), 0),
            recent=recent_numbers(cycle),
        )

    @expose("/<int:cycle_id>/issue/", methods=["GET", "POST"])
    def issue(self, cycle_id):
        """發證（核發證號）: the confirmation page; on POST, numbers for every passed case."""
        cycle = self._cycle_or_404(cycle_id)
        if request.method == "GET":
            cases = workflow.passed_cases(cycle)
            preload_places(cases)
            first = cycle.certificate_counter + 1
            return self.render(
                "admin/certificates_issue.html",
                cycle=cycle,
                cases=cases,
                first=first,
                numbers=[cycle.format_certificate_number(first + n) for n in range(len(cases))],
            )

        expected, first = as_int(request.form.get("count")), as_int(request.form.get("first"))
        try:
            issued = workflow.issue_certificates(cycle, current_user)
        except TransitionRefused as refusal:
            # another tab or another member of staff issued them first
            return self._refused(refusal, cycle_id)
        if not issued:
            db.session.rollback()
            flash(_("目前沒有「通過可產證」的案件，未核發任何證號。"), "warning")
            return redirect(url_for(".cycle", cycle_id=cycle_id), code=303)
        if len(issued) != expected or issued[0].certificate_seq != first:
            db.session.rollback()
            flash(
                _("可發證的案件或證號在您確認後已有變動，未核發任何證號。請再確認一次。"),
                "error",
            )
            return redirect(url_for(".issue", cycle_id=cycle_id), code=303)

        text = _(
            "已核發 %(count)s 張證書，證號 %(first)s 至 %(last)s。",
            count=len(issued),
            first=issued[0].certificate_number,
            last=issued[-1].certificate_number,
        )
        db.session.commit()
        flash(text, "success")
        return redirect(url_for(".cycle", cycle_id=cycle_id), code=303)

    @expose("/<int:cycle_id>/announce/", methods=["GET", "POST"])
    def announce(self, cycle_id):
        """公告: the confirmation page, and on POST the announcement of every certified case."""
        cycle = self._cycle_or_404(cycle_id)
        if request.method == "GET":
            return self.render(
                "admin/certificates_announce.html", cycle=cycle, cases=certified_cases(cycle)
            )

        expected = as_int(request.form.get("count"))
        try:
            announced = workflow.announce_certificates(cycle, current_user)
        except TransitionRefused as refusal:
            return self._refused(refusal, cycle_id)
        if not announced:
            db.session.rollback()
            flash(_("目前沒有「已發證」待公告的案件，未公告任何證號。"), "warning")
            return redirect(url_for(".cycle", cycle_id=cycle_id), code=303)
        if len(announced) != expected:
            db.session.rollback()
            flash(_("待公告的案件在您確認後已有變動，未公告任何證號。請再確認一次。"), "error")
            return redirect(url_for(".announce", cycle_id=cycle_id), code=303)

        text = _("已公告 %(count)s 張證書。", count=len(announced))
        db.session.commit()
        flash(text, "success")
        return redirect(url_for(".cycle", cycle_id=cycle_id), code=303)

    def _refused(self, refusal, cycle_id):
        """Undo the request and send staff back to the cycle's page with the reason."""
        db.session.rollback()
        flash(refusal.message, "error")
        return redirect(url_for(".cycle", cycle_id=cycle_id), code=303)
