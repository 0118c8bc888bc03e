"""County spreadsheets on both databases: what they contain, how they are typed, who gets them."""

import io
import tracemalloc
import zipfile
from datetime import datetime

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from admin_app import jobs
from admin_app.extensions import db
from admin_app.i18n import roc_date, to_taipei
from exports import spreadsheets
from models import COUNTY_NAMES, AuditEvent, CaseState, County, Job, JobState, Role
from views import spreadsheets_admin

from .factories import case_in, new_applicant

S = CaseState
HYPERLINK = '=HYPERLINK("http://example.com/x","點我")'
CASE_HEADERS = [
    "案號", "學年度", "縣市", "學校", "姓名", "職別", "e-mail",
    "送出日期", "送出日期（民國）",
    "形式審查結果", "形式審查日期", "形式審查日期（民國）",
    "初審判定", "初審判定日期", "初審判定日期（民國）",
    "複審判定", "複審判定日期", "複審判定日期（民國）",
    "申復提出日期", "申復提出日期（民國）", "申復結果", "申復結果日期", "申復結果日期（民國）",
    "目前狀態", "認證證號", "發證日期", "發證日期（民國）", "公告日期", "公告日期（民國）",
]  # fmt: skip


@pytest.fixture(autouse=True)
def back_office(app, tmp_path):
    """The export and import pages in the back office; jobs run when the test says so."""
    app.config.update(JOBS_IN_PROCESS=False, JOBS_FOLDER=str(tmp_path / "jobs"))
    if "spreadsheet_exports" not in app.blueprints:
        spreadsheets_admin.register(app.extensions["admin"][0])


def county(name):
    return db.session.scalar(sa.select(County).where(County.name == name))


@pytest.fixture
def taipei_school(make_school):
    return make_school("臺北市立信義國民中學", "臺北市")


@pytest.fixture
def cases(cycle, staff, taipei_school, make_school):
    """Taipei cases in telling states, one with formula-like text, and one case in Kaohsiung."""
    applicant = lambda **kw: new_applicant(cycle, school=kw.get("school", taipei_school))  # noqa: E731
    made = {
        "announced": case_in(S.announced, cycle, staff, applicant=applicant()),
        "appeal": case_in(S.appeal_review, cycle, staff, applicant=applicant()),
        "second_round": case_in(
            S.awaiting_assignment, cycle, staff, round_=2, applicant=applicant()
        ),
    }

    tricky_school = make_school("+1 實驗國民小學", "臺北市")
    tricky = applicant(school=tricky_school)
    tricky.name = HYPERLINK
    tricky.email = "@SUM(A1:A9)"
    made["tricky"] = case_in(S.returned, cycle, staff, applicant=tricky)
    minus = applicant()
    minus.name = "-2+3"
    made["minus"] = case_in(S.formal_review, cycle, staff, applicant=minus)

    made["kaohsiung"] = case_in(S.announced, cycle, staff)
    db.session.commit()
    return made


def run_jobs():
    db.session.commit()
    jobs.run_pending()
    db.session.expire_all()


def download(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == spreadsheets.MIME_TYPE
    return load_workbook(io.BytesIO(response.data))


def officer_export(client, cycle, report):
    response = client.post("/county/exports", data={"cycle_id": cycle.id, "report": report})
    assert response.status_code == 302
    job_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    run_jobs()
    return job_id


def rows_of(sheet):
    return [list(row) for row in sheet.iter_rows(min_row=2, values_only=True)]


def by_name(sheet):
    headers = [cell.value for cell in sheet[1]]
    return {
        row[headers.index("姓名")]: dict(zip(headers, row, strict=True))
        for row in sheet.iter_rows(min_row=2, values_only=True)
    }


# --- 案件總表 ---------------------------------------------------------------------------------


def test_officer_case_list_is_their_county_only(client, login, county_officer, cycle, cases):
    login(county_officer)
    job_id = officer_export(client, cycle, "cases")

    page = client.get(f"/county/jobs/{job_id}")
    assert "下載" in page.get_data(as_text=True) and "Refresh" not in page.headers
    workbook = download(client, f"/county/jobs/{job_id}/download")

    assert workbook.sheetnames == ["案件總表"]
    sheet = workbook["案件總表"]
    assert [cell.value for cell in sheet[1]] == CASE_HEADERS
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:AC{1 + 5}"
    assert sheet.column_dimensions["D"].width == 28
    rows = rows_of(sheet)
    assert len(rows) == 5
    assert {row[2] for row in rows} == {"臺北市"}
    assert cases["kaohsiung"].applicant.name not in {row[4] for row in rows}
    # 案號 first, so that a row leads back to its case
    assert sorted(row[0] for row in rows) == sorted(
        case.id for name, case in cases.items() if name != "kaohsiung"
    )

    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "request_export"))
    assert event.actor_id == county_officer.id and event.comment == "115學年度_臺北市_案件總表"


