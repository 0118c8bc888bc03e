"""A cycle's spreadsheets for county centres and staff: 案件總表, 統計 and 證號清冊.

Every workbook is written with openpyxl's write-only mode straight to a file: rows go to disk as
they are produced, so a workbook of 100,000 rows never sits in memory.

How the sheets read:

- A header row in Traditional Chinese, frozen, with an autofilter over the whole table, and fixed
  column widths chosen per column (CJK text is about twice as wide as Latin text).
- Dates are real date cells with the number format `yyyy/mm/dd`, each followed by a text column
  with the same date in the ROC calendar (114/05/31). A number format cannot show the ROC year
  reliably: `[$-zh-TW]e/mm/dd` shows it only in Excel running a Traditional Chinese (Taiwan)
  locale, and as a Gregorian year elsewhere (LibreOffice, Google Sheets, Excel in other
  locales). A real date cell keeps sorting, filtering and date arithmetic right everywhere; the
  text column is what staff read and quote.
- Text that people typed (names, school names, e-mail) is always a text cell. A value starting
  with `=`, `+`, `-`, `@`, a tab, a carriage return or `#` is written as an explicit string cell
  with Excel's quote prefix (the stored form of a leading apostrophe), so that neither openpyxl
  nor Excel, not even after the cell is edited, turns it into a formula or an error value.

How the rows are read: cases are fetched in chunks of `CHUNK` by keyset on the case id; for each
chunk, one query each brings the formal-review events, verdicts and appeals of all its cases, so a
workbook costs about four queries per thousand rows and never one query per row. The whole
country is read in one pass, each row going to its county's sheet. Each chunk is
fetched whole rather than through a server-side cursor held open for the entire export (as
`yield_per` would do), because an open read on SQLite keeps every other connection from
committing, and the job's progress is committed from another connection while the export runs.
The sheets are therefore not one snapshot: a case that changes during the export appears as it
was when its chunk was read.

The whole-country 案件總表 for staff has a summary sheet 總覽 (cases per county and status) first,
then one sheet for each of the 22 counties, in their usual order, even when a county has no case
(the sheet then has just its header), so that the workbook's layout is the same every year. Cases
whose applicant had no school when the case was opened, and so no county, get one more sheet,
未分縣市, only when there are any. The whole-country 統計 and 證號清冊 are single sheets with a
縣市 column.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from admin_app.extensions import db
from admin_app.i18n import _, _l, roc_date, to_taipei
from admin_app.jobs import JobFailed, JobResult, NullProgress, enqueue
from models import (
    Appeal,
    AuditEvent,
    Case,
    CaseState,
    County,
    Cycle,
    Decision,
    Position,
    School,
    User,
    Verdict,
    state_label,
)
from models.operations import record_event
from models.review import AppealOutcome

log = logging.getLogger(__name__)

MIME_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK = 1000
DATE_FORMAT = "yyyy/mm/dd"
# first characters that make a spreadsheet read text as a formula, a sign or an error value
RISKY_STARTS = ("=", "+", "-", "@", "\t", "\r", "#")
EXCEL_TEXT_LIMIT = 32767

FORMAL_REVIEW_ACTIONS = ("pass_formal_review", "return_for_correction")
FORMAL_REVIEW_RESULTS = {"pass_formal_review": _l("通過"), "return_for_correction": _l("退件")}
UNKNOWN_COUNTY = _l("未分縣市")
NO_SCHOOL = _l("（未填學校）")
CERTIFIED_STATES = (CaseState.certified, CaseState.announced)


# --- cells and sheets -----------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a sheet: its header and its width in Excel's character units.

    `ours` marks a column whose values the product itself words (status labels, ROC dates,
    the academic year): they are written as they are, without the checks that text people
    typed goes through, which are a tenth of a national export's time.
    """

    header: str
    width: float
    ours: bool = False


def dated(header, width=12):
    """A date column and its ROC twin: 送出日期, 送出日期（民國）."""
    twin = Column(_("%(header)s（民國）", header=header), width, ours=True)
    return (Column(header, width), twin)


