"""Spreadsheets read back in: training hours and accounts, previewed first, then applied at once.

Both imports work in two steps. `plan_*` reads the file and compares every row with the
database without writing anything: rows to add, rows to update, unchanged rows, and row errors
(row number, column, reason). `apply_*` writes a plan in the caller's transaction, and refuses
one that has any error, so a file is imported whole or not at all. Rows are matched on the login
(accounts) or on login + course + completion date (training), so importing the same file twice
changes nothing the second time.

What is accepted in a cell, because that is what arrives from schools:
- full-width digits and punctuation (１１３／０８／１５), stray and full-width spaces;
- dates as real date cells, ROC text (113/08/15, 113.8.15, 113-8-15, 113年8月15日, 1130815) or
  Gregorian text (2024-08-15, 2024/8/15, 20240815), and Excel day numbers in a general cell;
- hours as numbers or text (3, 3.0, ３, 3.5小時), at most one decimal place.

Accounts refuse a school that is not in the database: a school is found by 學校代碼 when that
column is filled, else by 縣市 and 學校 name (臺/台 and spaces do not matter). Creating schools
from typed names would turn every typo and every "台北市立…" against "臺北市立…" into a second
school and split that school's cases in the county spreadsheets; staff add missing schools in the
back office, then import again. New accounts get no password (an empty hash): nobody can log in
with them until staff set one.
"""

import logging
import os
import re
import unicodedata
import uuid
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from xml.etree import ElementTree

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from openpyxl import load_workbook
from openpyxl.utils.datetime import from_excel
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

from admin_app.extensions import db
from admin_app.i18n import TAIPEI, _, _l, academic_year_of, now_utc, roc_date
from admin_app.jobs import JobFailed, JobResult, NullProgress, jobs_folder
from models import County, Position, Role, School, TrainingRecord, User
from models.operations import record_event

log = logging.getLogger(__name__)

MAX_ROWS = 50_000
MAX_COLUMNS = 40
# a sheet whose data stops for this many rows has ended (Excel often "uses" a million rows)
EMPTY_RUN_ENDS_SHEET = 1000
# what a workbook may unpack to; a bigger one is refused before it is parsed
MAX_UNPACKED_BYTES = 300 * 1024 * 1024
MAX_ERRORS_KEPT = 500
SAMPLE_ROWS = 50
WRITE_BATCH = 1000

# what openpyxl raises on a damaged or foreign file, while opening it or reading its rows
UNREADABLE = (
    InvalidFileException,
    zipfile.BadZipFile,
    ElementTree.ParseError,
    KeyError,
    OSError,
    ValueError,
    EOFError,
    zlib.error,
)

OLE_SIGNATURE = bytes.fromhex("D0CF11E0A1B11AE1")
ZIP_SIGNATURE = b"PK\x03\x04"

MAX_HOURS = Decimal("999.9")
EARLIEST_TRAINING = date(1990, 1, 1)
LOGIN_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")

_YEAR_MONTH_DAY = re.compile(
    r"^(?P<y>\d{2,4})\s*[/.\-]\s*(?P<m>\d{1,2})\s*[/.\-]\s*(?P<d>\d{1,2})"
    r"(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?$"
)
_CHINESE_DATE = re.compile(
    r"^(?:民國)?\s*(?P<y>\d{2,4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日?$"
)
_COMPACT_DATE = re.compile(r"^(?P<y>\d{3,4})(?P<m>\d{2})(?P<d>\d{2})$")
# Excel's day numbers for 1990-01-01 .. 2099-12-31, as a date shows in a cell formatted General
_EXCEL_DAYS = range(32874, 73051)