def test_case_list_cells(app, cycle, cases, tmp_path):
    path = tmp_path / "cases.xlsx"
    spreadsheets.write_case_list(path, cycle, county("臺北市"))
    sheet = load_workbook(path)["案件總表"]
    rows = by_name(sheet)

    announced = cases["announced"]
    row = rows[announced.applicant.name]
    assert row["學年度"] == 115 and row["學校"] == "臺北市立信義國民中學"
    assert row["職別"] == "教師" and row["e-mail"] == announced.applicant.email
    assert row["形式審查結果"] == "通過" and row["初審判定"] == "通過"
    assert row["複審判定"] is None and row["申復結果"] is None
    assert row["目前狀態"] == "已公告"
    assert row["認證證號"] == announced.certificate_number
    certified_day = to_taipei(announced.certified_at).date()
    assert isinstance(row["發證日期"], datetime) and row["發證日期"].date() == certified_day
    assert row["發證日期（民國）"] == roc_date(certified_day)
    assert isinstance(row["公告日期"], datetime)
    assert isinstance(row["送出日期"], datetime)
    assert row["送出日期（民國）"] == roc_date(announced.submitted_at)

    appeal = rows[cases["appeal"].applicant.name]
    assert appeal["初審判定"] == "未通過" and appeal["申復結果"] == "已受理"
    assert isinstance(appeal["申復提出日期"], datetime)
    assert appeal["目前狀態"] == "申復審查中" and appeal["認證證號"] is None

    second = rows[cases["second_round"].applicant.name]
    assert second["初審判定"] == "修正後複審" and second["複審判定"] is None
    assert second["目前狀態"] == "複審分發委員"

    returned = rows[HYPERLINK]
    assert returned["形式審查結果"] == "退件" and returned["目前狀態"] == "形式審查退件"

    date_cell = sheet.cell(row=2, column=CASE_HEADERS.index("送出日期") + 1)
    assert date_cell.is_date and date_cell.number_format == spreadsheets.DATE_FORMAT


def test_typed_text_never_becomes_a_formula(app, cycle, cases, tmp_path):
    path = tmp_path / "cases.xlsx"
    spreadsheets.write_case_list(path, cycle, county("臺北市"))
    sheet = load_workbook(path)["案件總表"]

    typed = {}
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str) and cell.value[:1] in "=+-@":
                typed[cell.value] = cell
    assert set(typed) == {HYPERLINK, "+1 實驗國民小學", "@SUM(A1:A9)", "-2+3"}
    for cell in typed.values():
        assert cell.data_type == "s"
        assert cell.quotePrefix
    # and in the file itself: no formula element anywhere
    with zipfile.ZipFile(path) as archive:
        assert b"<f>" not in archive.read("xl/worksheets/sheet1.xml")


def test_clean_text_drops_control_characters():
    assert spreadsheets.clean_text("王\x00小\x07明\t") == "王小明\t"


def test_staff_whole_country_workbook(client, login, staff, cycle, cases):
    login(staff)
    response = client.post(
        "/admin/exports/start", data={"cycle_id": cycle.id, "county": "all", "report": "cases"}
    )
    job_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    run_jobs()
    workbook = download(client, f"/admin/exports/jobs/{job_id}/download")

    assert workbook.sheetnames == ["總覽", *COUNTY_NAMES]
    assert len(rows_of(workbook["臺北市"])) == 5
    assert [row[2] for row in rows_of(workbook["高雄市"])] == ["高雄市"]
    assert rows_of(workbook["連江縣"]) == []
    assert workbook["連江縣"].auto_filter.ref == "A1:AC1"

    overview = workbook["總覽"]
    headers = [cell.value for cell in overview[1]]
    assert headers[0] == "縣市" and headers[-1] == "合計"
    totals = {row[0]: row[-1] for row in rows_of(overview)}
    assert totals["臺北市"] == 5 and totals["高雄市"] == 1 and totals["連江縣"] == 0
    assert totals["合計"] == 6
    assert overview.freeze_panes == "A2"


