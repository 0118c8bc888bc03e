"""Cases in any state, reached through the real operations, for tests of later steps."""

import io
import uuid
from contextlib import contextmanager

import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

from admin_app import demo
from admin_app.demo import demo_pdf, fill_application
from admin_app.extensions import db
from models import Decision, Position, Role, School, User
from models.application import open_case

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
    demo._review_all(case, recommendation)


def case_in(state, cycle, staff, round_=1, applicant=None, panel=None):
    """A case brought to `state` (in `round_`) by the real operations, committed."""
    applicant = applicant or new_applicant(cycle)
    panel = panel or reviewers(cycle.reviewers_per_case)
    case = open_case(applicant, cycle)
    db.session.flush()
    fill_application(case, applicant)
    demo.advance_to(case, state, staff, panel, round_)
    db.session.commit()
    db.session.refresh(case)
    return case


@contextmanager
def counted_statements():
    """The SQL statements run inside the block, for tests that a page's count stays flat."""
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