def clean_text(value):
    """Text as Excel can hold it: no control characters it refuses, within its length limit."""
    return ILLEGAL_CHARACTERS_RE.sub("", value)[:EXCEL_TEXT_LIMIT]


class SheetWriter:
    """A write-only sheet with a frozen, filtered header row and fixed column widths."""

    def __init__(self, workbook, title, columns):
        self.sheet = workbook.create_sheet(title=title)
        self.width = len(columns)
        self.rows = 0
        self._date_cells = {}
        self._ours = frozenset(index for index, column in enumerate(columns) if column.ours)
        for index, column in enumerate(columns, start=1):
            self.sheet.column_dimensions[get_column_letter(index)].width = column.width
        # the sheet view and column widths are written before the first row, so set them now
        self.sheet.freeze_panes = "A2"

        bold = Font(bold=True)
        centred = Alignment(horizontal="center", vertical="center", wrap_text=True)
        header = []
        for column in columns:
            cell = WriteOnlyCell(self.sheet, value=clean_text(str(column.header)))
            cell.font = bold
            cell.alignment = centred
            header.append(cell)
        self.sheet.append(header)
        self.rows = 1

    def append(self, values):
        """Add a row: strings become text cells, dates become date cells."""
        ours = self._ours
        self.sheet.append(
            [
                (value or None) if index in ours else self._cell(index, value)
                for index, value in enumerate(values)
            ]
        )
        self.rows += 1

    def _cell(self, index, value):
        if isinstance(value, str):
            value = clean_text(value)
            if not value:
                # no cell at all rather than an empty one: smaller, and blank to every filter
                return None
            if value.startswith(RISKY_STARTS):
                return self._forced_text(value)
            return value
        if isinstance(value, date):
            return self._date_cell(index, value)
        return value

    def _date_cell(self, index, value):
        """The column's one date cell, holding this row's date.

        A write-only sheet turns a row into XML inside `append`, before it returns, so one
        styled cell per column can carry every row's date: creating and styling a new cell for
        each of a national export's hundreds of thousands of dates was a tenth of its time.
        """
        cell = self._date_cells.get(index)
        if cell is None:
            cell = self._date_cells[index] = WriteOnlyCell(self.sheet)
            cell.number_format = DATE_FORMAT
        cell.value = value
        return cell

    def _forced_text(self, value):
        cell = WriteOnlyCell(self.sheet, value=value)
        # openpyxl has just read a leading "=" as a formula or "#N/A" as an error: undo that
        cell.data_type = "s"
        cell.quotePrefix = True
        return cell

    def close(self):
        """Put the autofilter over everything written (the filter is stored after the rows)."""
        last_column = get_column_letter(self.width)
        self.sheet.auto_filter.ref = f"A1:{last_column}{self.rows}"


def taipei_date(moment):
    """The calendar day in Taipei of a stored moment, or None."""
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return to_taipei(moment).date()
    return moment


NO_DATE = (None, None)


class Labels:
    """Chinese labels resolved once per export rather than once per row."""

    def __init__(self):
        self.status = {
            (state, round_): str(state_label(state, round_))
            for state in CaseState
            for round_ in (1, 2)
        }
        self.decision = {decision: str(decision.label) for decision in Decision}
        self.outcome = {outcome: str(outcome.label) for outcome in AppealOutcome}
        self.position = {position: str(position.label) for position in Position}
        self.formal = {action: str(label) for action, label in FORMAL_REVIEW_RESULTS.items()}
        self.roc_dates = {}

    def date_pair(self, moment):
        """The values of a dated() column pair: the date cell and its ROC text.

        Each day's text is worked out once per export (a national export has 800,000 dates).
        """
        if moment is None:
            return NO_DATE
        day = taipei_date(moment)
        text = self.roc_dates.get(day)
        if text is None:
            text = self.roc_dates[day] = roc_date(day)
        return day, text

    def ordered_statuses(self):
        """Every distinct status label, in the order a case meets them."""
        seen = []
        for state in CaseState:
            for round_ in (1, 2):
                label = self.status[(state, round_)]
                if label not in seen:
                    seen.append(label)
        return seen


