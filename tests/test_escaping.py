"""Text people typed, hostile on purpose, wherever it is shown again.

A candidate whose name, school, record and uploaded file name carry a script tag and a
spreadsheet formula, a clerk and reviewers whose comments do the same, and someone who types one
into the login box: every page of the portal, the reviewer pages and the back office shows the
text escaped, every e-mail is plain text only, and every spreadsheet cell that starts with
= + - @ is a text cell Excel will not evaluate.
"""

import io
import re
import zipfile

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from admin_app import jobs, mailer
from admin_app.demo import demo_formdata, fill_application
from admin_app.extensions import db
from exports import spreadsheets
from models import (
    ApplicationItem,
    County,
    Decision,
    Document,
    FormEntry,
    OutgoingMail,
    Role,
    workflow,
)
from models.application import open_case, save_record, submit_application

from .factories import reviewers

# each carries a script tag with its own number, so that a failure says which text leaked
NAME = '=HYPERLINK("http://e.example/","點")<script>alert(1)</script>'
SCHOOL = "+市立<script>alert(2)</script>國小"
RECORD = '@SUM(1)<script>alert(3)</script>"><img src=x onerror=alert(3)>'
RETURN_COMMENT = "-請補件<script>alert(4)</script>"
REVIEW_COMMENT = "=1+1<script>alert(5)</script>"
VERDICT_COMMENT = "未通過<script>alert(6)</script>"
FILE_NAME = "<script>alert(7)</script>證明.pdf"
LOGIN_TYPED = "<script>alert(8)</script>"
RAW = re.compile(r"<script>alert\(|<img src=x")
ESCAPED = re.compile(r"&lt;script&gt;alert\((\d)\)")
RISKY_STARTS = ("=", "+", "-", "@")


def shown(response):
    """The numbers of the hostile texts the page shows (escaped); fails on any raw one."""
    assert response.status_code == 200, response.status_code
    page = response.get_data(as_text=True)
    raw = RAW.findall(page)
    assert raw == [], f"unescaped text on {response.request.path}"
    return {int(number) for number in ESCAPED.findall(page)}


@pytest.fixture
def hostile(app, cycle, make_school, make_user, staff):
    """The hostile candidate's failed case, with a return, two reviews and a verdict on it."""
    app.config.update(JOBS_IN_PROCESS=False)
    school = make_school(SCHOOL, "臺北市")
    candidate = make_user("hostile", school=school, name=NAME, eligible=True, cycle=cycle)
    case = open_case(candidate, cycle)
    fill_application(case, candidate)
    for document in db.session.scalars(sa.select(Document).where(Document.case_id == case.id)):
        document.original_name = FILE_NAME
    item = ApplicationItem.pre_conference
    entry = db.session.scalar(
        sa.select(FormEntry).where(FormEntry.case_id == case.id, FormEntry.item == item)
    )
    version = entry.template_version
    formdata = demo_formdata(version.fields)
    key = next(field["key"] for field in version.fields if field["type"] == "text")
    formdata.setlist(key, [RECORD])
    save_record(case, item, version, formdata, candidate)

    submit_application(case, candidate)
    workflow.return_for_correction(case, staff, RETURN_COMMENT)
    submit_application(case, candidate)
    workflow.pass_formal_review([case], staff)
    panel = reviewers(2)
    workflow.assign_reviewers(case, panel, staff)
    results = {i.value: {"result": "meets", "comment": REVIEW_COMMENT} for i in ApplicationItem}
    for assignment in list(case.assignments):
        workflow.save_review(
            assignment, assignment.reviewer, results, REVIEW_COMMENT, Decision.failed, True
        )
    assignment_id = case.assignments[0].id
    workflow.record_verdict(case, Decision.failed, staff, VERDICT_COMMENT)
    db.session.commit()
    return {
        "case": case,
        "candidate": candidate,
        "panel": panel,
        "assignment_id": assignment_id,
        "staff": staff,
    }


def test_the_portal_escapes_everything(login, hostile):
    client = login(hostile["candidate"])
    case = hostile["case"]

    assert 1 in shown(client.get("/"))
    assert {1, 2} <= shown(client.get("/profile"))
    assert 3 in shown(client.get("/apply/record/pre_conference"))
    assert 7 in shown(client.get("/apply/item/public_teaching"))
    assert {4, 5, 6} <= shown(client.get(f"/apply/comments/{case.id}"))
    shown(client.get(f"/apply/flow/{case.id}"))
    shown(client.get("/apply"))
    shown(client.get("/apply/appeal"))
    shown(client.get("/messages"))
    message_id = db.session.execute(
        sa.text("SELECT max(id) FROM notification WHERE user_id = :id"),
        {"id": hostile["candidate"].id},
    ).scalar()
    assert 1 in shown(client.get(f"/messages/{message_id}"))