class ImportRefused(Exception):
    """A file that cannot be imported at all; the message says why, in Chinese."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = str(message)


@dataclass(frozen=True)
class Field:
    """A column of an import file: its key, its header and other headers accepted for it."""

    key: str
    header: str
    aliases: tuple = ()
    required: bool = True


# the headers are the file format, matched against what people put in the first row, so they are
# plain constants rather than translated text
TRAINING_FIELDS = (
    Field("login", "教師帳號", ("帳號",)),
    Field("name", "姓名"),
    Field("course", "課程名稱", ("課程",)),
    Field("hours", "時數", ("研習時數",)),
    Field("completed_on", "完成日期", ("日期",)),
)

ACCOUNT_FIELDS = (
    Field("login", "帳號"),
    Field("name", "姓名"),
    Field("role", "角色"),
    Field("email", "e-mail", ("email", "電子郵件", "電子信箱")),
    Field("school", "學校", ("學校名稱",)),
    Field("county", "縣市"),
    Field("school_code", "學校代碼", (), required=False),
)

TRAINING = {spec.key: spec.header for spec in TRAINING_FIELDS}
ACCOUNT = {spec.key: spec.header for spec in ACCOUNT_FIELDS}

ROLE_NAMES = {
    "教師": (Role.applicant, Position.teacher),
    "校長": (Role.applicant, Position.principal),
    "審查委員": (Role.reviewer, None),
    "縣市教專中心": (Role.county_officer, None),
}


@dataclass
class RowError:
    """A problem with one cell (or row) of the file."""

    row: int
    column: str
    reason: str


@dataclass
class Plan:
    """What importing a file would do; nothing has been written yet."""

    dataset: str
    rows: int = 0
    additions: list = field(default_factory=list)
    updates: list = field(default_factory=list)
    unchanged: int = 0
    errors: list = field(default_factory=list)

    def error(self, row, column, reason):
        self.errors.append(RowError(row, column, str(reason)))

    def summary(self):
        """The plan as JSON for the preview page: counts, every error kept, samples."""
        ordered = sorted(self.errors, key=lambda error: error.row)
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "added": len(self.additions),
            "updated": len(self.updates),
            "unchanged": self.unchanged,
            "error_count": len(self.errors),
            "errors": [[e.row, e.column, e.reason] for e in ordered[:MAX_ERRORS_KEPT]],
            "additions": [entry["display"] for entry in self.additions[:SAMPLE_ROWS]],
            "updates": [entry["display"] for entry in self.updates[:SAMPLE_ROWS]],
        }


# --- reading the file -----------------------------------------------------------------------


def check_signature(path):
    """Refuse at once what is no .xlsx workbook: an encrypted or old .xls file, or anything else."""
    with open(path, "rb") as handle:
        start = handle.read(8)
    if not start:
        raise ImportRefused(_("檔案是空的（0 位元組），請重新選擇檔案。"))
    if start == OLE_SIGNATURE:
        raise ImportRefused(
            _(
                "無法讀取此檔案：檔案設有密碼保護，或是舊版 Excel 97-2003（.xls）格式。"
                "請取消檔案密碼，並另存為「Excel 活頁簿（.xlsx）」後再匯入。"
            )
        )
    if not start.startswith(ZIP_SIGNATURE):
        raise ImportRefused(_("這不是 Excel 活頁簿（.xlsx）檔案，請用系統提供的範本填寫後再匯入。"))


def _check_unpacked_size(path):
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as error:
        raise ImportRefused(_("檔案已損毀或不是 Excel 活頁簿（.xlsx），無法讀取。")) from error
    if unpacked > MAX_UNPACKED_BYTES:
        raise ImportRefused(_("檔案內容過大，無法匯入，請分批匯入。"))


def _normal_header(text):
    """A header as compared: full-width folded, no spaces, no required-field stars, lower case."""
    text = unicodedata.normalize("NFKC", str(text or ""))
    return re.sub(r"[\s*＊]", "", text).lower()


def _map_header(cells, fields):
    """{key: column index} of the fields found in a header row; refuses missing or doubled ones."""
    wanted = {}
    for spec in fields:
        for name in (spec.header, *spec.aliases):
            wanted[_normal_header(name)] = spec
    positions = {}
    doubled = []
    for index, cell in enumerate(cells):
        spec = wanted.get(_normal_header(cell))
        if spec is None:
            continue
        if spec.key in positions:
            doubled.append(spec.header)
            continue
        positions[spec.key] = index

    missing = [spec.header for spec in fields if spec.required and spec.key not in positions]
    if missing:
        raise ImportRefused(
            _(
                "缺少必要欄位：%(columns)s。第一列須為標題列，請使用系統提供的範本。",
                columns="、".join(missing),
            )
        )
    if doubled:
        raise ImportRefused(_("欄位重複：%(columns)s。", columns="、".join(doubled)))
    return positions


def read_rows(path, fields, progress=None):
    """The data rows of the first sheet as [(row number, {key: cell value})].

    The first non-empty row is the header; entirely empty rows are skipped.
    """
    progress = progress or NullProgress()
    check_signature(path)
    _check_unpacked_size(path)

    with open(path, "rb") as handle, warnings.catch_warnings():
        # openpyxl warns about styles and extensions it does not read; that is fine here
        warnings.simplefilter("ignore")
        try:
            # formulas are read as formulas, not as the value Excel last saved for them (which
            # a file written by another program does not have), so that they can be refused
            workbook = load_workbook(handle, read_only=True, data_only=False)
        except UNREADABLE as error:
            log.info("import file unreadable: %s", error)
            raise ImportRefused(_("檔案已損毀或不是 Excel 活頁簿（.xlsx），無法讀取。")) from error
        try:
            return _read_first_sheet(workbook, fields, progress)
        except UNREADABLE as error:
            # the sheets are parsed only now, so a damaged sheet shows up here
            log.info("import file damaged: %s", error)
            raise ImportRefused(_("檔案已損毀或不是 Excel 活頁簿（.xlsx），無法讀取。")) from error
        finally:
            workbook.close()


def _read_first_sheet(workbook, fields, progress):
    if not workbook.worksheets:
        raise ImportRefused(_("活頁簿中沒有工作表。"))
    sheet = workbook.worksheets[0]
    estimate = sheet.max_row
    # dimensions written by some programs are wrong; read every row the sheet really has
    sheet.reset_dimensions()
    progress.start(estimate - 1 if estimate and estimate > 1 else None)

    positions = None
    rows = []
    empty_run = 0
    for number, cells in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1):
        if all(_blank(value) for value in cells):
            empty_run += 1
            if empty_run >= EMPTY_RUN_ENDS_SHEET:
                break
            continue
        empty_run = 0
        if positions is None:
            positions = _map_header(cells, fields)
            continue
        if len(rows) >= MAX_ROWS:
            raise ImportRefused(
                _(
                    "資料超過 %(limit)s 列的上限，請分成幾個檔案匯入。",
                    limit=f"{MAX_ROWS:,}",
                )
            )
        rows.append((number, {key: cells[index] for key, index in positions.items()}))
        if len(rows) % 1000 == 0:
            progress.step(1000)

    if positions is None:
        raise ImportRefused(_("工作表是空的：找不到標題列與資料。請使用系統提供的範本。"))
    if not rows:
        raise ImportRefused(_("工作表只有標題列，沒有任何資料列。"))
    return rows


def _blank(value):
    return value is None or (isinstance(value, str) and not value.strip())


def is_formula(value):
    """Whether a cell holds a formula (=1+1, =SUM(...), an array formula) rather than a value."""
    if isinstance(value, str):
        return value.lstrip().startswith("=")
    return isinstance(value, ArrayFormula | DataTableFormula)


def refuse_formulas(plan, number, values, fields):
    """Record an error for every formula cell of a row; returns whether there was any."""
    found = [key for key, value in values.items() if is_formula(value)]
    for key in found:
        plan.error(
            number,
            fields[key],
            _("不接受公式，請直接填入內容（可在 Excel 以「選擇性貼上 → 值」換成計算結果）。"),
        )
    return bool(found)


# --- reading cells --------------------------------------------------------------------------


def text_of(value):
    """A cell as text with surrounding and repeated spaces (also full-width ones) removed."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime | date):
        value = value.isoformat()
    return " ".join(str(value).split())


