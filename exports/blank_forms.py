"""Printable blank documents for the three upload items, as A4 Excel workbooks.

A candidate downloads one, fills it in by hand or in Excel, has the school sign and stamp it
(核章), scans it and uploads the PDF. The sheets are laid out on a six-column grid so that the
boxes line up on paper; nothing here touches the database.
"""

import io

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.worksheet.page import PageMargins

from models.case import ApplicationItem

FONT_NAME = "標楷體"
COLUMN_WIDTHS = (14, 16, 14, 16, 14, 16)
LAST_COLUMN = "F"
MIME_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

THIN = Side(style="thin", color="000000")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WRAP = Alignment(wrap_text=True, vertical="center")
WRAP_TOP = Alignment(wrap_text=True, vertical="top")
CENTRE = Alignment(horizontal="center", vertical="center", wrap_text=True)

ROC_DATE_BLANK = "中華民國　　　年　　　月　　　日"
CHECK = "□"


class SheetWriter:
    """Writes rows of boxes onto a six-column sheet, keeping track of the current row."""

    def __init__(self, sheet):
        self.sheet = sheet
        self.row = 1

    def _cell(self, column, text, span=1, *, bold=False, size=12, align=WRAP, border=True):
        """Write text into a box of `span` columns starting at `column` (1-based)."""
        cell = self.sheet.cell(row=self.row, column=column, value=text)
        cell.font = Font(name=FONT_NAME, size=size, bold=bold)
        cell.alignment = align
        last = column + span - 1
        if span > 1:
            self.sheet.merge_cells(
                start_row=self.row, start_column=column, end_row=self.row, end_column=last
            )
        if border:
            for index in range(column, last + 1):
                self.sheet.cell(row=self.row, column=index).border = BOX
        return cell

    def _next(self, height=None):
        if height:
            self.sheet.row_dimensions[self.row].height = height
        self.row += 1

    def title(self, text, subtitle=None):
        """The form's title across the page, with an optional line under it."""
        self._cell(1, text, 6, bold=True, size=18, align=CENTRE, border=False)
        self._next(34)
        if subtitle:
            self._cell(1, subtitle, 6, size=11, align=CENTRE, border=False)
            self._next(20)
        self._next(8)

    def heading(self, text):
        """A section title in bold, without a box."""
        self._cell(1, text, 6, bold=True, size=13, border=False)
        self._next(24)

    def pair(self, left, right=None, height=30):
        """One or two "label | blank" boxes on a row: label 1 column, blank 2 columns each."""
        if right is None:
            self._cell(1, left, bold=True, align=CENTRE)
            self._cell(2, "", 5)
        else:
            self._cell(1, left, bold=True, align=CENTRE)
            self._cell(2, "", 2)
            self._cell(4, right, bold=True, align=CENTRE)
            self._cell(5, "", 2)
        self._next(height)

    def line(self, label, text, height=30):
        """A label box and a box holding pre-printed text to tick or complete."""
        self._cell(1, label, bold=True, align=CENTRE)
        self._cell(2, text, 5)
        self._next(height)

    def tall(self, label, hint="", height=90):
        """A label box and a tall box to write a paragraph in."""
        self._cell(1, label, bold=True, align=CENTRE)
        self._cell(2, hint, 5, size=10, align=WRAP_TOP)
        self._next(height)

    def text(self, text, height=36, size=12, bold=False):
        """A paragraph across the page without a box."""
        self._cell(1, text, 6, size=size, bold=bold, border=False)
        self._next(height)

    def table_header(self, labels_and_spans):
        """A header row of a table: (label, span) pairs adding up to six columns."""
        column = 1
        for label, span in labels_and_spans:
            self._cell(column, label, span, bold=True, align=CENTRE)
            column += span
        self._next(30)

    def table_row(self, texts_and_spans, height=42):
        """A body row of a table: (text, span) pairs adding up to six columns."""
        column = 1
        for text, span in texts_and_spans:
            self._cell(column, text, span, align=CENTRE if span == 1 else WRAP)
            column += span
        self._next(height)

    def signatures(self, labels, height=80):
        """Boxes for signatures and school stamps (核章): a label row, then empty tall boxes."""
        span = 6 // len(labels)
        column = 1
        for label in labels:
            self._cell(column, label, span, bold=True, align=CENTRE)
            column += span
        self._next(30)
        column = 1
        for _label in labels:
            self._cell(column, "", span)
            column += span
        self._next(height)

    def blank(self, height=10):
        """Vertical space."""
        self._next(height)