def test_the_reviewer_pages_escape_everything(login, hostile):
    reviewer = hostile["panel"][0]
    client = login(reviewer)

    shown(client.get("/review/"))
    assert {3, 5, 7} <= shown(client.get(f"/review/{hostile['assignment_id']}"))


def test_the_back_office_escapes_everything(login, client, hostile, staff):
    client.post("/login", data={"login": LOGIN_TYPED, "password": "wrong-password-1"})
    login(staff)
    case = hostile["case"]

    assert {1, 2} <= shown(client.get("/admin/case/"))
    assert {1, 2, 3, 4, 6, 7} <= shown(client.get(f"/admin/case/details/?id={case.id}"))
    assert 1 in shown(client.get("/admin/user/"))
    assert 1 in shown(client.get(f"/admin/user/edit/?id={hostile['candidate'].id}"))
    assert 2 in shown(client.get("/admin/school/"))
    assert 7 in shown(client.get("/admin/document/"))
    assert {4, 6, 8} <= shown(client.get("/admin/audit/"))
    shown(client.get("/admin/"))


def test_mail_is_plain_text_only(app, hostile):
    mails = db.session.scalars(
        sa.select(OutgoingMail).where(OutgoingMail.recipient == hostile["candidate"].email)
    ).all()
    assert mails

    for mail_row in mails:
        message = mailer._message(mail_row).as_string()
        assert "Content-Type: text/plain" in message
        assert "text/html" not in message
        # plain text is shown as typed: escaping it would show the candidate &lt; and &gt;
        assert NAME in mail_row.body and "&lt;" not in mail_row.body


def test_spreadsheets_never_hold_a_formula(app, tmp_path, cycle, hostile):
    # the certificate list holds certified people only: give the candidate a certificate
    _certify(hostile, cycle)
    taipei = db.session.scalar(sa.select(County).where(County.name == "臺北市"))

    for report in spreadsheets.REPORTS.values():
        for county in (taipei, None):
            path = tmp_path / f"{report.key}-{county.id if county else 'all'}.xlsx"
            report.write(path, cycle, county)
            typed = _checked_text_cells(path)
            assert typed & {NAME, SCHOOL}, f"{report.key} should show the typed text"


def _checked_text_cells(path):
    """The values of cells starting with = + - @, each checked to be a quoted text cell."""
    typed = set()
    for sheet in load_workbook(path).worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.startswith(RISKY_STARTS):
                    assert cell.data_type == "s" and cell.quotePrefix, (path.name, cell.value)
                    typed.add(cell.value)
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name), (path.name, name)
    return typed


def _certify(hostile, cycle):
    case, staff = hostile["case"], hostile["staff"]
    workflow.file_appeal(case, hostile["candidate"], "請重新審查。")
    workflow.accept_appeal(case, staff)
    workflow.uphold_appeal(case, staff)
    workflow.issue_certificates(cycle, staff)
    db.session.commit()
    db.session.refresh(case)
    assert case.state.value == "certified"


def test_the_back_office_offers_no_csv_export(login, staff, hostile):
    client = login(staff)
    admin = client.application.extensions["admin"][0]

    exporting = [view.endpoint for view in admin._views if getattr(view, "can_export", False)]
    assert exporting == [], "a CSV export must neutralise = + - @ like the spreadsheets do"
    response = client.get("/admin/user/export/csv/")
    assert response.mimetype != "text/csv"


def test_the_county_pages_show_no_typed_text_raw(login, hostile, make_user):
    officer = make_user(
        "officer-x",
        role=Role.county_officer,
        county=db.session.scalar(sa.select(County).where(County.name == "臺北市")),
    )
    db.session.commit()
    client = login(officer)
    response = client.post(
        "/county/exports", data={"cycle_id": hostile["case"].cycle_id, "report": "cases"}
    )
    db.session.commit()
    jobs.run_pending()

    shown(client.get("/county/"))
    shown(client.get(response.headers["Location"]))
    download = client.get(response.headers["Location"] + "/download")
    workbook = load_workbook(io.BytesIO(download.data))
    names = [row[4] for row in workbook.active.iter_rows(min_row=2, values_only=True)]
    assert NAME in names