def folded(value):
    """A cell as text with full-width letters, digits and punctuation made ordinary."""
    return unicodedata.normalize("NFKC", text_of(value)).strip()


def name_key(value):
    """A person's or school's name as compared: folded, without any space, 台 read as 臺."""
    return re.sub(r"\s+", "", folded(value)).replace("台", "臺")


def parse_hours(value):
    """Hours as a Decimal with one decimal place; raises ValueError with the reason."""
    if isinstance(value, bool):
        raise ValueError(_("時數必須是數字，例如 3 或 1.5。"))
    if isinstance(value, int | float):
        text = repr(value)
    else:
        text = folded(value).replace("小時", "").replace(" ", "")
    try:
        hours = Decimal(text)
    except InvalidOperation as error:
        raise ValueError(
            _("時數「%(value)s」不是數字，例如 3 或 1.5。", value=text_of(value))
        ) from error
    if not hours.is_finite():
        raise ValueError(_("時數必須是數字，例如 3 或 1.5。"))
    if hours <= 0:
        raise ValueError(_("時數必須大於 0。"))
    if hours > MAX_HOURS:
        raise ValueError(_("時數不可超過 %(max)s 小時。", max=MAX_HOURS))
    if hours != hours.quantize(Decimal("0.1")):
        raise ValueError(_("時數最多只能有一位小數。"))
    return hours.quantize(Decimal("0.1"))