def test_cases_without_county_get_their_own_sheet(app, cycle, staff, tmp_path):
    case = case_in(S.formal_review, cycle, staff)
    case.county_id = None
    db.session.commit()

    path = tmp_path / "all.xlsx"
    spreadsheets.write_case_list(path, cycle, None)
    workbook = load_workbook(path)
    assert workbook.sheetnames[-1] == "未分縣市"
    assert len(rows_of(workbook["未分縣市"])) == 1


# --- 統計 and 證號清冊 -------------------------------------------------------------------------


def test_statistics_per_school_with_totals(client, login, county_officer, cycle, cases):
    login(county_officer)
    job_id = officer_export(client, cycle, "statistics")
    sheet = download(client, f"/county/jobs/{job_id}/download")["統計"]

    headers = [cell.value for cell in sheet[1]]
    assert headers[:2] == ["縣市", "學校"] and headers[-1] == "合計"
    assert headers[2:-1] == ["形式審查", "形式審查退件", "複審分發委員", "已公告", "申復審查中"]
    *schools, total = rows_of(sheet)
    assert schools == [
        ["臺北市", "+1 實驗國民小學", 0, 1, 0, 0, 0, 1],
        ["臺北市", "臺北市立信義國民中學", 1, 0, 1, 1, 1, 4],
    ]
    assert total == ["合計", None, 1, 1, 1, 1, 1, 5]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:H4"


def test_certificate_list(client, login, county_officer, cycle, cases):
    login(county_officer)
    job_id = officer_export(client, cycle, "certificates")
    sheet = download(client, f"/county/jobs/{job_id}/download")["證號清冊"]

    assert [cell.value for cell in sheet[1]][:3] == ["認證證號", "學年度", "縣市"]
    rows = rows_of(sheet)
    assert len(rows) == 1
    assert rows[0][0] == cases["announced"].certificate_number
    assert rows[0][4] == cases["announced"].applicant.name
    assert isinstance(rows[0][6], datetime) and rows[0][-1] == "已公告"


# --- who may have what ------------------------------------------------------------------------


@pytest.fixture
def other_officer(make_user):
    officer = make_user("officer2", role=Role.county_officer, county=county("高雄市"))
    db.session.commit()
    return officer


def test_officer_cannot_name_another_county(client, login, county_officer, cycle):
    login(county_officer)
    response = client.post(
        "/county/exports",
        data={"cycle_id": cycle.id, "report": "cases", "county_id": county("高雄市").id},
    )
    assert response.status_code == 403
    assert db.session.scalar(sa.select(sa.func.count(Job.id))) == 0


def test_officer_cannot_reach_another_countys_job(
    client, login, county_officer, other_officer, staff, cycle, cases
):
    login(other_officer)
    theirs = officer_export(client, cycle, "cases")
    staff_job = jobs.enqueue(
        "export", spreadsheets.export_parameters("cases", cycle, county("高雄市")), staff
    )
    run_jobs()

    client = login(county_officer)
    for job_id in (theirs, staff_job.id):
        assert client.get(f"/county/jobs/{job_id}").status_code == 404
        assert client.get(f"/county/jobs/{job_id}/download").status_code == 404
        assert client.get(f"/admin/exports/jobs/{job_id}/download").status_code == 403
        assert client.get(f"/admin/exports/jobs/{job_id}").status_code == 403
    assert client.get("/county/jobs/999999").status_code == 404


def test_officer_job_of_a_county_they_no_longer_belong_to(
    client, login, county_officer, cycle, cases
):
    login(county_officer)
    job_id = officer_export(client, cycle, "cases")
    county_officer.county = county("新北市")
    db.session.commit()

    assert client.get(f"/county/jobs/{job_id}/download").status_code == 404


