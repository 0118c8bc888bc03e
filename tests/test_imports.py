"""Imports of training hours and accounts on both databases: preview, all or nothing, idempotent."""

import io
import os
import zipfile
from datetime import date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from openpyxl import Workbook, load_workbook

from admin_app import jobs
from admin_app.extensions import db
from exports import imports
from exports.imports import ImportRefused, plan_accounts, plan_training
from models import AuditEvent, Job, JobState, Position, Role, School, TrainingRecord, User
from views import spreadsheets_admin

TRAINING_HEADERS = ["教師帳號", "姓名", "課程名稱", "時數", "完成日期"]
ACCOUNT_HEADERS = ["帳號", "姓名", "角色", "e-mail", "學校", "縣市", "學校代碼"]


@pytest.fixture(autouse=True)
def back_office(app, tmp_path):
    """The import pages in the back office; jobs run when the test says so."""
    app.config.update(JOBS_IN_PROCESS=False, JOBS_FOLDER=str(tmp_path / "jobs"))
    if "spreadsheet_imports" not in app.blueprints:
        spreadsheets_admin.register(app.extensions["admin"][0])


def sheet_file(tmp_path, rows, headers=TRAINING_HEADERS, name="import.xlsx"):
    """An .xlsx file with a header row and the given rows."""
    workbook = Workbook()
    sheet = workbook.active
    if headers is not None:
        sheet.append(headers)
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return str(path)


@pytest.fixture
def daan(make_school):
    school = make_school("臺北市立大安國民中學", "臺北市")
    school.code = "TPE-9001"
    db.session.commit()
    return school


@pytest.fixture
def wang(make_user, daan):
    user = make_user("t001", name="王小明", school=daan)
    db.session.commit()
    return user


@pytest.fixture
def chen(make_user, daan):
    user = make_user("t002", name="陳美玲", school=daan)
    db.session.commit()
    return user


def training_count():
    return db.session.scalar(sa.select(sa.func.count(TrainingRecord.id)))


def user_count():
    return db.session.scalar(sa.select(sa.func.count(User.id)))


def errors_of(plan):
    ordered = sorted(plan.errors, key=lambda error: error.row)
    return [(error.row, error.column, error.reason) for error in ordered]


# --- training hours -------------------------------------------------------------------------


def test_training_preview_writes_nothing_then_apply_writes_all(app, tmp_path, wang, chen):
    path = sheet_file(
        tmp_path,
        [
            ("t001", "王小明", "進階培訓（一）", 3, "113/08/15"),
            ("t001", "王小明", "進階培訓（二）", 6, "114/03/01"),
            ("t002", "陳美玲", "進階培訓（一）", 3, "2024-08-15"),
        ],
    )

    plan = plan_training(path)
    assert (len(plan.additions), len(plan.updates), plan.unchanged, plan.errors) == (3, 0, 0, [])
    assert plan.summary()["additions"][0] == [
        2,
        "t001",
        "王小明",
        "進階培訓（一）",
        "3",
        "113/08/15",
        113,
    ]
    assert training_count() == 0

    imports.apply_training(plan, None)
    db.session.commit()
    records = db.session.scalars(
        sa.select(TrainingRecord).order_by(TrainingRecord.user_id, TrainingRecord.completed_on)
    ).all()
    assert [
        (r.user.login, r.course, r.hours, r.completed_on, r.academic_year) for r in records
    ] == [
        ("t001", "進階培訓（一）", Decimal("3.0"), date(2024, 8, 15), 113),
        ("t001", "進階培訓（二）", Decimal("6.0"), date(2025, 3, 1), 113),
        ("t002", "進階培訓（一）", Decimal("3.0"), date(2024, 8, 15), 113),
    ]
    assert all(record.advanced for record in records)
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "import_training"))
    assert event.comment == "匯入研習時數：新增 3 筆、更新 0 筆、未變更 0 筆。"


def test_the_same_file_twice_changes_nothing(app, tmp_path, wang):
    path = sheet_file(tmp_path, [("t001", "王小明", "進階培訓（一）", 3, "113/08/15")])
    imports.apply_training(plan_training(path), None)
    db.session.commit()

    again = plan_training(path)
    assert (len(again.additions), len(again.updates), again.unchanged) == (0, 0, 1)
    imports.apply_training(again, None)
    db.session.commit()
    assert training_count() == 1