def parse_date(value, today=None):
    """A completion date from a date cell or ROC or Gregorian text; raises ValueError."""
    today = today or now_utc().astimezone(TAIPEI).date()
    day = _date_of(value)
    if day < EARLIEST_TRAINING:
        raise ValueError(_("完成日期「%(value)s」早於 1990 年，請確認。", value=text_of(value)))
    if day > today:
        raise ValueError(_("完成日期 %(day)s 晚於今天，請確認。", day=roc_date(day)))
    return day


def _date_of(value):
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if float(value).is_integer() and int(value) in _EXCEL_DAYS:
            return from_excel(int(value)).date()
        value = text_of(value)

    text = folded(value)
    match = _YEAR_MONTH_DAY.match(text) or _CHINESE_DATE.match(text) or _COMPACT_DATE.match(text)
    if match is None:
        raise ValueError(
            _(
                "無法辨識日期「%(value)s」，請寫成 113/08/15（民國）或 2024-08-15（西元）。",
                value=text_of(value),
            )
        )
    year, month, day = (int(match.group(part)) for part in ("y", "m", "d"))
    if year < 1000:
        year += 1911
    try:
        return date(year, month, day)
    except ValueError as error:
        raise ValueError(_("「%(value)s」不是有效的日期。", value=text_of(value))) from error


def _batches(items, size=500):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _users_by_login(logins):
    """{login: (id, name, role)} of the accounts whose login is among these."""
    found = {}
    for batch in _batches(logins):
        rows = db.session.execute(
            sa.select(User.login, User.id, User.name, User.role).where(User.login.in_(batch))
        )
        for login, user_id, name, role in rows:
            found[login] = (user_id, name, role)
    return found


# --- training hours -------------------------------------------------------------------------


@dataclass
class _TrainingRow:
    row: int
    login: str
    name: str
    course: str
    hours: Decimal
    completed_on: date


def _parse_training_row(plan, number, values):
    """The row's values checked one by one; None if any cell is wrong (its errors recorded)."""
    if refuse_formulas(plan, number, values, TRAINING):
        return None
    login = folded(values.get("login"))
    name = text_of(values.get("name"))
    course = text_of(values.get("course"))
    errors_before = len(plan.errors)

    for key, text in (("login", login), ("name", name), ("course", course)):
        if not text:
            plan.error(number, TRAINING[key], _("必填，不可空白。"))
    if len(course) > 200:
        plan.error(number, TRAINING["course"], _("課程名稱不可超過 200 字。"))

    hours = completed_on = None
    if _blank(values.get("hours")):
        plan.error(number, TRAINING["hours"], _("必填，不可空白。"))
    else:
        try:
            hours = parse_hours(values.get("hours"))
        except ValueError as problem:
            plan.error(number, TRAINING["hours"], problem)
    if _blank(values.get("completed_on")):
        plan.error(number, TRAINING["completed_on"], _("必填，不可空白。"))
    else:
        try:
            completed_on = parse_date(values.get("completed_on"))
        except ValueError as problem:
            plan.error(number, TRAINING["completed_on"], problem)

    if len(plan.errors) > errors_before:
        return None
    return _TrainingRow(number, login, name, course, hours, completed_on)