# --- reading the cases ----------------------------------------------------------------------


def _scope(query, cycle_id, county_id, everywhere):
    """Restrict a query on Case to a cycle and, unless everywhere, to one county (None: none)."""
    query = query.where(Case.cycle_id == cycle_id)
    if everywhere:
        return query
    if county_id is None:
        return query.where(Case.county_id.is_(None))
    return query.where(Case.county_id == county_id)


def _case_query():
    return (
        sa.select(
            Case.id,
            Case.state,
            Case.round,
            Case.submitted_at,
            Case.certificate_number,
            Case.certified_at,
            Case.announced_at,
            Case.county_id,
            User.name.label("applicant_name"),
            User.email,
            User.position,
            School.name.label("school_name"),
            County.name.label("county_name"),
        )
        .join(User, User.id == Case.applicant_id)
        .outerjoin(School, School.id == Case.school_id)
        .outerjoin(County, County.id == Case.county_id)
    )


def _formal_reviews(chunk):
    """{case_id: (action, moment)} of each case's latest formal-review decision in the chunk."""
    rows = db.session.execute(
        sa.select(AuditEvent.case_id, AuditEvent.action, AuditEvent.created_at)
        .where(_of_chunk(AuditEvent.case_id, chunk), AuditEvent.action.in_(FORMAL_REVIEW_ACTIONS))
        .order_by(AuditEvent.case_id, AuditEvent.id)
    )
    return {case_id: (action, moment) for case_id, action, moment in rows}


def _verdicts(chunk):
    """{(case_id, round): (decision, moment)} of the verdicts that stand (not undone)."""
    rows = db.session.execute(
        sa.select(Verdict.case_id, Verdict.round, Verdict.decision, Verdict.decided_at)
        .where(_of_chunk(Verdict.case_id, chunk), Verdict.undone_at.is_(None))
        .order_by(Verdict.case_id, Verdict.decided_at, Verdict.id)
    )
    return {(case_id, round_): (decision, moment) for case_id, round_, decision, moment in rows}


def _appeals(chunk):
    """{case_id: (filed_at, outcome, decided_at)}."""
    rows = db.session.execute(
        sa.select(Appeal.case_id, Appeal.filed_at, Appeal.outcome, Appeal.decided_at).where(
            _of_chunk(Appeal.case_id, chunk)
        )
    )
    return {case_id: (filed, outcome, decided) for case_id, filed, outcome, decided in rows}


def count_cases(cycle_id, county_id=None, everywhere=False):
    """How many cases a 案件總表 will list."""
    query = _scope(sa.select(sa.func.count(Case.id)), cycle_id, county_id, everywhere)
    return db.session.scalar(query)


def case_rows(cycle, county_id=None, everywhere=False, labels=None, progress=None):
    """The 案件總表 rows of a cycle (one county, or all), in case-id order, chunk by chunk."""
    for _county_id, values in _county_case_rows(cycle, county_id, everywhere, labels, progress):
        yield values


def _county_case_rows(cycle, county_id, everywhere, labels, progress):
    """(county id, row) of `case_rows`, for a workbook that sorts them into county sheets."""
    labels = labels or Labels()
    progress = progress or NullProgress()
    year = cycle.academic_year
    last_id = 0
    while True:
        query = _scope(_case_query(), cycle.id, county_id, everywhere)
        chunk = db.session.execute(
            query.where(Case.id > last_id).order_by(Case.id).limit(CHUNK)
        ).all()
        if not chunk:
            return
        first_id, last_id = chunk[0].id, chunk[-1].id
        # the chunk's cases named by their scope and id range rather than as a list of 1,000
        # ids: a list makes each statement 1,000 placeholders long, which the PostgreSQL driver
        # parses in Python and the server plans anew each time (a third of the export's time)
        in_chunk = (first_id, last_id, _scope(sa.select(Case.id), cycle.id, county_id, everywhere))
        formal = _formal_reviews(in_chunk)
        verdicts = _verdicts(in_chunk)
        appeals = _appeals(in_chunk)

        for row in chunk:
            yield row.county_id, _case_row(row, year, labels, formal, verdicts, appeals)
        progress.step(len(chunk))