def test_changed_hours_are_an_update(app, tmp_path, wang):
    first = sheet_file(
        tmp_path, [("t001", "王小明", "進階培訓（一）", 3, "113/08/15")], name="a.xlsx"
    )
    imports.apply_training(plan_training(first), None)
    db.session.commit()

    second = sheet_file(
        tmp_path, [("t001", "王小明", "進階培訓（一）", 4.5, "113/08/15")], name="b.xlsx"
    )
    plan = plan_training(second)
    assert (len(plan.additions), len(plan.updates), plan.unchanged) == (0, 1, 0)
    assert plan.summary()["updates"][0][-1] == "時數 3 → 4.5"
    imports.apply_training(plan, None)
    db.session.commit()
    assert db.session.scalar(sa.select(TrainingRecord.hours)) == Decimal("4.5")


def test_messy_cells_are_understood(app, tmp_path, wang):
    path = sheet_file(
        tmp_path,
        [
            (" t001 ", "王 小明", "  課程A  ", "３", "１１３／０８／１５"),
            ("ｔ００１", "王小明　", "課程B", "3.0", "113.8.15"),
            ("t001", "王小明", "課程C", 3, datetime(2024, 8, 15)),
            ("t001", "王小明", "課程D", " 2.5 ", "2024-08-15"),
            ("t001", "王小明", "課程E", 1.5, "2024/8/15"),
            ("t001", "王小明", "課程F", "2小時", "113年8月1日"),
            ("t001", "王小明", "課程G", "２．５", "1130731"),
            ("t001", "王小明", "課程H", 1, 45519),
            ("t001", "王小明", "課程I", 1, " 113 / 8 / 15 "),
            (None, None, None, None, None),
        ],
    )
    plan = plan_training(path)

    assert plan.errors == []
    added = {entry["values"]["course"]: entry["values"] for entry in plan.additions}
    assert sorted(added) == [
        "課程A",
        "課程B",
        "課程C",
        "課程D",
        "課程E",
        "課程F",
        "課程G",
        "課程H",
        "課程I",
    ]
    assert {course: values["hours"] for course, values in added.items()} == {
        "課程A": Decimal("3.0"),
        "課程B": Decimal("3.0"),
        "課程C": Decimal("3.0"),
        "課程D": Decimal("2.5"),
        "課程E": Decimal("1.5"),
        "課程F": Decimal("2.0"),
        "課程G": Decimal("2.5"),
        "課程H": Decimal("1.0"),
        "課程I": Decimal("1.0"),
    }
    dates = {course: values["completed_on"] for course, values in added.items()}
    assert set(dates.values()) == {date(2024, 8, 15), date(2024, 8, 1), date(2024, 7, 31)}
    assert dates["課程F"] == date(2024, 8, 1) and added["課程F"]["academic_year"] == 113
    assert dates["課程G"] == date(2024, 7, 31) and added["課程G"]["academic_year"] == 112
    assert plan.rows == 9