def plan_training(path, progress=None):
    """Compare a training-hours file with the database; nothing is written."""
    rows = read_rows(path, TRAINING_FIELDS, progress)
    plan = Plan("training", rows=len(rows))
    parsed = [
        entry
        for number, values in rows
        if (entry := _parse_training_row(plan, number, values)) is not None
    ]

    users = _users_by_login({entry.login for entry in parsed})
    first_row = {}
    matched = []
    for entry in parsed:
        account = users.get(entry.login)
        if account is None:
            plan.error(
                entry.row, TRAINING["login"], _("找不到帳號「%(login)s」。", login=entry.login)
            )
            continue
        user_id, registered_name, role = account
        if role is not Role.applicant:
            plan.error(
                entry.row,
                TRAINING["login"],
                _("帳號「%(login)s」不是教師或校長帳號。", login=entry.login),
            )
            continue
        if name_key(registered_name) != name_key(entry.name):
            plan.error(
                entry.row,
                TRAINING["name"],
                _(
                    "姓名「%(name)s」與帳號「%(login)s」登錄的姓名「%(registered)s」不符。",
                    name=entry.name,
                    login=entry.login,
                    registered=registered_name,
                ),
            )
            continue
        key = (user_id, entry.course, entry.completed_on)
        if key in first_row:
            plan.error(
                entry.row,
                TRAINING["course"],
                _(
                    "與第 %(row)s 列重複（同一帳號、課程名稱與完成日期）。",
                    row=first_row[key],
                ),
            )
            continue
        first_row[key] = entry.row
        matched.append((key, entry))

    existing = _existing_training({key for key, _entry in matched})
    for key, entry in matched:
        year = academic_year_of(entry.completed_on)
        shown = [
            entry.row,
            entry.login,
            entry.name,
            entry.course,
            f"{entry.hours.normalize():f}",
            roc_date(entry.completed_on),
            year,
        ]
        record = existing.get(key)
        if record is None:
            plan.additions.append(
                {
                    "values": {
                        "user_id": key[0],
                        "course": entry.course,
                        "hours": entry.hours,
                        "completed_on": entry.completed_on,
                        "academic_year": year,
                        "advanced": True,
                    },
                    "display": shown,
                }
            )
            continue
        record_id, hours, record_year, advanced = record
        if Decimal(hours) == entry.hours and record_year == year and advanced:
            plan.unchanged += 1
            continue
        plan.updates.append(
            {
                "values": {
                    "id": record_id,
                    "hours": entry.hours,
                    "academic_year": year,
                    "advanced": True,
                },
                "display": [
                    *shown,
                    _(
                        "時數 %(old)s → %(new)s",
                        old=f"{Decimal(hours).normalize():f}",
                        new=shown[4],
                    ),
                ],
            }
        )
    return plan


def _existing_training(keys):
    """{(user_id, course, completed_on): (id, hours, academic_year, advanced)} among these keys."""
    found = {}
    user_ids = {user_id for user_id, _course, _day in keys}
    for batch in _batches(user_ids):
        rows = db.session.execute(
            sa.select(
                TrainingRecord.user_id,
                TrainingRecord.course,
                TrainingRecord.completed_on,
                TrainingRecord.id,
                TrainingRecord.hours,
                TrainingRecord.academic_year,
                TrainingRecord.advanced,
            ).where(TrainingRecord.user_id.in_(batch))
        )
        for user_id, course, completed_on, *rest in rows:
            key = (user_id, course, completed_on)
            if key in keys:
                found[key] = tuple(rest)
    return found


def apply_training(plan, actor):
    """Write a training plan in the caller's transaction; a plan with errors is refused."""
    _refuse_if_errors(plan)
    _write(TrainingRecord, plan)
    record_event(
        None,
        "import_training",
        actor,
        comment=_(
            "匯入研習時數：新增 %(added)s 筆、更新 %(updated)s 筆、未變更 %(unchanged)s 筆。",
            added=len(plan.additions),
            updated=len(plan.updates),
            unchanged=plan.unchanged,
        ),
    )
    db.session.flush()
    log.info(
        "training import by %s: %s added, %s updated, %s unchanged",
        actor.login if actor else "cli",
        len(plan.additions),
        len(plan.updates),
        plan.unchanged,
    )