def _of_chunk(column, chunk):
    """`column` (a case id) within a chunk: the id range, for the index, and the scope."""
    first_id, last_id, in_scope = chunk
    return sa.and_(column.between(first_id, last_id), column.in_(in_scope))


def _case_row(row, year, labels, formal, verdicts, appeals):
    formal_action, formal_at = formal.get(row.id, (None, None))
    first_decision, first_at = verdicts.get((row.id, 1), (None, None))
    second_decision, second_at = verdicts.get((row.id, 2), (None, None))
    filed_at, outcome, decided_at = appeals.get(row.id, (None, None, None))
    dates = labels.date_pair
    return (
        row.id,
        year,
        row.county_name or str(UNKNOWN_COUNTY),
        row.school_name or "",
        row.applicant_name,
        labels.position.get(row.position, ""),
        row.email or "",
        *dates(row.submitted_at),
        labels.formal.get(formal_action, ""),
        *dates(formal_at),
        labels.decision.get(first_decision, ""),
        *dates(first_at),
        labels.decision.get(second_decision, ""),
        *dates(second_at),
        *dates(filed_at),
        labels.outcome.get(outcome, ""),
        *dates(decided_at),
        labels.status[(row.state, row.round)],
        row.certificate_number or "",
        *dates(row.certified_at),
        *dates(row.announced_at),
    )


def case_columns():
    """The columns of 案件總表, in the order of `_case_row`."""
    return (
        Column(_("案號"), 8, ours=True),
        Column(_("學年度"), 8, ours=True),
        Column(_("縣市"), 9),
        Column(_("學校"), 28),
        Column(_("姓名"), 12),
        Column(_("職別"), 8, ours=True),
        Column(_("e-mail"), 30),
        *dated(_("送出日期")),
        Column(_("形式審查結果"), 12, ours=True),
        *dated(_("形式審查日期")),
        Column(_("初審判定"), 12, ours=True),
        *dated(_("初審判定日期")),
        Column(_("複審判定"), 12, ours=True),
        *dated(_("複審判定日期")),
        *dated(_("申復提出日期")),
        Column(_("申復結果"), 12, ours=True),
        *dated(_("申復結果日期")),
        Column(_("目前狀態"), 18, ours=True),
        Column(_("認證證號"), 28),
        *dated(_("發證日期")),
        *dated(_("公告日期")),
    )


# --- the workbooks --------------------------------------------------------------------------


def counties_in_order():
    """The 22 counties as (id, name), in their usual order."""
    return db.session.execute(
        sa.select(County.id, County.name).order_by(County.sort_order, County.id)
    ).all()


def write_case_list(path, cycle, county=None, progress=None):
    """案件總表 of one county, or of the whole country (county None) with a summary sheet."""
    progress = progress or NullProgress()
    labels = Labels()
    workbook = Workbook(write_only=True)

    if county is not None:
        progress.start(count_cases(cycle.id, county.id))
        sheet = SheetWriter(workbook, _("案件總表"), case_columns())
        for row in case_rows(cycle, county.id, labels=labels, progress=progress):
            sheet.append(row)
        sheet.close()
        workbook.save(path)
        return

    progress.start(count_cases(cycle.id, everywhere=True))
    _write_overview(workbook, cycle, labels)
    sheets = {
        county_id: SheetWriter(workbook, name, case_columns())
        for county_id, name in counties_in_order()
    }
    # one pass over the cycle's cases, each row to its county's sheet (a write-only sheet
    # streams to a file of its own, so the sheets fill side by side): one chunk is a stretch
    # of consecutive cases, where a pass per county would read each chunk's neighbours too
    rows = _county_case_rows(cycle, None, True, labels, progress)
    for county_id, row in rows:
        if county_id not in sheets:
            # cases without a county: their sheet comes last, and only when there are any
            sheets[county_id] = SheetWriter(workbook, str(UNKNOWN_COUNTY), case_columns())
        sheets[county_id].append(row)
    for sheet in sheets.values():
        sheet.close()
    workbook.save(path)