def test_staff_may_download_an_officers_file(client, login, county_officer, staff, cycle, cases):
    login(county_officer)
    job_id = officer_export(client, cycle, "cases")

    client = login(staff)
    workbook = download(client, f"/admin/exports/jobs/{job_id}/download")
    assert len(rows_of(workbook["案件總表"])) == 5


@pytest.mark.parametrize("role", ["teacher", "reviewer"])
def test_other_roles_have_no_county_pages(request, client, login, role, county_officer, cycle):
    login(county_officer)
    job_id = officer_export(client, cycle, "cases")

    login(request.getfixturevalue(role))
    assert client.get("/county/").status_code == 403
    assert client.post("/county/exports", data={"cycle_id": cycle.id}).status_code == 403
    assert client.get(f"/county/jobs/{job_id}/download").status_code == 403
    assert client.get(f"/admin/exports/jobs/{job_id}/download").status_code == 403


def test_anonymous_is_sent_to_login(client, cycle):
    response = client.get("/county/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_officer_without_county_is_refused(client, login, make_user):
    officer = make_user("officer_nowhere", role=Role.county_officer)
    db.session.commit()
    login(officer)
    assert client.get("/county/").status_code == 403


def test_staff_are_sent_to_the_back_office(client, login, staff):
    login(staff)
    response = client.get("/county/")
    assert response.status_code == 302 and "/admin/exports" in response.headers["Location"]


def test_county_page_lists_cycles_and_reports(client, login, county_officer, cycle):
    login(county_officer)
    page = client.get("/county/").get_data(as_text=True)
    assert "臺北市教專中心・報表下載" in page
    assert cycle.name in page
    for title in ("產生案件總表", "產生統計", "產生證號清冊"):
        assert title in page


def test_progress_page_reloads_until_done(client, login, county_officer, cycle, cases):
    login(county_officer)
    response = client.post("/county/exports", data={"cycle_id": cycle.id, "report": "cases"})
    page = client.get(response.headers["Location"])

    text = page.get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="3">' in text
    assert page.headers["Refresh"] == "3"
    assert "<script" not in text
    assert "排隊中" in text


def test_expired_file_is_not_found(client, login, county_officer, cycle, cases):
    login(county_officer)
    job_id = officer_export(client, cycle, "cases")
    job = db.session.get(Job, job_id)
    assert job.state is JobState.done
    jobs.purge_old_results(days=-1)

    assert client.get(f"/county/jobs/{job_id}/download").status_code == 404
    assert "超過保存期限" in client.get(f"/county/jobs/{job_id}").get_data(as_text=True)


# --- cost: queries per chunk, memory flat ---------------------------------------------------


class Statements:
    def __init__(self):
        self.count = 0

    def __call__(self, *args, **kwargs):
        self.count += 1


def _count_statements(function):
    counter = Statements()
    sa.event.listen(db.engine, "before_cursor_execute", counter)
    try:
        function()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", counter)
    return counter.count


def test_no_query_per_row(app, cycle, tmp_path):
    from bench.export_benchmark import insert_synthetic_cases

    insert_synthetic_cases(cycle, 20, ["臺北市"], schools_per_county=3)
    few = _count_statements(
        lambda: spreadsheets.write_case_list(tmp_path / "a.xlsx", cycle, county("臺北市"))
    )
    insert_synthetic_cases(cycle, 400, ["臺北市"], schools_per_county=3)
    many = _count_statements(
        lambda: spreadsheets.write_case_list(tmp_path / "b.xlsx", cycle, county("臺北市"))
    )
    assert few == many


def test_memory_does_not_grow_with_rows(app, cycle, tmp_path, monkeypatch):
    from bench.export_benchmark import insert_synthetic_cases

    monkeypatch.setattr(spreadsheets, "CHUNK", 200)
    taipei = county("臺北市")

    def peak(count, name):
        insert_synthetic_cases(cycle, count, ["臺北市"], schools_per_county=5)
        db.session.expire_all()
        tracemalloc.start()
        spreadsheets.write_case_list(tmp_path / name, cycle, taipei)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top

    small = peak(400, "small.xlsx")
    large = peak(3600, "large.xlsx")  # 4,000 rows in all, ten times as many
    assert large < small * 1.5 + 1_000_000, (small, large)
    assert large < 20 * 2**20