def _refuse_if_errors(plan):
    if plan.errors:
        raise ImportRefused(
            _(
                "檔案有 %(count)s 處錯誤，沒有匯入任何資料。請修正後重新匯入。",
                count=len(plan.errors),
            )
        )


def _write(model, plan):
    """Insert the additions and update the changed rows by primary key, in batches."""
    additions = [entry["values"] for entry in plan.additions]
    updates = [entry["values"] for entry in plan.updates]
    for batch in _batches(additions, WRITE_BATCH):
        db.session.execute(sa.insert(model), batch)
    for batch in _batches(updates, WRITE_BATCH):
        db.session.execute(sa.update(model), batch)


# --- accounts -------------------------------------------------------------------------------


class _Schools:
    """Every school, looked up by code, or by county and name as people type them."""

    def __init__(self):
        rows = db.session.execute(
            sa.select(School.id, School.code, School.name, School.county_id)
        ).all()
        self.by_id = {row.id: row for row in rows}
        self.by_code = {folded(row.code): row for row in rows if row.code}
        self.by_county_name = {(row.county_id, name_key(row.name)): row for row in rows}


class _Counties:
    """The 22 counties by name, 台 read as 臺."""

    def __init__(self):
        rows = db.session.execute(sa.select(County.id, County.name)).all()
        self.by_name = {name_key(name): county_id for county_id, name in rows}
        self.names = dict(rows)


def plan_accounts(path, progress=None):
    """Compare an accounts file with the database; nothing is written."""
    rows = read_rows(path, ACCOUNT_FIELDS, progress)
    plan = Plan("accounts", rows=len(rows))
    schools, counties = _Schools(), _Counties()
    wanted = []
    first_row = {}
    for number, values in rows:
        target = _account_target(plan, number, values, schools, counties)
        if target is None:
            continue
        login = target["login"]
        if login in first_row:
            plan.error(
                number,
                ACCOUNT["login"],
                _("帳號「%(login)s」與第 %(row)s 列重複。", login=login, row=first_row[login]),
            )
            continue
        first_row[login] = number
        wanted.append((number, target))

    existing = _accounts_by_login({target["login"] for _number, target in wanted})
    for number, target in wanted:
        shown = _account_display(number, target, schools, counties)
        current = existing.get(target["login"])
        if current is None:
            if not LOGIN_PATTERN.match(target["login"]):
                plan.error(
                    number,
                    ACCOUNT["login"],
                    _("新帳號只能使用英文字母、數字及 . _ @ -，長度 1 至 64 字。"),
                )
                continue
            plan.additions.append(
                {"values": {**target, "password_hash": "", "active": True}, "display": shown}
            )
            continue
        if current.role in (Role.staff, Role.admin):
            plan.error(
                number,
                ACCOUNT["login"],
                _(
                    "帳號「%(login)s」是認證中心人員或系統管理員帳號，不能以匯入修改。",
                    login=target["login"],
                ),
            )
            continue
        changes = {key: value for key, value in target.items() if getattr(current, key) != value}
        if not changes:
            plan.unchanged += 1
            continue
        plan.updates.append(
            {
                "values": {"id": current.id, **changes},
                "display": [*shown, _describe_changes(current, changes, schools, counties)],
            }
        )
    return plan


def _account_target(plan, number, values, schools, counties):
    """The account a row describes, as User column values; None if the row has errors."""
    if refuse_formulas(plan, number, values, ACCOUNT):
        return None
    errors_before = len(plan.errors)
    login = folded(values.get("login"))
    name = text_of(values.get("name"))
    role_text = name_key(values.get("role"))
    email_text = folded(values.get("email"))

    if not login:
        plan.error(number, ACCOUNT["login"], _("必填，不可空白。"))
    if not name:
        plan.error(number, ACCOUNT["name"], _("必填，不可空白。"))
    elif len(name) > 64:
        plan.error(number, ACCOUNT["name"], _("姓名不可超過 64 字。"))

    role = position = None
    if not role_text:
        plan.error(number, ACCOUNT["role"], _("必填，不可空白。"))
    elif role_text not in ROLE_NAMES:
        plan.error(
            number,
            ACCOUNT["role"],
            _(
                "無法辨識角色「%(value)s」，請填 %(choices)s 其中之一。",
                value=text_of(values.get("role")),
                choices="、".join(ROLE_NAMES),
            ),
        )
    else:
        role, position = ROLE_NAMES[role_text]

    email = ""
    if not email_text:
        plan.error(number, ACCOUNT["email"], _("必填，不可空白。"))
    else:
        try:
            email = validate_email(email_text, check_deliverability=False).normalized
        except EmailNotValidError:
            plan.error(
                number, ACCOUNT["email"], _("e-mail「%(value)s」格式不正確。", value=email_text)
            )

    school_id = county_id = None
    if role is not None:
        place = _place(plan, number, values, role, schools, counties)
        if place is not None:
            school_id, county_id = place

    if len(plan.errors) > errors_before:
        return None
    return {
        "login": login,
        "name": name,
        "email": email,
        "role": role,
        "position": position,
        "school_id": school_id,
        "county_id": county_id,
    }