def _status_counts(cycle_id, group_by, county_id=None, everywhere=True):
    """Cases per (grouping columns..., state, round)."""
    query = sa.select(*group_by, Case.state, Case.round, sa.func.count(Case.id))
    query = _scope(query, cycle_id, county_id, everywhere)
    return db.session.execute(query.group_by(*group_by, Case.state, Case.round)).all()


def _write_count_table(sheet_writer_factory, leading, rows, labels):
    """A table: leading columns, one column per status label present, a 合計 column and row.

    `rows` maps a tuple of leading values to {status label: count}, in the order to show.
    """
    present = {label for counts in rows.values() for label in counts}
    statuses = [label for label in labels.ordered_statuses() if label in present]
    columns = (
        *leading,
        *(Column(label, max(8, len(label) * 2 + 2)) for label in statuses),
        Column(_("合計"), 8),
    )
    sheet = sheet_writer_factory(columns)
    totals = defaultdict(int)
    for key, counts in rows.items():
        values = [counts.get(label, 0) for label in statuses]
        for label, value in zip(statuses, values, strict=True):
            totals[label] += value
        sheet.append((*key, *values, sum(values)))
    grand = [totals[label] for label in statuses]
    padding = ("",) * (len(leading) - 1)
    sheet.append((_("合計"), *padding, *grand, sum(grand)))
    sheet.close()


def _write_overview(workbook, cycle, labels):
    """總覽: cases of the whole country per county and status."""
    found = _status_counts(cycle.id, (Case.county_id,))
    rows = {(name,): {} for _county_id, name in counties_in_order()}
    names = dict(counties_in_order())
    for county_id, state, round_, count in found:
        key = (names.get(county_id, str(UNKNOWN_COUNTY)),)
        counts = rows.setdefault(key, {})
        label = labels.status[(state, round_)]
        counts[label] = counts.get(label, 0) + count
    _write_count_table(
        lambda columns: SheetWriter(workbook, _("總覽"), columns),
        (Column(_("縣市"), 10),),
        rows,
        labels,
    )


def write_statistics(path, cycle, county=None, progress=None):
    """統計: cases per school and status, with totals, for one county or the whole country."""
    progress = progress or NullProgress()
    labels = Labels()
    progress.start(1)
    # school names are unique within a county, so county and school name identify a row
    query = (
        sa.select(
            County.sort_order,
            County.name,
            School.name,
            Case.state,
            Case.round,
            sa.func.count(Case.id),
        )
        .outerjoin(School, School.id == Case.school_id)
        .outerjoin(County, County.id == Case.county_id)
        .group_by(County.sort_order, County.name, School.name, Case.state, Case.round)
    )
    query = _scope(query, cycle.id, county.id if county else None, everywhere=county is None)
    found = db.session.execute(query).all()

    rows = {}
    for _order, county_name, school_name, state, round_, count in sorted(
        found, key=lambda r: (r[0] is None, r[0] or 0, r[2] is None, r[2] or "")
    ):
        key = (county_name or str(UNKNOWN_COUNTY), school_name or str(NO_SCHOOL))
        counts = rows.setdefault(key, {})
        label = labels.status[(state, round_)]
        counts[label] = counts.get(label, 0) + count

    workbook = Workbook(write_only=True)
    _write_count_table(
        lambda columns: SheetWriter(workbook, _("統計"), columns),
        (Column(_("縣市"), 10), Column(_("學校"), 30)),
        rows,
        labels,
    )
    workbook.save(path)
    progress.step(1)


def certificate_columns():
    """The columns of 證號清冊."""
    return (
        Column(_("認證證號"), 28),
        Column(_("學年度"), 8),
        Column(_("縣市"), 9),
        Column(_("學校"), 28),
        Column(_("姓名"), 12),
        Column(_("職別"), 8),
        *dated(_("發證日期")),
        *dated(_("公告日期")),
        Column(_("狀態"), 10),
    )