def test_row_errors_are_listed_and_nothing_is_written(app, tmp_path, wang, make_user):
    make_user("r001", role=Role.reviewer, name="林委員")
    db.session.commit()
    path = sheet_file(
        tmp_path,
        [
            ("t001", "王小明", "進階培訓（一）", 3, "113/08/15"),
            ("nobody", "無名氏", "進階培訓（一）", 3, "113/08/15"),
            ("t001", "李大同", "進階培訓（一）", 3, "113/08/15"),
            ("t001", "王小明", "課程", "三小時", "113/08/15"),
            ("t001", "王小明", "課程", 0, "113/08/15"),
            ("t001", "王小明", "課程", "1.25", "113/08/15"),
            ("t001", "王小明", "課程", 1, "113/02/30"),
            ("t001", "王小明", "課程", 1, "明天"),
            ("t001", "王小明", "課程", 1, "2999-01-01"),
            ("t001", "王小明", "", 1, "113/08/15"),
            ("t001", "王小明", "進階培訓（一）", 5, "2024-08-15"),
            ("r001", "林委員", "課程", 1, "113/08/15"),
            ("", "", "課程", None, None),
        ],
    )
    plan = plan_training(path)

    assert errors_of(plan) == [
        (3, "教師帳號", "找不到帳號「nobody」。"),
        (4, "姓名", "姓名「李大同」與帳號「t001」登錄的姓名「王小明」不符。"),
        (5, "時數", "時數「三小時」不是數字，例如 3 或 1.5。"),
        (6, "時數", "時數必須大於 0。"),
        (7, "時數", "時數最多只能有一位小數。"),
        (8, "完成日期", "「113/02/30」不是有效的日期。"),
        (9, "完成日期", "無法辨識日期「明天」，請寫成 113/08/15（民國）或 2024-08-15（西元）。"),
        (10, "完成日期", "完成日期 1088/01/01 晚於今天，請確認。"),
        (11, "課程名稱", "必填，不可空白。"),
        (12, "課程名稱", "與第 2 列重複（同一帳號、課程名稱與完成日期）。"),
        (13, "教師帳號", "帳號「r001」不是教師或校長帳號。"),
        (14, "教師帳號", "必填，不可空白。"),
        (14, "姓名", "必填，不可空白。"),
        (14, "時數", "必填，不可空白。"),
        (14, "完成日期", "必填，不可空白。"),
    ]
    with pytest.raises(ImportRefused) as refused:
        imports.apply_training(plan, None)
    assert refused.value.message == "檔案有 15 處錯誤，沒有匯入任何資料。請修正後重新匯入。"
    db.session.rollback()
    assert training_count() == 0


def test_formulas_are_refused_as_formulas(app, tmp_path, wang):
    path = sheet_file(
        tmp_path,
        [
            ("t001", "王小明", "=1+1", 3, "113/08/15"),
            ("t001", "王小明", "進階培訓（二）", "=SUM(1,2)", "113/08/15"),
        ],
    )

    plan = plan_training(path)

    refusal = "不接受公式，請直接填入內容（可在 Excel 以「選擇性貼上 → 值」換成計算結果）。"
    assert errors_of(plan) == [(2, "課程名稱", refusal), (3, "時數", refusal)]


def _zip_without_workbook():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    return buffer.getvalue()


