"""Blank import files staff hand out: the header row, one example row and a sheet of notes.

The headers come from the import's own column list (`exports.imports`), so a template always
matches what the import reads. The notes sheet comes second: imports read the first sheet only.
"""

import io

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from admin_app.i18n import _

from .imports import DATASETS, MAX_ROWS

TEXT_FORMAT = "@"


def _examples():
    """The example row of each import, under its headers."""
    return {
        "training": ("t0001", "王小明", "進階專業回饋人才培訓（一）", 3, "113/08/15"),
        "accounts": (
            "t0001",
            "王小明",
            "教師",
            "t0001@example.edu.tw",
            "臺北市立示範國民中學",
            "臺北市",
            "",
        ),
    }


def _notes():
    """What each import accepts, in the words staff read."""
    common = [
        _("第一個工作表的第一列是標題列，欄位順序可以調整，請勿修改標題文字。"),
        _("範例列請刪除或改成實際資料。空白列會略過。"),
        _("每個檔案最多 %(limit)s 列資料。", limit=f"{MAX_ROWS:,}"),
        _("匯入前會先顯示預覽；只要有一列錯誤，整個檔案都不會匯入。重複匯入同一檔案不會重複新增。"),
    ]
    return {
        "training": common
        + [
            _("教師帳號與姓名必須與系統中的帳號相符。"),
            _("時數可填 3、3.0 或 1.5（最多一位小數）。"),
            _(
                "完成日期可填民國 113/08/15、113.8.15、113年8月15日，或西元 2024-08-15、"
                "2024/8/15，也可以是 Excel 日期格式。學年度由完成日期自動計算。"
            ),
            _("同一帳號、課程名稱與完成日期視為同一筆紀錄，再次匯入會更新時數。"),
        ],
        "accounts": common
        + [
            _("角色請填：教師、校長、審查委員、縣市教專中心。"),
            _("教師、校長與審查委員須填學校與縣市（或學校代碼）；縣市教專中心須填縣市。"),
            _("學校必須已在系統中登錄；找不到的學校請先在後台新增。"),
            _("新帳號沒有密碼，須由認證中心在後台設定密碼後才能登入。"),
            _("以帳號比對：已存在的帳號會更新姓名、e-mail、角色與學校。"),
        ],
    }


def template_name(dataset_key):
    """The download name of a template: 研習時數匯入範本.xlsx."""
    return f"{DATASETS[dataset_key].title}匯入範本.xlsx"


def template_workbook(dataset_key):
    """The template of an import as .xlsx bytes (two small sheets)."""
    dataset = DATASETS[dataset_key]
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = str(dataset.title)

    bold = Font(bold=True)
    for index, (spec, example) in enumerate(
        zip(dataset.fields, _examples()[dataset_key], strict=True), start=1
    ):
        header = sheet.cell(row=1, column=index, value=spec.header)
        header.font = bold
        header.alignment = Alignment(horizontal="center")
        cell = sheet.cell(row=2, column=index, value=example)
        if isinstance(example, str):
            # typed dates and logins stay as typed instead of being turned into numbers
            cell.number_format = TEXT_FORMAT
        width = max(12, len(spec.header) * 3, len(str(example)) * 2 + 2)
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"

    notes = workbook.create_sheet(_("說明"))
    notes.column_dimensions["A"].width = 100
    for row, line in enumerate(_notes()[dataset_key], start=1):
        notes.cell(row=row, column=1, value=line).alignment = Alignment(wrap_text=True)

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