def write_certificates(path, cycle, county=None, progress=None):
    """證號清冊: certified and announced candidates with their numbers, in number order."""
    progress = progress or NullProgress()
    labels = Labels()
    county_id = county.id if county else None
    everywhere = county is None

    base = _scope(
        sa.select(sa.func.count(Case.id)).where(Case.state.in_(CERTIFIED_STATES)),
        cycle.id,
        county_id,
        everywhere,
    )
    progress.start(db.session.scalar(base))

    workbook = Workbook(write_only=True)
    sheet = SheetWriter(workbook, _("證號清冊"), certificate_columns())
    last_seq = 0
    while True:
        query = _scope(_case_query(), cycle.id, county_id, everywhere).add_columns(
            Case.certificate_seq
        )
        chunk = db.session.execute(
            query.where(Case.state.in_(CERTIFIED_STATES), Case.certificate_seq > last_seq)
            .order_by(Case.certificate_seq)
            .limit(CHUNK)
        ).all()
        if not chunk:
            break
        for row in chunk:
            sheet.append(
                (
                    row.certificate_number,
                    cycle.academic_year,
                    row.county_name or str(UNKNOWN_COUNTY),
                    row.school_name or "",
                    row.applicant_name,
                    labels.position.get(row.position, ""),
                    *labels.date_pair(row.certified_at),
                    *labels.date_pair(row.announced_at),
                    labels.status[(row.state, row.round)],
                )
            )
        last_seq = chunk[-1].certificate_seq
        progress.step(len(chunk))
    sheet.close()
    workbook.save(path)


# --- reports as background jobs -------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """A spreadsheet people can ask for: its key in URLs, its title and its writer."""

    key: str
    title: object
    write: object
    description: object


REPORTS = {
    report.key: report
    for report in (
        Report(
            "cases",
            _l("案件總表"),
            write_case_list,
            _l("每一申請案一列：形式審查、初審、複審、申復、目前狀態與認證證號。"),
        ),
        Report("statistics", _l("統計"), write_statistics, _l("各校各狀態案件數與合計。")),
        Report(
            "certificates",
            _l("證號清冊"),
            write_certificates,
            _l("已發證與已公告者的認證證號。"),
        ),
    )
}


def file_name(report, cycle, county):
    """The download name: 115學年度_臺北市_案件總表.xlsx."""
    return _(
        "%(year)s學年度_%(where)s_%(title)s.xlsx",
        year=cycle.academic_year,
        where=county.name if county is not None else _("全國"),
        title=report.title,
    )


def export_parameters(report_key, cycle, county):
    """The parameters of an export job; the county is None for the whole country."""
    return {
        "report": report_key,
        "cycle_id": cycle.id,
        "county_id": county.id if county is not None else None,
    }


def request_export(report, cycle, county, user):
    """Queue a report for someone, audited: personal data is about to leave the system.

    The caller has checked that the user may have this county's data, and commits.
    """
    job = enqueue("export", export_parameters(report.key, cycle, county), user)
    record_event(
        None, "request_export", user, comment=file_name(report, cycle, county).removesuffix(".xlsx")
    )
    log.info(
        "%s requested %s of cycle %s for %s (job %s)",
        user.login,
        report.key,
        cycle.academic_year,
        county.name if county else "all counties",
        job.id,
    )
    return job


def run_export_job(context):
    """Job handler: write the report the job's parameters name into the job's result file."""
    parameters = context.job.parameters
    report = REPORTS.get(parameters.get("report"))
    cycle = db.session.get(Cycle, parameters.get("cycle_id") or 0)
    county_id = parameters.get("county_id")
    county = db.session.get(County, county_id) if county_id is not None else None
    if report is None or cycle is None or (county_id is not None and county is None):
        raise JobFailed(_("報表參數不正確（梯次或縣市已不存在），請重新產生。"))

    path = context.output_path(".xlsx")
    report.write(path, cycle, county, progress=context.progress)
    log.info(
        "export %s of cycle %s for %s written (job %s)",
        report.key,
        cycle.academic_year,
        county.name if county else "all counties",
        context.job.id,
    )
    return JobResult(name=file_name(report, cycle, county))