def _workbook_with_damaged_sheet():
    workbook = Workbook()
    workbook.active.append(TRAINING_HEADERS)
    good = io.BytesIO()
    workbook.save(good)
    damaged = io.BytesIO()
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = content[: len(content) // 2]
            target.writestr(item, content)
    return damaged.getvalue()


BROKEN = {
    "text": (
        b"login,name\nt001,x\n",
        "這不是 Excel 活頁簿（.xlsx）檔案，請用系統提供的範本填寫後再匯入。",
    ),
    "empty": (b"", "檔案是空的（0 位元組），請重新選擇檔案。"),
    "encrypted": (
        imports.OLE_SIGNATURE + bytes(1016),
        "無法讀取此檔案：檔案設有密碼保護，或是舊版 Excel 97-2003（.xls）格式。"
        "請取消檔案密碼，並另存為「Excel 活頁簿（.xlsx）」後再匯入。",
    ),
    "zip": (_zip_without_workbook(), "檔案已損毀或不是 Excel 活頁簿（.xlsx），無法讀取。"),
    "damaged": (
        _workbook_with_damaged_sheet(),
        "檔案已損毀或不是 Excel 活頁簿（.xlsx），無法讀取。",
    ),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_files_that_are_not_workbooks(app, tmp_path, kind):
    content, message = BROKEN[kind]
    path = tmp_path / "broken.xlsx"
    path.write_bytes(content)

    for plan in (plan_training, plan_accounts):
        with pytest.raises(ImportRefused) as refused:
            plan(str(path))
        assert refused.value.message == message


def test_missing_columns(app, tmp_path):
    path = sheet_file(
        tmp_path, [("t001", "王小明", "課程")], headers=["教師帳號", "姓名", "課程名稱"]
    )
    with pytest.raises(ImportRefused) as refused:
        plan_training(path)
    assert refused.value.message == (
        "缺少必要欄位：時數、完成日期。第一列須為標題列，請使用系統提供的範本。"
    )


def test_headers_may_be_reordered_and_decorated(app, tmp_path, wang):
    path = sheet_file(
        tmp_path,
        [("113/08/15", 3, "課程", "王小明", "t001", "備註")],
        headers=["完成日期*", " 時 數 ", "課程名稱", "姓名", "教師帳號", "備註"],
    )
    plan = plan_training(path)
    assert plan.errors == [] and len(plan.additions) == 1


def test_empty_sheet(app, tmp_path):
    path = sheet_file(tmp_path, [], headers=None)
    with pytest.raises(ImportRefused) as refused:
        plan_training(path)
    assert refused.value.message == "工作表是空的：找不到標題列與資料。請使用系統提供的範本。"


def test_header_without_rows(app, tmp_path):
    path = sheet_file(tmp_path, [])
    with pytest.raises(ImportRefused) as refused:
        plan_training(path)
    assert refused.value.message == "工作表只有標題列，沒有任何資料列。"


def test_row_cap(app, tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    path = sheet_file(tmp_path, [("t001", "王小明", f"課程{n}", 1, "113/08/15") for n in range(4)])
    with pytest.raises(ImportRefused) as refused:
        plan_training(path)
    assert refused.value.message == "資料超過 3 列的上限，請分成幾個檔案匯入。"


# --- accounts -------------------------------------------------------------------------------


def test_accounts_preview_and_apply(app, client, tmp_path, wang, daan):
    path = sheet_file(
        tmp_path,
        [
            ("t001", "王小明", "教師", "t001@example.edu.tw", "臺北市立大安國民中學", "臺北市", ""),
            (
                "t002",
                "陳美玲",
                "校長",
                "T002@Example.edu.tw",
                "台北市立 大安國民中學",
                "台北市",
                "",
            ),
            ("r001", "林委員", "審查委員", "r001@example.edu.tw", "", "", "TPE-9001"),
            ("c001", "臺北市教專中心", "縣市教專中心", "c001@example.edu.tw", "", "臺北市", ""),
        ],
        headers=ACCOUNT_HEADERS,
    )
    plan = plan_accounts(path)
    assert plan.errors == []
    assert (len(plan.additions), len(plan.updates), plan.unchanged) == (3, 0, 1)
    assert user_count() == 1

    imports.apply_accounts(plan, None)
    db.session.commit()
    accounts = {
        user.login: user for user in db.session.scalars(sa.select(User).where(User.login != "t001"))
    }
    principal, reviewer, officer = accounts["t002"], accounts["r001"], accounts["c001"]
    assert (principal.role, principal.position, principal.school_id) == (
        Role.applicant,
        Position.principal,
        daan.id,
    )
    assert principal.email == "T002@example.edu.tw"
    assert (reviewer.role, reviewer.school_id, reviewer.county_id) == (
        Role.reviewer,
        daan.id,
        daan.county_id,
    )
    assert (officer.role, officer.school_id, officer.county.name) == (
        Role.county_officer,
        None,
        "臺北市",
    )
    assert all(user.password_hash == "" for user in accounts.values())

    response = client.post("/login", data={"login": "t002", "password": ""})
    assert response.status_code != 302
    response = client.post("/login", data={"login": "t002", "password": "anything-at-all"})
    assert "帳號或密碼錯誤" in response.get_data(as_text=True)

    again = plan_accounts(path)
    assert (len(again.additions), len(again.updates), again.unchanged) == (0, 0, 4)


def test_account_changes_are_updates(app, tmp_path, wang, make_school):
    other = make_school("新北市立板橋國民小學", "新北市")
    db.session.commit()
    path = sheet_file(
        tmp_path,
        [("t001", "王大明", "教師", "new@example.edu.tw", "新北市立板橋國民小學", "新北市", "")],
        headers=ACCOUNT_HEADERS,
    )
    plan = plan_accounts(path)
    assert (len(plan.additions), len(plan.updates), plan.unchanged) == (0, 1, 0)
    assert plan.summary()["updates"][0][-1] == (
        "姓名：王小明 → 王大明；e-mail：t001@example.edu.tw → new@example.edu.tw；"
        "學校：臺北市立大安國民中學 → 新北市立板橋國民小學"
    )
    imports.apply_accounts(plan, None)
    db.session.commit()
    db.session.refresh(wang)
    assert (wang.name, wang.email, wang.school_id) == ("王大明", "new@example.edu.tw", other.id)
    assert wang.password_hash != ""


def test_account_row_errors(app, tmp_path, wang, staff, daan):
    path = sheet_file(
        tmp_path,
        [
            ("t002", "陳美玲", "教師", "t002@example.edu.tw", "臺北市立大安國民中學", "臺北市", ""),
            ("t002", "陳美玲", "教師", "t002@example.edu.tw", "臺北市立大安國民中學", "臺北市", ""),
            ("t003", "張三", "老師", "t003@example.edu.tw", "臺北市立大安國民中學", "臺北市", ""),
            ("t004", "李四", "教師", "not-an-email", "臺北市立大安國民中學", "臺北市", ""),
            ("t005", "王五", "教師", "t005@example.edu.tw", "不存在國民小學", "臺北市", ""),
            ("t006", "趙六", "教師", "t006@example.edu.tw", "", "臺北市", ""),
            ("t007", "錢七", "教師", "t007@example.edu.tw", "臺北市立大安國民中學", "", ""),
            ("t008", "孫八", "教師", "t008@example.edu.tw", "", "", "NOPE-1"),
            ("t009", "周九", "教師", "t009@example.edu.tw", "別的學校", "", "TPE-9001"),
            ("c002", "火星教專", "縣市教專中心", "c002@example.edu.tw", "", "火星市", ""),
            ("c003", "某教專", "縣市教專中心", "c003@example.edu.tw", "", "", ""),
            ("staff1", "承辦人", "教師", "s@example.edu.tw", "臺北市立大安國民中學", "臺北市", ""),
            ("王老師", "王老師", "教師", "w@example.edu.tw", "臺北市立大安國民中學", "臺北市", ""),
        ],
        headers=ACCOUNT_HEADERS,
    )
    plan = plan_accounts(path)

    assert errors_of(plan) == [
        (3, "帳號", "帳號「t002」與第 2 列重複。"),
        (4, "角色", "無法辨識角色「老師」，請填 教師、校長、審查委員、縣市教專中心 其中之一。"),
        (5, "e-mail", "e-mail「not-an-email」格式不正確。"),
        (
            6,
            "學校",
            "「臺北市」沒有名為「不存在國民小學」的學校。請先在後台新增學校，或填寫已登錄的學校代碼。",
        ),
        (7, "學校", "此角色必須填寫學校。"),
        (8, "縣市", "請填寫學校所在縣市（或填寫學校代碼）。"),
        (9, "學校代碼", "找不到學校代碼「NOPE-1」。"),
        (10, "學校", "學校代碼「TPE-9001」是「臺北市立大安國民中學」，與填寫的「別的學校」不符。"),
        (11, "縣市", "找不到縣市「火星市」。"),
        (12, "縣市", "縣市教專中心帳號必須填寫縣市。"),
        (13, "帳號", "帳號「staff1」是認證中心人員或系統管理員帳號，不能以匯入修改。"),
        (14, "帳號", "新帳號只能使用英文字母、數字及 . _ @ -，長度 1 至 64 字。"),
    ]
    with pytest.raises(ImportRefused):
        imports.apply_accounts(plan, None)
    db.session.rollback()
    assert user_count() == 2


# --- the back office and the command line ---------------------------------------------------


def upload(client, dataset, path):
    with open(path, "rb") as handle:
        return client.post(
            "/admin/imports/upload",
            data={"dataset": dataset, "file": (handle, "研習時數.xlsx")},
            content_type="multipart/form-data",
        )


def run_jobs():
    db.session.commit()
    jobs.run_pending()
    db.session.expire_all()


def test_back_office_preview_then_confirm(client, login, staff, tmp_path, wang):
    path = sheet_file(
        tmp_path,
        [
            ("t001", "王小明", "進階培訓（一）", 3, "113/08/15"),
            ("t001", "王小明", "進階培訓（二）", 6, "114/03/01"),
        ],
    )
    login(staff)
    response = upload(client, "training", path)
    assert response.status_code == 302
    preview_url = response.headers["Location"]
    assert "排隊中" in client.get(preview_url).get_data(as_text=True)

    run_jobs()
    page = client.get(preview_url).get_data(as_text=True)
    assert "研習時數匯入預覽" in page and "確認匯入（新增 2、更新 0）" in page
    assert training_count() == 0

    response = client.post(preview_url + "/apply")
    apply_url = response.headers["Location"]
    assert client.post(preview_url + "/apply").headers["Location"] == apply_url
    run_jobs()
    assert training_count() == 2
    assert "已匯入。" in client.get(apply_url).get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Job.id))) == 2


