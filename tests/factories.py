"""Cases in any state, reached through the real operations, for tests of later steps."""

import io
import uuid

from werkzeug.datastructures import FileStorage

from admin_app.demo import demo_pdf, fill_application
from admin_app.extensions import db
from models import CaseState, Decision, Position, Role, School, User, workflow
from models.application import open_case, submit_application

from .conftest import PASSWORD, make_eligible


def pdf_upload(name="文件.pdf", content=None):
    """A FileStorage holding a real PDF, as a browser would send it."""
    return FileStorage(io.BytesIO(content or demo_pdf(name)), filename=name)


def new_applicant(cycle, school=None):
    """A fresh eligible applicant at a fresh school."""
    from models import County

    county = db.session.query(County).filter_by(name="高雄市").one()
    school = school or School(name=f"學校{uuid.uuid4().hex[:6]}", county=county)
    login = f"t{uuid.uuid4().hex[:8]}"
    user = User(
        login=login,
        name=f"申請人{login[-4:]}",
        email=f"{login}@example.edu.tw",
        role=Role.applicant,
        position=Position.teacher,
        school=school,
    )
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.flush()
    make_eligible(user, cycle)
    return user


def reviewers(count=3):
    """Reviewer accounts, each at a school of its own."""
    from models import County

    county = db.session.query(County).filter_by(name="臺南市").one()
    made = []
    for index in range(count):
        school = School(name=f"委員學校{uuid.uuid4().hex[:6]}", county=county)
        login = f"r{uuid.uuid4().hex[:8]}"
        user = User(
            login=login,
            name=f"委員{index}",
            email=f"{login}@example.edu.tw",
            role=Role.reviewer,
            school=school,
            county=county,
        )
        user.set_password(PASSWORD)
        db.session.add(user)
        made.append(user)
    db.session.flush()
    return made


def review_all(case, recommendation=Decision.passed):
    """Every assigned reviewer of the current round submits a complete review."""
    results = {item: {"result": "meets", "comment": "符合"} for item in _item_values()}
    for assignment in list(case.assignments):
        if assignment.round == case.round and assignment.submitted_at is None:
            workflow.save_review(
                assignment, assignment.reviewer, results, "整體表現良好。", recommendation, True
            )


def _item_values():
    from models import ApplicationItem

    return [item.value for item in ApplicationItem]


def case_in(state, cycle, staff, round_=1, applicant=None, panel=None):
    """A case brought to `state` (in `round_`) by the real operations, committed."""
    applicant = applicant or new_applicant(cycle)
    panel = panel or reviewers(cycle.reviewers_per_case)
    case = open_case(applicant, cycle)
    db.session.flush()
    fill_application(case, applicant)
    if state is CaseState.draft:
        return _done(case)

    submit_application(case, applicant)
    if state is CaseState.formal_review:
        return _done(case)
    if state is CaseState.returned:
        workflow.return_for_correction(case, staff, "請補蓋學校章。")
        return _done(case)

    workflow.pass_formal_review([case], staff)
    if round_ == 2:
        _through_round(case, staff, panel, Decision.revise_and_review)
        submit_application(case, applicant)
    if state is CaseState.awaiting_assignment:
        return _done(case)

    workflow.assign_reviewers(case, panel[: cycle.reviewers_per_case], staff)
    if state is CaseState.under_review:
        return _done(case)

    review_all(case)
    if state is CaseState.awaiting_verdict:
        return _done(case)

    if state is CaseState.revision_requested:
        workflow.record_verdict(case, Decision.revise_and_review, staff, "請修正觀察紀錄。")
        return _done(case)
    if state in (CaseState.passed, CaseState.certified, CaseState.announced):
        workflow.record_verdict(case, Decision.passed, staff)
        if state is not CaseState.passed:
            workflow.issue_certificates(cycle, staff)
        if state is CaseState.announced:
            workflow.announce_certificates(cycle, staff)
        return _done(case)

    workflow.record_verdict(case, Decision.failed, staff, "觀察紀錄不完整。")
    if state is CaseState.failed:
        return _done(case)
    if state is CaseState.closed:
        workflow.close_expired_appeal_windows(case.appeal_deadline.replace(year=2100))
        return _done(case)

    workflow.file_appeal(case, applicant, "評分有誤，請重新審查。")
    if state is CaseState.appeal_filed:
        return _done(case)
    workflow.accept_appeal(case, staff)
    if state is CaseState.appeal_review:
        return _done(case)
    raise ValueError(state)


def _through_round(case, staff, panel, decision):
    workflow.assign_reviewers(case, panel[: case.cycle.reviewers_per_case], staff)
    review_all(case, decision)
    workflow.record_verdict(case, decision, staff, "請依委員意見修正。")


def _done(case):
    db.session.commit()
    db.session.refresh(case)
    return case