def _place(plan, number, values, role, schools, counties):
    """(school_id, county_id) the account belongs to, per its role; None after an error."""
    school_text = text_of(values.get("school"))
    county_text = text_of(values.get("county"))
    code = folded(values.get("school_code"))

    county_id = None
    if county_text:
        county_id = counties.by_name.get(name_key(county_text))
        if county_id is None:
            plan.error(number, ACCOUNT["county"], _("找不到縣市「%(value)s」。", value=county_text))
            return None

    if role is Role.county_officer:
        if county_id is None:
            plan.error(number, ACCOUNT["county"], _("縣市教專中心帳號必須填寫縣市。"))
            return None
        return None, county_id

    school = _find_school(plan, number, school_text, code, county_id, county_text, schools)
    if school is None:
        return None
    if role is Role.reviewer:
        return school.id, school.county_id
    # an applicant's county is their school's; it is not stored on the account
    return school.id, None


def _find_school(plan, number, school_text, code, county_id, county_text, schools):
    if code:
        school = schools.by_code.get(code)
        if school is None:
            plan.error(number, ACCOUNT["school_code"], _("找不到學校代碼「%(code)s」。", code=code))
            return None
        if school_text and name_key(school_text) != name_key(school.name):
            plan.error(
                number,
                ACCOUNT["school"],
                _(
                    "學校代碼「%(code)s」是「%(registered)s」，與填寫的「%(name)s」不符。",
                    code=code,
                    registered=school.name,
                    name=school_text,
                ),
            )
            return None
        if county_id is not None and county_id != school.county_id:
            plan.error(
                number,
                ACCOUNT["county"],
                _("學校代碼「%(code)s」的學校不在「%(county)s」。", code=code, county=county_text),
            )
            return None
        return school

    if not school_text:
        plan.error(number, ACCOUNT["school"], _("此角色必須填寫學校。"))
        return None
    if county_id is None:
        plan.error(number, ACCOUNT["county"], _("請填寫學校所在縣市（或填寫學校代碼）。"))
        return None
    school = schools.by_county_name.get((county_id, name_key(school_text)))
    if school is None:
        plan.error(
            number,
            ACCOUNT["school"],
            _(
                "「%(county)s」沒有名為「%(name)s」的學校。請先在後台新增學校，"
                "或填寫已登錄的學校代碼。",
                county=county_text,
                name=school_text,
            ),
        )
        return None
    return school


def _accounts_by_login(logins):
    found = {}
    for batch in _batches(logins):
        for user in db.session.scalars(sa.select(User).where(User.login.in_(batch))):
            found[user.login] = user
    return found


def _role_label(role, position):
    for label, (known_role, known_position) in ROLE_NAMES.items():
        if known_role is role and known_position is position:
            return label
    return str(role.label) if role else ""


def _account_display(number, target, schools, counties):
    school = schools.by_id.get(target["school_id"])
    county_id = target["county_id"] or (school.county_id if school else None)
    return [
        number,
        target["login"],
        target["name"],
        _role_label(target["role"], target["position"]),
        target["email"],
        school.name if school else "",
        counties.names.get(county_id, ""),
    ]