def test_back_office_refuses_to_apply_a_preview_with_errors(client, login, staff, tmp_path, wang):
    path = sheet_file(tmp_path, [("nobody", "無名氏", "進階培訓", 3, "113/08/15")])
    login(staff)
    preview_url = upload(client, "training", path).headers["Location"]
    run_jobs()

    page = client.get(preview_url).get_data(as_text=True)
    assert "檔案有 1 處錯誤，不能匯入" in page and "找不到帳號「nobody」。" in page
    assert "確認匯入" not in page
    response = client.post(preview_url + "/apply", follow_redirects=True)
    assert "只有沒有錯誤的預覽才能匯入。" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Job.id))) == 1


def test_apply_checks_the_file_again(client, login, staff, tmp_path, wang):
    path = sheet_file(tmp_path, [("t001", "王小明", "進階培訓", 3, "113/08/15")])
    login(staff)
    preview_url = upload(client, "training", path).headers["Location"]
    run_jobs()
    apply_url = client.post(preview_url + "/apply").headers["Location"]
    # the account is renamed between the preview and the import
    wang.name = "王曉明"
    db.session.commit()
    run_jobs()

    job = db.session.scalar(sa.select(Job).where(Job.kind == "import_apply"))
    assert job.state is JobState.failed
    assert job.error == "檔案有 1 處錯誤，沒有匯入任何資料。請修正後重新匯入。"
    assert "檔案有 1 處錯誤" in client.get(apply_url).get_data(as_text=True)
    assert training_count() == 0