def _new_sheet(title):
    """A workbook with one sheet set up for A4 portrait printing, one page wide."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title[:31]
    for index, width in enumerate(COLUMN_WIDTHS):
        sheet.column_dimensions[chr(ord("A") + index)].width = width

    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.orientation = sheet.ORIENTATION_PORTRAIT
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_margins = PageMargins(left=0.6, right=0.6, top=0.7, bottom=0.7)
    sheet.print_options.horizontalCentered = True
    sheet.oddFooter.center.text = "第 &P 頁，共 &N 頁"
    sheet.sheet_view.showGridLines = False
    return workbook, sheet


def _finish(workbook, writer):
    """Set the print area to what was written and return the workbook as bytes."""
    writer.sheet.print_area = f"A1:{LAST_COLUMN}{writer.row - 1}"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _public_teaching():
    """教師公開授課實施證明: what was taught, when, who observed, signed by the school."""
    workbook, sheet = _new_sheet("公開授課實施證明")
    writer = SheetWriter(sheet)
    writer.title("教師公開授課實施證明", "進階專業回饋人才認證　申請文件（一）")

    writer.heading("一、授課教師")
    writer.pair("授課教師", "服務學校")
    writer.pair("任教年級", "任教領域／科目")
    writer.pair("職　　別", "聯絡電話")

    writer.heading("二、公開授課")
    writer.pair("教學單元")
    writer.pair("授課日期", "授課節次")
    writer.pair("授課班級", "授課地點")
    writer.pair("觀課人員", "觀課人數")
    writer.pair("觀察前會談日期", "觀察後會談日期")
    writer.tall("辦理情形", "（請簡述觀察前會談、入班觀察與觀察後會談的辦理情形）")

    writer.blank()
    writer.text(
        "茲證明上列教師已於本校完成公開授課，並依序辦理觀察前會談、入班觀察及觀察後會談，"
        "特此證明。",
        height=44,
    )
    writer.signatures(["授課教師簽章", "觀課人員簽章", "教務主任核章"])
    writer.signatures(["校長核章", "學校印信（關防）"], height=100)
    writer.text(ROC_DATE_BLANK, height=30)
    writer.text(
        "注意：本證明須經學校核章後掃描為 PDF 檔，於「進階專業回饋人才認證」系統上傳。",
        size=10,
        height=30,
    )
    return _finish(workbook, writer)


def _community():
    """教師專業學習社群參與證明: which community, how long, how often, signed by the school."""
    workbook, sheet = _new_sheet("社群參與證明")
    writer = SheetWriter(sheet)
    writer.title("教師專業學習社群參與證明", "進階專業回饋人才認證　申請文件（二）")

    writer.heading("一、參與教師")
    writer.pair("教師姓名", "服務學校")
    writer.pair("職　　別", "聯絡電話")

    writer.heading("二、社群資料")
    writer.pair("社群名稱")
    writer.pair("社群召集人", "召集人服務學校")
    writer.line(
        "社群類型",
        f"{CHECK} 校內社群　{CHECK} 跨校社群　{CHECK} 跨縣市社群　{CHECK} 其他：＿＿＿＿",
    )
    writer.line("參與學年度", "　　　學年度")
    writer.line("參與期間", f"自 {ROC_DATE_BLANK} 起\n至 {ROC_DATE_BLANK} 止", height=44)
    writer.pair("參與次數", "參與時數")
    writer.tall("運作內容", "（請簡述社群的主題、運作方式及參與教師在社群中的分工）", height=110)

    writer.blank()
    writer.text("茲證明上列教師確實參與本專業學習社群之運作，特此證明。", height=36)
    writer.signatures(["參與教師簽章", "社群召集人簽章", "承辦處室核章"])
    writer.signatures(["校長核章", "學校印信（關防）"], height=100)
    writer.text(ROC_DATE_BLANK, height=30)
    writer.text(
        "注意：本證明須經學校核章後掃描為 PDF 檔，於「進階專業回饋人才認證」系統上傳。",
        size=10,
        height=30,
    )
    return _finish(workbook, writer)


CHECKLIST_NOTES = {
    ApplicationItem.public_teaching: "已核章，與觀察紀錄為同一次公開授課",
    ApplicationItem.community: "已核章，註明社群名稱與參與期間",
    ApplicationItem.pre_conference: "已於系統填寫，必填欄位完整",
    ApplicationItem.observation: "已於系統填寫，所選觀察工具與觀察焦點一致",
    ApplicationItem.post_conference: "已於系統填寫，含專業成長計畫",
    ApplicationItem.checklist: "本表已由申請人及學校核章",
}


def _checklist():
    """認證檢核表: the six items ticked by the candidate and checked and stamped by the school."""
    workbook, sheet = _new_sheet("認證檢核表")
    writer = SheetWriter(sheet)
    writer.title("進階專業回饋人才認證檢核表", "進階專業回饋人才認證　申請文件（三）")

    writer.heading("一、申請人")
    writer.pair("申請人", "服務學校")
    writer.line("職　　別", f"{CHECK} 教師　　{CHECK} 校長")
    writer.line("申請學年度", "　　　學年度")

    writer.heading("二、申請資格")
    writer.line(
        "初階認證",
        f"{CHECK} 已取得初階專業回饋人才認證　證書字號：＿＿＿＿＿＿＿＿",
    )
    writer.line(
        "進階培訓",
        f"{CHECK} 已完成進階專業回饋人才培訓，時數共＿＿＿小時（＿＿＿–＿＿＿學年度）",
    )

    writer.heading("三、申請項目")
    writer.table_header(
        [("項次", 1), ("檢核項目", 2), ("申請人自評", 1), ("學校檢核", 1), ("備註", 1)]
    )
    for item in ApplicationItem:
        writer.table_row(
            [
                (str(item.number), 1),
                (f"{item.label}\n（{CHECKLIST_NOTES[item]}）", 2),
                (f"{CHECK} 已完成", 1),
                (f"{CHECK} 符合\n{CHECK} 待補正", 1),
                ("", 1),
            ],
            height=48,
        )

    writer.blank()
    writer.text(
        "申請人確認以上資料均屬實，所附文件如有不實，願負相關責任。學校已逐項檢核並核章。",
        height=40,
    )
    writer.signatures(["申請人簽章", "承辦人核章", "單位主管核章"])
    writer.signatures(["校長核章", "學校印信（關防）"], height=100)
    writer.text(ROC_DATE_BLANK, height=30)
    return _finish(workbook, writer)


BUILDERS = {
    ApplicationItem.public_teaching: _public_teaching,
    ApplicationItem.community: _community,
    ApplicationItem.checklist: _checklist,
}


def blank_form(item):
    """The blank .xlsx document for an upload item, as bytes."""
    return BUILDERS[item]()


def download_name(item):
    """The file name the browser saves the blank document under."""
    return f"{item.label}（空白）.xlsx"