def _describe_changes(current, changes, schools, counties):
    """「姓名：甲 → 乙；學校：A → B」 for the preview."""
    parts = []
    if "name" in changes:
        parts.append(_("姓名：%(old)s → %(new)s", old=current.name, new=changes["name"]))
    if "email" in changes:
        parts.append(_("e-mail：%(old)s → %(new)s", old=current.email, new=changes["email"]))
    if "role" in changes or "position" in changes:
        old = _role_label(current.role, current.position)
        new = _role_label(
            changes.get("role", current.role), changes.get("position", current.position)
        )
        parts.append(_("角色：%(old)s → %(new)s", old=old, new=new))
    if "school_id" in changes:
        old = schools.by_id.get(current.school_id)
        new = schools.by_id.get(changes["school_id"])
        parts.append(
            _("學校：%(old)s → %(new)s", old=old.name if old else "—", new=new.name if new else "—")
        )
    if "county_id" in changes:
        parts.append(
            _(
                "縣市：%(old)s → %(new)s",
                old=counties.names.get(current.county_id, "—"),
                new=counties.names.get(changes["county_id"], "—"),
            )
        )
    return "；".join(parts)


def apply_accounts(plan, actor):
    """Write an accounts plan in the caller's transaction; a plan with errors is refused."""
    _refuse_if_errors(plan)
    _write(User, plan)
    record_event(
        None,
        "import_accounts",
        actor,
        comment=_(
            "匯入帳號：新增 %(added)s 個、更新 %(updated)s 個、未變更 %(unchanged)s 個。",
            added=len(plan.additions),
            updated=len(plan.updates),
            unchanged=plan.unchanged,
        ),
    )
    db.session.flush()
    log.info(
        "account import by %s: %s added, %s updated, %s unchanged",
        actor.login if actor else "cli",
        len(plan.additions),
        len(plan.updates),
        plan.unchanged,
    )


# --- the two imports, for pages, jobs and commands ------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """One kind of import: its name, columns, and how it is planned and applied."""

    key: str
    title: object
    fields: tuple
    plan: object
    apply: object
    preview_headers: tuple


DATASETS = {
    dataset.key: dataset
    for dataset in (
        Dataset(
            "training",
            _l("研習時數"),
            TRAINING_FIELDS,
            plan_training,
            apply_training,
            (_l("列"), _l("教師帳號"), _l("姓名"), _l("課程名稱"), _l("時數"), _l("完成日期"),
             _l("學年度")),
        ),
        Dataset(
            "accounts",
            _l("帳號"),
            ACCOUNT_FIELDS,
            plan_accounts,
            apply_accounts,
            (_l("列"), _l("帳號"), _l("姓名"), _l("角色"), _l("e-mail"), _l("學校"), _l("縣市")),
        ),
    )
}  # fmt: skip


def store_upload(upload):
    """Keep an uploaded file in the jobs folder under a generated name; returns that name."""
    name = f"upload-{uuid.uuid4().hex}.xlsx"
    upload.save(os.path.join(jobs_folder(), name))
    return name


def discard_upload(name):
    """Remove a stored upload that will not be imported."""
    path = upload_path(name)
    if path is not None:
        os.remove(path)


def upload_path(name):
    """The stored upload's path, or None if the name is not one of ours or it is gone."""
    if not name or os.path.basename(name) != name or not name.startswith("upload-"):
        return None
    path = os.path.join(jobs_folder(), name)
    return path if os.path.isfile(path) else None


def _job_plan(context):
    parameters = context.job.parameters
    dataset = DATASETS.get(parameters.get("dataset"))
    path = upload_path(parameters.get("upload"))
    if dataset is None or path is None:
        raise JobFailed(_("找不到上傳的檔案（可能已逾保存期限），請重新上傳。"))
    try:
        return dataset, dataset.plan(path, context.progress)
    except ImportRefused as refusal:
        raise JobFailed(refusal.message) from refusal


def run_preview_job(context):
    """Job handler: read the uploaded file and record what importing it would do."""
    _dataset, plan = _job_plan(context)
    return JobResult(summary=plan.summary())


def run_apply_job(context):
    """Job handler: read the file again, compare afresh and write it all, or nothing."""
    dataset, plan = _job_plan(context)
    try:
        dataset.apply(plan, context.job.created_by)
    except ImportRefused as refusal:
        raise JobFailed(refusal.message) from refusal
    return JobResult(summary=plan.summary())