def test_back_office_says_at_once_when_a_file_is_no_workbook(client, login, staff, tmp_path):
    path = tmp_path / "hours.xlsx"
    path.write_bytes(imports.OLE_SIGNATURE + bytes(100))
    login(staff)
    response = upload(client, "training", str(path))

    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "檔案設有密碼保護" in page
    assert db.session.scalar(sa.select(sa.func.count(Job.id))) == 0
    assert os.listdir(client.application.config["JOBS_FOLDER"]) == []


def test_broken_file_fails_the_preview_job_with_its_message(client, login, staff, tmp_path):
    path = sheet_file(tmp_path, [], headers=["教師帳號"])
    login(staff)
    preview_url = upload(client, "training", path).headers["Location"]
    run_jobs()
    assert "缺少必要欄位：姓名、課程名稱、時數、完成日期" in client.get(preview_url).get_data(
        as_text=True
    )


def test_import_pages_are_staff_only(client, login, county_officer, wang):
    login(county_officer)
    assert client.get("/admin/imports/").status_code == 403
    assert client.get("/admin/imports/template/training.xlsx").status_code == 403
    login(wang)
    assert client.post("/admin/imports/upload").status_code == 403


def test_accounts_page_says_new_accounts_have_no_password(client, login, staff):
    login(staff)
    page = client.get("/admin/imports/").get_data(as_text=True)
    assert "新帳號不會設定密碼" in page
    assert "下載研習時數匯入範本" in page and "下載帳號匯入範本" in page


@pytest.mark.parametrize(
    ("dataset", "headers"), [("training", TRAINING_HEADERS), ("accounts", ACCOUNT_HEADERS)]
)
def test_templates(client, login, staff, tmp_path, dataset, headers):
    login(staff)
    response = client.get(f"/admin/imports/template/{dataset}.xlsx")
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.data))

    sheet = workbook.worksheets[0]
    assert [cell.value for cell in sheet[1]] == headers
    assert sheet.max_row == 2 and workbook.sheetnames[1] == "說明"
    path = tmp_path / "template.xlsx"
    path.write_bytes(response.data)
    assert len(imports.read_rows(str(path), imports.DATASETS[dataset].fields)) == 1
    assert client.get("/admin/imports/template/other.xlsx").status_code == 404


def test_command_line_previews_then_applies(app, tmp_path, wang):
    path = sheet_file(tmp_path, [("t001", "王小明", "進階培訓（一）", 3, "113/08/15")])
    runner = app.test_cli_runner()

    result = runner.invoke(args=["import-training", path])
    assert result.exit_code == 0, result.output
    assert "共 1 列：新增 1、更新 0、未變更 0、錯誤 0。" in result.output
    assert "這只是預覽" in result.output
    assert training_count() == 0

    result = runner.invoke(args=["import-training", path, "--apply"])
    assert result.exit_code == 0 and "已匯入。" in result.output
    db.session.expire_all()
    assert training_count() == 1


def test_command_line_lists_errors_and_writes_nothing(app, tmp_path, wang):
    path = sheet_file(
        tmp_path,
        [
            ("t001", "王小明", "進階培訓（一）", 3, "113/08/15"),
            ("nobody", "某人", "課程", 1, "113/8/1"),
        ],
    )
    result = app.test_cli_runner().invoke(args=["import-training", path, "--apply"])

    assert result.exit_code == 1
    assert "第 3 列｜教師帳號｜找不到帳號「nobody」。" in result.output
    assert "檔案有錯誤，沒有匯入任何資料。" in result.output
    assert training_count() == 0


def test_command_line_accounts_and_unreadable_file(app, tmp_path, daan):
    path = sheet_file(
        tmp_path,
        [("t010", "新老師", "教師", "t010@example.edu.tw", "", "", "TPE-9001")],
        headers=ACCOUNT_HEADERS,
    )
    result = app.test_cli_runner().invoke(args=["import-accounts", path, "--apply"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.scalar(sa.select(User.school_id).where(User.login == "t010")) == daan.id

    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a workbook")
    result = app.test_cli_runner().invoke(args=["import-accounts", str(broken)])
    assert result.exit_code == 1 and "這不是 Excel 活頁簿" in result.output


def test_school_lookup_ignores_spaces_and_tai(app, tmp_path, daan):
    assert imports.name_key("台北市立 大安國民中學") == imports.name_key(daan.name)
    assert db.session.scalar(sa.select(School.code).where(School.id == daan.id)) == "TPE-9001"


def test_a_concurrent_change_fails_the_import_whole(
    client, login, staff, tmp_path, wang, monkeypatch
):
    path = sheet_file(
        tmp_path,
        [
            ("t001", "王小明", "進階培訓（一）", 3, "113/08/15"),
            ("t001", "王小明", "進階培訓（二）", 3, "113/09/15"),
        ],
    )
    login(staff)
    preview_url = upload(client, "training", path).headers["Location"]
    run_jobs()

    original = imports.DATASETS["training"]

    def plan_then_someone_else_writes(path, progress=None):
        plan = original.plan(path, progress)
        with db.engine.begin() as connection:
            connection.execute(
                sa.insert(TrainingRecord.__table__).values(
                    user_id=wang.id,
                    course="進階培訓（二）",
                    hours=1,
                    completed_on=date(2024, 9, 15),
                    academic_year=113,
                    advanced=True,
                )
            )
        return plan

    monkeypatch.setitem(
        imports.DATASETS,
        "training",
        imports.Dataset(
            "training",
            original.title,
            original.fields,
            plan_then_someone_else_writes,
            original.apply,
            original.preview_headers,
        ),
    )
    client.post(preview_url + "/apply")
    run_jobs()

    job = db.session.scalar(sa.select(Job).where(Job.kind == "import_apply"))
    assert job.state is JobState.failed
    assert job.error == "資料剛被其他作業同時修改，沒有寫入任何資料。請重新上傳預覽後再試。"
    assert db.session.scalars(sa.select(TrainingRecord.course)).all() == ["進階培訓（二）"]
