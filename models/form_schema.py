"""Observation-record templates as data: check a definition, read a posted form, render a record.

A template version's ``fields`` is a JSON list of field dicts::

    {"key": "learning_goal", "label": "學習目標", "type": "textarea", "required": true,
     "help": "optional hint"}

``type`` is one of ``FIELD_TYPES``. A ``number`` may carry ``min``/``max`` and ``"integer": true``
(whole numbers only); a top-level number may carry ``"at_most_field": "<key>"`` (not more than
another number field of the record) and a top-level date ``"not_before": "<key>"`` (not earlier
than another date field of the record) or ``"not_before": "<item>.<key>"`` (not earlier than a
date in the case's record of another item, e.g. ``pre_conference.pre_meeting_date``). ``choice`` and
``multichoice`` carry ``options`` (strings); a ``heading`` is a section title with no value.
A ``table`` carries ``columns`` (dicts with key, label, type and optionally required, options,
min, max) and either ``rows``, a list of fixed rows ``{"key": "A-2", "label": "..."}``, or
``"rows": null`` for rows the user adds, with ``min_rows`` (default 1) and ``max_rows``.

Stored values: strings for text, textarea, date ("YYYY-MM-DD"), time ("HH:MM") and choice; int
or float for number; a list of options for multichoice; ``{row_key: {col_key: value}}`` for a
fixed-row table and ``[{col_key: value}, ...]`` for an add-a-row table. An empty optional value
is ``""`` (``[]`` for multichoice and add-a-row tables).

HTML input names: the field key; ``<key>-<row_key>-<col_key>`` for fixed-row table cells;
``<key>-<index>-<col_key>`` plus a hidden ``<key>-rows`` count for add-a-row tables. Element ids
are the input name prefixed with ``f-`` so they never clash with the page's own ids.

Nothing here touches the database or needs an application context.
"""

import math
import re
from datetime import date

from markupsafe import Markup, escape

from admin_app.i18n import _

SCALAR_TYPES = ("text", "textarea", "date", "time", "number", "choice", "multichoice")
FIELD_TYPES = (*SCALAR_TYPES, "table", "heading")
COLUMN_TYPES = SCALAR_TYPES

TEXT_LIMIT = 5_000
TEXTAREA_LIMIT = 20_000
ROW_LIMIT = 200
KEY_LENGTH_LIMIT = 40
OPTION_LENGTH_LIMIT = 200

# the page template adds a CSRF input of this name next to the rendered inputs
RESERVED_KEYS = frozenset({"csrf_token"})

KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
# fixed-row keys may echo the rubric's own codes ("A-2"); they only ever sit between two
# hyphen-free keys in an input name, so the name stays unambiguous
ROW_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")

_COMMON_ATTRIBUTES = frozenset({"key", "label", "type", "required", "help"})
_FIELD_ATTRIBUTES = {
    "text": _COMMON_ATTRIBUTES,
    "textarea": _COMMON_ATTRIBUTES,
    "date": _COMMON_ATTRIBUTES | {"not_before"},
    "time": _COMMON_ATTRIBUTES,
    "number": _COMMON_ATTRIBUTES | {"min", "max", "integer", "at_most_field"},
    "choice": _COMMON_ATTRIBUTES | {"options"},
    "multichoice": _COMMON_ATTRIBUTES | {"options"},
    "table": _COMMON_ATTRIBUTES | {"columns", "rows", "min_rows", "max_rows"},
    # "required" is accepted only so that the heading check can say why it makes no sense
    "heading": _COMMON_ATTRIBUTES,
}
# rules that compare with another field belong to top-level fields only
_COLUMN_ATTRIBUTES = {
    kind: (attributes - {"help", "at_most_field", "not_before"})
    for kind, attributes in _FIELD_ATTRIBUTES.items()
}

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"\r\n?|\n|\t")
_NUMBER_PATTERN = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,10})?")
_ANY_NUMBER_PATTERN = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_NUMBER_DIGITS = 15
# the years a date may fall in; an earlier or later one is a typing slip
FIRST_YEAR, LAST_YEAR = 1912, 2199
# the items another record's date may be named by in "not_before"
RECORD_ITEMS = ("pre_conference", "observation", "post_conference")
_DATE_PATTERN = re.compile(r"([0-9]{2,4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})")
_TIME_PATTERN = re.compile(r"([0-9]{1,2}):([0-9]{2})(:[0-9]{2}(\.[0-9]{1,6})?)?")
_SHORT_INPUT_LIMIT = 100


# --- checking a definition ----------------------------------------------------------------


def validate_schema(fields):
    """Problems with a template definition, one Chinese sentence each; empty when it is valid."""
    if not isinstance(fields, list):
        return [_("範本的欄位定義必須是一個清單（JSON 陣列，以 [ ] 包住）。")]
    if not fields:
        return [_("範本至少要有一個欄位。")]

    problems = []
    seen_keys = set()
    for number, field in enumerate(fields, start=1):
        problems.extend(_field_problems(number, field, seen_keys))

    has_input = any(
        isinstance(field, dict) and field.get("type") in (*SCALAR_TYPES, "table")
        for field in fields
    )
    if not has_input:
        problems.append(_("範本裡只有標題，沒有可以填寫的欄位。"))
    return problems + _reference_problems(fields)


def _reference_problems(fields):
    """Problems with at_most_field and not_before: they must name a field of the right type."""
    kinds = {
        field["key"]: field.get("type")
        for field in fields
        if isinstance(field, dict) and isinstance(field.get("key"), str)
    }
    problems = []
    for number, field in enumerate(fields, start=1):
        if not isinstance(field, dict):
            continue
        where = _field_where(number, field)
        if "at_most_field" in field:
            other = field["at_most_field"]
            if other == field.get("key") or kinds.get(other) != "number":
                problems.append(
                    _(
                        "%(where)s的 at_most_field 必須是本範本另一個數字欄位的代碼（key）。",
                        where=where,
                    )
                )
        if "not_before" in field:
            other = field["not_before"]
            item, dot, key = other.partition(".") if isinstance(other, str) else ("", "", "")
            same_record = not dot and other != field.get("key") and kinds.get(other) == "date"
            other_record = bool(dot) and item in RECORD_ITEMS and KEY_PATTERN.fullmatch(key)
            if not (same_record or other_record):
                problems.append(
                    _(
                        "%(where)s的 not_before 必須是本範本另一個日期欄位的代碼（key），"
                        "或「項目.代碼」指向另一份紀錄表的日期欄位（項目為 %(items)s）。",
                        where=where,
                        items="、".join(RECORD_ITEMS),
                    )
                )
    return problems


def _short(value):
    """A value cut to a length that fits in a message."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _is_number(value):
    """Whether a JSON value is a finite number (a bool is not; JSON parsers accept NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _has_text(value):
    """Whether a JSON value is a non-blank string."""
    return isinstance(value, str) and bool(value.strip())


def _field_where(number, field):
    """How messages name the n-th field: its position and, when usable, its label."""
    label = field.get("label")
    if _has_text(label):
        return _("第 %(number)s 個欄位「%(label)s」", number=number, label=_short(label.strip()))
    return _("第 %(number)s 個欄位", number=number)


def _column_where(table_where, number, column):
    """How messages name the n-th column of a table."""
    label = column.get("label")
    if _has_text(label):
        return _(
            "%(table)s的第 %(number)s 欄「%(label)s」",
            table=table_where,
            number=number,
            label=_short(label.strip()),
        )
    return _("%(table)s的第 %(number)s 欄", table=table_where, number=number)


def _row_where(table_where, number, row):
    """How messages name the n-th fixed row of a table."""
    label = row.get("label")
    if _has_text(label):
        return _(
            "%(table)s的第 %(number)s 列「%(label)s」",
            table=table_where,
            number=number,
            label=_short(label.strip()),
        )
    return _("%(table)s的第 %(number)s 列", table=table_where, number=number)


def _field_problems(number, field, seen_keys):
    """Problems with one top-level field; records its key in seen_keys."""
    if not isinstance(field, dict):
        return [_("第 %(number)s 個欄位必須是物件（以 { } 包住的設定）。", number=number)]

    where = _field_where(number, field)
    problems = _label_problems(where, field)
    problems += _key_problems(where, field, seen_keys, KEY_PATTERN, reserved=RESERVED_KEYS)

    kind = field.get("type")
    if "type" not in field:
        problems.append(_("%(where)s缺少類型（type）。", where=where))
        return problems
    if not isinstance(kind, str) or kind not in FIELD_TYPES:
        problems.append(
            _(
                "%(where)s的類型「%(type)s」不存在；可用的類型有：%(types)s。",
                where=where,
                type=_short(kind),
                types="、".join(FIELD_TYPES),
            )
        )
        return problems

    problems += _common_problems(where, field, _FIELD_ATTRIBUTES[kind])
    if kind == "heading" and field.get("required"):
        problems.append(_("%(where)s是標題，不能設為必填。", where=where))
    if "help" in field and not isinstance(field["help"], str):
        problems.append(_("%(where)s的說明（help）必須是文字。", where=where))
    if kind == "table":
        problems += _table_problems(where, field)
    else:
        problems += _value_problems(where, field)
    return problems


def _label_problems(where, spec):
    """Problems with the label of a field, column or row."""
    if "label" not in spec:
        return [_("%(where)s缺少名稱（label）。", where=where)]
    if not _has_text(spec["label"]):
        return [_("%(where)s的名稱（label）必須是文字，且不可空白。", where=where)]
    return []


def _key_problems(where, spec, seen_keys, pattern, reserved=frozenset()):
    """Problems with the key of a field, column or row; records a good key in seen_keys."""
    if "key" not in spec:
        return [_("%(where)s缺少代碼（key）。", where=where)]

    key = spec["key"]
    if not isinstance(key, str) or not pattern.fullmatch(key):
        if pattern is KEY_PATTERN:
            rule = _("須以小寫英文字母開頭，只能含小寫英文字母、數字和底線")
        else:
            rule = _("須以英文字母或數字開頭，只能含英文字母、數字、底線和連字號")
        return [
            _(
                "%(where)s的代碼（key）「%(key)s」不合格式：%(rule)s。",
                where=where,
                key=_short(key),
                rule=rule,
            )
        ]
    if len(key) > KEY_LENGTH_LIMIT:
        return [
            _(
                "%(where)s的代碼（key）太長，最多 %(limit)s 個字元。",
                where=where,
                limit=KEY_LENGTH_LIMIT,
            )
        ]
    if key in reserved:
        return [
            _("%(where)s的代碼（key）「%(key)s」保留給系統使用，請換一個。", where=where, key=key)
        ]
    if key in seen_keys:
        return [_("%(where)s的代碼（key）「%(key)s」與前面重複。", where=where, key=key)]
    seen_keys.add(key)
    return []


def _common_problems(where, spec, allowed):
    """Problems shared by fields and columns: the required flag and unknown attributes."""
    problems = []
    if "required" in spec and not isinstance(spec["required"], bool):
        problems.append(_("%(where)s的必填（required）只能是 true 或 false。", where=where))

    unknown = sorted(str(name) for name in spec if name not in allowed)
    if unknown:
        problems.append(
            _(
                "%(where)s有無法辨識的設定：%(names)s；可用的設定有：%(allowed)s。",
                where=where,
                names="、".join(_short(name) for name in unknown),
                allowed="、".join(sorted(allowed)),
            )
        )
    return problems


def _value_problems(where, spec):
    """Problems with the type-specific settings of a scalar field or column."""
    kind = spec.get("type")
    if kind in ("choice", "multichoice"):
        return _option_problems(where, spec)
    if kind == "number":
        return _range_problems(where, spec)
    return []


def _option_problems(where, spec):
    """Problems with the options of a choice or multichoice field or column."""
    if "options" not in spec:
        return [_("%(where)s是選擇題，需要提供選項（options）。", where=where)]

    options = spec["options"]
    if not isinstance(options, list) or not options:
        return [_("%(where)s的選項（options）必須是至少有一項的文字清單。", where=where)]

    problems = []
    seen = set()
    for number, option in enumerate(options, start=1):
        if not _has_text(option):
            problems.append(
                _(
                    "%(where)s的第 %(number)s 個選項必須是文字，且不可空白。",
                    where=where,
                    number=number,
                )
            )
        elif option != option.strip():
            problems.append(
                _(
                    "%(where)s的選項「%(option)s」前後不可有空白。",
                    where=where,
                    option=_short(option),
                )
            )
        elif len(option) > OPTION_LENGTH_LIMIT:
            problems.append(
                _(
                    "%(where)s的第 %(number)s 個選項太長，最多 %(limit)s 個字。",
                    where=where,
                    number=number,
                    limit=OPTION_LENGTH_LIMIT,
                )
            )
        elif option in seen:
            problems.append(
                _("%(where)s的選項「%(option)s」重複了。", where=where, option=_short(option))
            )
        else:
            seen.add(option)
    return problems


def _range_problems(where, spec):
    """Problems with the min, max and integer settings of a number field or column."""
    problems = []
    if "integer" in spec and not isinstance(spec["integer"], bool):
        problems.append(_("%(where)s的整數（integer）只能是 true 或 false。", where=where))
    for name in ("min", "max"):
        if name in spec and not _is_number(spec[name]):
            problems.append(
                _("%(where)s的 %(name)s 必須是數字。", where=where, name=name),
            )
    low, high = spec.get("min"), spec.get("max")
    if _is_number(low) and _is_number(high) and low > high:
        problems.append(_("%(where)s的最小值（min）不可大於最大值（max）。", where=where))
    return problems


def _table_problems(where, field):
    """Problems with the columns and rows of a table field."""
    problems = _column_problems(where, field)
    rows = field.get("rows")
    if rows is None:
        problems += _row_count_problems(where, field)
    else:
        problems += _fixed_row_problems(where, field, rows)
    return problems


def _column_problems(where, field):
    """Problems with the columns of a table."""
    if "columns" not in field:
        return [_("%(where)s是表格，需要提供欄（columns）。", where=where)]

    columns = field["columns"]
    if not isinstance(columns, list) or not columns:
        return [_("%(where)s的欄（columns）必須是至少有一欄的清單。", where=where)]

    problems = []
    seen_keys = set()
    for number, column in enumerate(columns, start=1):
        if not isinstance(column, dict):
            problems.append(
                _(
                    "%(where)s的第 %(number)s 欄必須是物件（以 { } 包住的設定）。",
                    where=where,
                    number=number,
                )
            )
            continue

        column_where = _column_where(where, number, column)
        problems += _label_problems(column_where, column)
        problems += _key_problems(column_where, column, seen_keys, KEY_PATTERN)
        kind = column.get("type")
        if "type" not in column:
            problems.append(_("%(where)s缺少類型（type）。", where=column_where))
        elif not isinstance(kind, str) or kind not in COLUMN_TYPES:
            problems.append(
                _(
                    "%(where)s的類型「%(type)s」不能用在表格的欄；可用的類型有：%(types)s。",
                    where=column_where,
                    type=_short(kind),
                    types="、".join(COLUMN_TYPES),
                )
            )
        else:
            problems += _common_problems(column_where, column, _COLUMN_ATTRIBUTES[kind])
            problems += _value_problems(column_where, column)
    return problems


def _fixed_row_problems(where, field, rows):
    """Problems with the fixed rows of a table."""
    problems = []
    for name in ("min_rows", "max_rows"):
        if name in field:
            problems.append(
                _("%(where)s已列出固定的列（rows），不能再設定 %(name)s。", where=where, name=name)
            )
    if not isinstance(rows, list) or not rows:
        problems.append(
            _(
                "%(where)s的列（rows）必須是至少有一列的清單；"
                "若要讓填寫者自行新增列，請設為 null。",
                where=where,
            )
        )
        return problems

    seen_keys = set()
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            problems.append(
                _(
                    "%(where)s的第 %(number)s 列必須是物件（以 { } 包住的設定）。",
                    where=where,
                    number=number,
                )
            )
            continue

        row_where = _row_where(where, number, row)
        problems += _label_problems(row_where, row)
        problems += _key_problems(row_where, row, seen_keys, ROW_KEY_PATTERN)
        unknown = sorted(str(name) for name in row if name not in ("key", "label"))
        if unknown:
            problems.append(
                _(
                    "%(where)s有無法辨識的設定：%(names)s；列只能有 key 和 label。",
                    where=row_where,
                    names="、".join(_short(name) for name in unknown),
                )
            )
    return problems


def _row_count_problems(where, field):
    """Problems with min_rows and max_rows of a table whose rows the user adds."""
    problems = []
    low, high = field.get("min_rows", 1), field.get("max_rows")
    if not _is_count(low) or low > ROW_LIMIT:
        problems.append(
            _("%(where)s的 min_rows 必須是 0 到 %(limit)s 的整數。", where=where, limit=ROW_LIMIT)
        )
    if high is not None and (not _is_count(high) or not 1 <= high <= ROW_LIMIT):
        problems.append(
            _("%(where)s的 max_rows 必須是 1 到 %(limit)s 的整數。", where=where, limit=ROW_LIMIT)
        )
    elif _is_count(low) and high is not None and low > high:
        problems.append(_("%(where)s的 min_rows 不可大於 max_rows。", where=where))
    return problems


def _is_count(value):
    """Whether a JSON value is a non-negative integer (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- reading the schema defensively ---------------------------------------------------------


def _value_fields(fields):
    """The fields that carry a value, skipping headings and anything malformed."""
    if not isinstance(fields, list):
        return []
    return [
        field
        for field in fields
        if isinstance(field, dict)
        and isinstance(field.get("key"), str)
        and field.get("type") in (*SCALAR_TYPES, "table")
    ]


def _columns(table):
    """The usable columns of a table field."""
    columns = table.get("columns")
    if not isinstance(columns, list):
        return []
    return [
        column
        for column in columns
        if isinstance(column, dict)
        and isinstance(column.get("key"), str)
        and column.get("type") in COLUMN_TYPES
    ]


def _fixed_rows(table):
    """The usable fixed rows of a table, or None when the user adds the rows."""
    rows = table.get("rows")
    if rows is None:
        return None
    if not isinstance(rows, list):
        return []
    return [row for row in rows if isinstance(row, dict) and isinstance(row.get("key"), str)]


def _row_cap(table):
    """The most rows an add-a-row table accepts."""
    high = table.get("max_rows")
    return min(high, ROW_LIMIT) if _is_count(high) and high > 0 else ROW_LIMIT


def _min_rows(table):
    """The rows an add-a-row table shows at least, and needs when it is required."""
    low = table.get("min_rows", 1)
    return min(low, ROW_LIMIT) if _is_count(low) else 1


def _options(spec):
    """The string options of a choice or multichoice spec."""
    options = spec.get("options")
    if not isinstance(options, list):
        return []
    return [option for option in options if isinstance(option, str)]


def _label(spec):
    """The label of a field, column or row, as text."""
    label = spec.get("label")
    return label if isinstance(label, str) else str(spec.get("key", ""))


def _is_empty(value):
    """Whether a stored value counts as not filled in (zero is filled)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict):
        return not value
    return False


def _empty_value(spec):
    """The stored value of an empty field or cell."""
    return [] if spec.get("type") in ("multichoice", "table") else ""


# --- reading a posted form ------------------------------------------------------------------


def parse_submission(fields, formdata, others=None):
    """Clean posted form data against a template; returns (data, errors keyed by input name).

    `others` are the case's records of the other items, {item: (item label, fields, data)},
    for dates that may not be earlier than a date in another record.
    """
    data = {}
    errors = {}
    for field in _value_fields(fields):
        key = field["key"]
        if field["type"] == "table":
            data[key] = _parse_table(field, formdata, errors)
            continue

        value, error = _clean_value(field, _posted(formdata, key))
        if error is None and field.get("required") is True and _is_empty(value):
            error = _("此欄位為必填。")
        if error:
            errors[key] = error
        data[key] = value

    for field in _value_fields(fields):
        key = field["key"]
        if key not in errors and not _is_empty(data.get(key)):
            error = _comparison_error(field, data, fields, others or {})
            if error:
                errors[key] = error
    return data, errors


def _comparison_error(field, data, fields, others):
    """The error of a value that breaks its rule against another field, or None."""
    value = data[field["key"]]
    other = field.get("at_most_field")
    if field.get("type") == "number" and isinstance(other, str):
        limit = data.get(other)
        if _is_number(limit) and _is_number(value) and value > limit:
            return _(
                "不可大於「%(label)s」（%(value)s）。",
                label=_label_of(fields, other),
                value=_number_text(limit),
            )

    other = field.get("not_before")
    if field.get("type") == "date" and isinstance(other, str):
        item, dot, key = other.partition(".")
        if dot:
            label_of_item, other_fields, other_data = others.get(item, ("", [], {}))
            earliest = (other_data or {}).get(key)
            label = _(
                "「%(item)s」的「%(label)s」",
                item=label_of_item,
                label=_label_of(other_fields, key),
            )
        else:
            earliest = data.get(other)
            label = _("「%(label)s」", label=_label_of(fields, other))
        if isinstance(earliest, str) and earliest and isinstance(value, str) and value < earliest:
            return _("不可早於%(label)s（%(date)s）。", label=label, date=earliest)
    return None


def _label_of(fields, key):
    """The label of the field with this key, or the key itself."""
    for field in _value_fields(fields):
        if field["key"] == key:
            return _label(field)
    return key


def _posted(formdata, name):
    """Every string posted under a name, whatever shape the form-data object hands back."""
    if formdata is None:
        return []
    getlist = getattr(formdata, "getlist", None)
    if callable(getlist):
        raw = getlist(name)
    elif callable(getattr(formdata, "get", None)):
        raw = formdata.get(name)
    else:
        return []

    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raw = [raw]
    values = []
    for item in raw:
        # a form posts only strings; nested lists come from hand-made posts and are flattened once
        for part in item if isinstance(item, list | tuple) else (item,):
            if isinstance(part, str):
                values.append(part)
            elif _is_number(part):
                values.append(str(part))
    return values


def _clean_text(text, single_line):
    """Text without control characters, with line breaks unified (or flattened), stripped."""
    text = _CONTROL_CHARACTERS.sub("", text)
    text = _LINE_BREAKS.sub(" ", text) if single_line else text.replace("\r\n", "\n")
    return text.replace("\r", "\n").strip()


def _clean_value(spec, posted):
    """The stored value of one field or cell from its posted strings, and an error or None."""
    kind = spec.get("type")
    if kind == "multichoice":
        return _clean_multichoice(spec, posted)
    if len(posted) > 1:
        return "", _("此欄位只能填一個值。")

    text = _clean_text(posted[0] if posted else "", single_line=kind != "textarea")
    if kind in ("text", "textarea"):
        limit = TEXTAREA_LIMIT if kind == "textarea" else TEXT_LIMIT
        if len(text) > limit:
            # the whole text goes back into the form, so that nothing typed is lost
            return text, _(
                "內容過長：最多 %(limit)s 字，目前有 %(length)s 字。",
                limit=f"{limit:,}",
                length=f"{len(text):,}",
            )
        return text, None
    if not text:
        return "", None

    short = text[:_SHORT_INPUT_LIMIT]
    if kind == "date":
        return _clean_date(short)
    if kind == "time":
        return _clean_time(short)
    if kind == "number":
        return _clean_number(spec, short)
    if kind == "choice":
        if text in _options(spec):
            return text, None
        return "", _("請從選項中選擇。")
    return short, None


def _clean_multichoice(spec, posted):
    """The chosen options in the template's order, and an error if anything else was posted."""
    options = _options(spec)
    chosen = {value.strip() for value in posted} - {""}
    value = [option for option in options if option in chosen]
    if len(value) < len(chosen):
        return value, _("請從選項中選擇。")
    return value, None


def _clean_date(text):
    """A "YYYY-MM-DD" date from what was typed, or the text back with an error."""
    match = _DATE_PATTERN.fullmatch(text)
    if not match:
        return text, _("日期格式應為 年-月-日，例如 2025-03-14。")

    year, month, day = (int(part) for part in match.groups())
    if year < 1000:
        return text, _("請以西元年填寫日期，例如 2025-03-14。")
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return text, _(
            "日期須介於 %(first)s-01-01 與 %(last)s-12-31 之間。",
            first=FIRST_YEAR,
            last=LAST_YEAR,
        )
    try:
        return date(year, month, day).isoformat(), None
    except ValueError:
        return text, _("沒有這一天，請檢查月份和日期。")


def _clean_time(text):
    """An "HH:MM" time from what was typed, or the text back with an error."""
    match = _TIME_PATTERN.fullmatch(text)
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour < 24 and minute < 60:
            return f"{hour:02d}:{minute:02d}", None
    return text, _("時間格式應為 時:分（24 小時制），例如 09:05。")


def _clean_number(spec, text):
    """An int or float within the spec's range, or the text back with an error."""
    whole_only = spec.get("integer") is True
    if not _NUMBER_PATTERN.fullmatch(text):
        if _ANY_NUMBER_PATTERN.fullmatch(text):
            return text, _("數字太大或位數太多，最多 %(digits)s 位數。", digits=_NUMBER_DIGITS)
        if whole_only:
            return text, _("請填寫整數，例如 3。")
        return text, _("請填寫數字，例如 3 或 2.5。")

    number = float(text) if "." in text else int(text)
    if whole_only:
        if isinstance(number, float) and not number.is_integer():
            return text, _("請填寫整數，例如 3。")
        number = int(number)
    low, high = spec.get("min"), spec.get("max")
    if _is_number(low) and number < low:
        return number, _("不可小於 %(min)s。", min=_number_text(low))
    if _is_number(high) and number > high:
        return number, _("不可大於 %(max)s。", max=_number_text(high))
    return number, None


def _number_text(number):
    """A number as people write it: no trailing ".0" on whole numbers."""
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return str(number)


def _parse_table(field, formdata, errors):
    """The stored value of a table field; adds cell and table errors to errors."""
    if _fixed_rows(field) is None:
        return _parse_added_rows(field, formdata, errors)
    return _parse_fixed_rows(field, formdata, errors)


def _parse_fixed_rows(field, formdata, errors):
    """A fixed-row table as {row_key: {col_key: value}}; every row must fill required columns."""
    key = field["key"]
    columns = _columns(field)
    value = {}
    cell_errors = False
    for row in _fixed_rows(field):
        cells = {}
        for column in columns:
            name = f"{key}-{row['key']}-{column['key']}"
            cells[column["key"]], error = _clean_cell(column, _posted(formdata, name))
            if error:
                errors[name] = error
                cell_errors = True
        value[row["key"]] = cells

    filled = any(not _is_empty(cell) for cells in value.values() for cell in cells.values())
    if field.get("required") is True and not filled and not cell_errors:
        errors[key] = _("請至少填寫表格中的一格。")
    return value


def _parse_added_rows(field, formdata, errors):
    """An add-a-row table as a list of row dicts, entirely empty rows dropped."""
    key = field["key"]
    columns = _columns(field)
    cap = _row_cap(field)

    # the hidden <key>-rows count is for the script that adds rows; the server reads every index
    # up to the cap instead, so a stale or hostile count neither loses nor multiplies rows
    posted_rows = []
    for index in range(cap + 1):
        posted = {
            column["key"]: _posted(formdata, f"{key}-{index}-{column['key']}") for column in columns
        }
        if any(_clean_text(part, True) for parts in posted.values() for part in parts):
            posted_rows.append(posted)
    if len(posted_rows) > cap:
        errors[key] = _("最多只能填寫 %(count)s 列。", count=cap)
        posted_rows = posted_rows[:cap]

    value = []
    for position, posted in enumerate(posted_rows):
        cells = {}
        for column in columns:
            cells[column["key"]], error = _clean_cell(column, posted[column["key"]])
            if error:
                errors[f"{key}-{position}-{column['key']}"] = error
        value.append(cells)

    needed = max(_min_rows(field), 1) if field.get("required") is True else 0
    if len(value) < needed and key not in errors:
        errors[key] = _("請至少填寫 %(count)s 列。", count=needed)
    return value


def _clean_cell(column, posted):
    """The stored value of one table cell, and an error or None."""
    value, error = _clean_value(column, posted)
    if error is None and column.get("required") is True and _is_empty(value):
        error = _("此欄位為必填。")
    return value, error


# --- completeness of a stored record --------------------------------------------------------


def missing_required(fields, data):
    """Labels of the required fields (or tables with required cells) not filled in stored data."""
    if not isinstance(data, dict):
        data = {}
    return [
        _label(field)
        for field in _value_fields(fields)
        if not _is_complete(field, data.get(field["key"]))
    ]


def _is_complete(field, value):
    """Whether one stored field satisfies its required rules."""
    if field["type"] != "table":
        return field.get("required") is not True or not _is_empty(value)

    required_columns = [column for column in _columns(field) if column.get("required") is True]
    rows = _fixed_rows(field)
    if rows is not None:
        value = value if isinstance(value, dict) else {}
        cells = [value.get(row["key"]) for row in rows]
        cells = [row_cells if isinstance(row_cells, dict) else {} for row_cells in cells]
        if any(_is_empty(row_cells.get(c["key"])) for row_cells in cells for c in required_columns):
            return False
        if field.get("required") is True:
            return any(not _is_empty(cell) for row_cells in cells for cell in row_cells.values())
        return True

    value = value if isinstance(value, list) else []
    filled_rows = [
        row
        for row in value
        if isinstance(row, dict) and any(not _is_empty(v) for v in row.values())
    ]
    if any(_is_empty(row.get(c["key"])) for row in filled_rows for c in required_columns):
        return False
    needed = max(_min_rows(field), 1) if field.get("required") is True else 0
    return len(filled_rows) >= needed


# --- read-only rendering --------------------------------------------------------------------


def render_readable(fields, data):
    """Read-only HTML of a filled record: a definition list, tables and headings, all escaped."""
    if not isinstance(data, dict):
        data = {}

    parts = []
    open_list = []
    for field in fields if isinstance(fields, list) else []:
        if not isinstance(field, dict):
            continue
        kind = field.get("type")
        if kind in SCALAR_TYPES and isinstance(field.get("key"), str):
            open_list.append(
                Markup("<dt>{}</dt><dd>{}</dd>").format(
                    _label(field), _readable_value(field, data.get(field["key"]))
                )
            )
            continue

        parts.append(_definition_list(open_list))
        open_list = []
        if kind == "heading":
            parts.append(Markup('<h4 class="record-heading">{}</h4>').format(_label(field)))
        elif kind == "table" and isinstance(field.get("key"), str):
            parts.append(_readable_table(field, data.get(field["key"])))
    parts.append(_definition_list(open_list))

    return Markup('<div class="record">\n{}</div>\n').format(Markup("").join(parts))


def _definition_list(items):
    """A <dl> of collected scalar fields, or nothing."""
    if not items:
        return Markup("")
    return Markup('<dl class="record-fields">\n{}\n</dl>\n').format(Markup("\n").join(items))


def _not_filled():
    """The marker shown for an empty value."""
    return Markup('<span class="empty">{}</span>').format(_("（未填）"))


def _readable_value(spec, value):
    """One stored value as escaped HTML, 「（未填）」 when empty."""
    if _is_empty(value):
        return _not_filled()
    if isinstance(value, list | tuple):
        return escape("、".join(_plain_text(item) for item in value))
    text = escape(_plain_text(value))
    if spec.get("type") == "textarea" or "\n" in text:
        return Markup("<br>\n").join(text.split("\n"))
    return text


def _plain_text(value):
    """A stored scalar as text; numbers without a trailing ".0"."""
    if isinstance(value, str):
        return value
    if _is_number(value):
        return _number_text(value)
    return str(value)


def _readable_table(field, value):
    """A table field as a titled, horizontally scrollable <table>."""
    columns = _columns(field)
    rows = _fixed_rows(field)
    head_cells = [Markup('<th scope="col">{}</th>').format(_label(c)) for c in columns]

    if rows is not None:
        value = value if isinstance(value, dict) else {}
        head_cells.insert(0, Markup('<th scope="col">{}</th>').format(_("項目")))
        body_rows = [
            (Markup('<th scope="row">{}</th>').format(_label(row)), value.get(row["key"]))
            for row in rows
        ]
    else:
        value = value if isinstance(value, list) else []
        filled = [
            row
            for row in value
            if isinstance(row, dict) and any(not _is_empty(cell) for cell in row.values())
        ]
        head_cells.insert(0, Markup('<th scope="col">{}</th>').format(_("編號")))
        body_rows = [
            (Markup('<th scope="row">{}</th>').format(number), row)
            for number, row in enumerate(filled, start=1)
        ]

    title = Markup('<div class="field-label">{}</div>\n').format(_label(field))
    if not body_rows:
        return Markup('<div class="record-table-block">\n{}<p>{}</p>\n</div>\n').format(
            title, _not_filled()
        )

    lines = []
    for row_head, cells in body_rows:
        cells = cells if isinstance(cells, dict) else {}
        tds = [
            Markup("<td>{}{}</td>").format(_cell_label(c), _readable_value(c, cells.get(c["key"])))
            for c in columns
        ]
        lines.append(Markup("<tr>{}{}</tr>").format(row_head, Markup("").join(tds)))

    return Markup(
        '<div class="record-table-block">\n{}<div class="table-scroll">\n'
        '<table class="record-table">\n<thead><tr>{}</tr></thead>\n<tbody>\n{}\n</tbody>\n'
        "</table>\n</div>\n</div>\n"
    ).format(title, Markup("").join(head_cells), Markup("\n").join(lines))


# --- form inputs ----------------------------------------------------------------------------


def render_inputs(fields, data, errors):
    """The form's inputs, pre-filled with data and showing errors; the page adds <form> and CSRF."""
    data = data if isinstance(data, dict) else {}
    errors = errors if isinstance(errors, dict) else {}

    parts = []
    for field in fields if isinstance(fields, list) else []:
        if not isinstance(field, dict):
            continue
        kind = field.get("type")
        if kind == "heading":
            parts.append(_input_heading(field))
        elif kind in SCALAR_TYPES and isinstance(field.get("key"), str):
            parts.append(_input_field(field, data.get(field["key"]), errors))
        elif kind == "table" and isinstance(field.get("key"), str):
            parts.append(_input_table(field, data.get(field["key"]), errors))
    return Markup("").join(parts)


def _attributes(pairs):
    """HTML attributes from (name, value) pairs: None and False are left out, True is bare."""
    parts = []
    for name, value in pairs:
        if value is None or value is False:
            continue
        if value is True:
            parts.append(Markup(" ") + escape(name))
        else:
            parts.append(Markup(' {}="{}"').format(escape(name), value))
    return Markup("").join(parts)


def _required_mark(spec):
    """The red asterisk after a required label."""
    if spec.get("required") is True:
        return Markup('<span class="req">*</span>')
    return Markup("")


def _help(spec, element_id):
    """The hint under a label, or nothing."""
    hint = spec.get("help")
    if not _has_text(hint):
        return Markup("")
    return Markup('<div class="field-help" id="{}-help">{}</div>\n').format(element_id, hint)


def _error(message, element_id):
    """An error message next to a field, or nothing."""
    if not message:
        return Markup("")
    return Markup('<div class="field-error" id="{}-error">{}</div>\n').format(
        element_id, _plain_text(message)
    )


def _described_by(spec, element_id, message):
    """The aria-describedby value pointing at a field's hint and error."""
    ids = []
    if _has_text(spec.get("help")):
        ids.append(f"{element_id}-help")
    if message:
        ids.append(f"{element_id}-error")
    return " ".join(ids) or None


def _input_text(value):
    """A stored value as the text an input shows."""
    if isinstance(value, str):
        return value
    if _is_number(value):
        return _number_text(value)
    return ""


def _input_heading(field):
    """A section title inside the form."""
    element_id = "f-" + str(field.get("key", ""))
    return Markup('<h4 class="form-heading">{}</h4>\n{}').format(
        _label(field), _help(field, element_id)
    )


def _input_field(field, value, errors):
    """One scalar field: label, hint, control and error, wrapped in a div.field."""
    name = field["key"]
    element_id = "f-" + name
    message = errors.get(name)
    classes = f"field field-{field['type']}" + (" has-error" if message else "")

    if field["type"] == "multichoice":
        return Markup(
            '<fieldset class="{}"{}>\n<legend class="field-label">{}{}</legend>\n'
            "{}{}{}</fieldset>\n"
        ).format(
            classes,
            _attributes([("aria-describedby", _described_by(field, element_id, message))]),
            _label(field),
            _required_mark(field),
            _help(field, element_id),
            _checkboxes(field, name, element_id, value, None),
            _error(message, element_id),
        )

    control = _control(
        field,
        name,
        element_id,
        value,
        [("aria-describedby", _described_by(field, element_id, message))],
        message,
    )
    return Markup(
        '<div class="{}">\n<label class="field-label" for="{}">{}{}</label>\n{}{}\n{}</div>\n'
    ).format(
        classes,
        element_id,
        _label(field),
        _required_mark(field),
        _help(field, element_id),
        control,
        _error(message, element_id),
    )


def _control(spec, name, element_id, value, extra, message):
    """The input, select or textarea for one scalar value."""
    kind = spec.get("type")
    common = [
        ("id", element_id),
        ("name", name),
        *extra,
        ("aria-required", "true" if spec.get("required") is True else None),
        ("aria-invalid", "true" if message else None),
    ]
    text = _input_text(value)

    if kind == "textarea":
        attributes = _attributes([*common, ("rows", "4"), ("maxlength", TEXTAREA_LIMIT)])
        # a leading newline right after <textarea> is dropped by browsers, so one is added
        return Markup("<textarea{}>\n{}</textarea>").format(attributes, text)

    if kind == "choice":
        options = [Markup('<option value="">{}</option>').format(_("請選擇"))]
        for option in _options(spec):
            options.append(
                Markup("<option{}>{}</option>").format(
                    _attributes([("value", option), ("selected", option == text)]), option
                )
            )
        return Markup("<select{}>{}</select>").format(_attributes(common), Markup("").join(options))

    typed = {
        "text": [("type", "text"), ("maxlength", TEXT_LIMIT)],
        "date": [("type", "date"), ("placeholder", "2025-03-14")],
        "time": [("type", "time"), ("placeholder", "09:05")],
        "number": [
            ("type", "number"),
            ("step", "1" if spec.get("integer") is True else "any"),
            ("inputmode", "numeric" if spec.get("integer") is True else "decimal"),
            ("min", _number_text(spec["min"]) if _is_number(spec.get("min")) else None),
            ("max", _number_text(spec["max"]) if _is_number(spec.get("max")) else None),
        ],
    }.get(kind, [("type", "text")])
    return Markup("<input{}>").format(_attributes([*typed, *common, ("value", text)]))


def _checkboxes(spec, name, element_id, value, aria_label):
    """The checkboxes of a multichoice field or cell, each wrapped in its label."""
    chosen = set(value) if isinstance(value, list) else set()
    boxes = []
    for number, option in enumerate(_options(spec)):
        box_id = f"{element_id}-{number}"
        attributes = _attributes(
            [
                ("type", "checkbox"),
                ("id", box_id),
                ("name", name),
                ("value", option),
                ("checked", option in chosen),
            ]
        )
        boxes.append(
            Markup('<label class="choice-option" for="{}"><input{}> {}</label>').format(
                box_id, attributes, option
            )
        )
    group = [("class", "choice-options"), ("role", "group"), ("aria-label", aria_label)]
    return Markup("<div{}>\n{}\n</div>\n").format(_attributes(group), Markup("\n").join(boxes))


def _input_table(field, value, errors):
    """A table field: label, hint, table-level error, the scrollable table and its row controls."""
    key = field["key"]
    element_id = "f-" + key
    message = errors.get(key)
    columns = _columns(field)
    rows = _fixed_rows(field)
    classes = "field field-table" + (" has-error" if message else "")

    head_cells = [
        Markup('<th scope="col">{}{}</th>').format(_label(c), _required_mark(c)) for c in columns
    ]
    if rows is not None:
        head_cells.insert(0, Markup('<th scope="col">{}</th>').format(_("項目")))
        body, extra, table_data = _fixed_body(field, rows, columns, value, errors), Markup(""), None
    else:
        body, count = _added_body(field, columns, value, errors)
        extra = Markup(
            '<input type="hidden" id="{}-rows" name="{}-rows" value="{}">\n'
            '<button type="button" class="add-row" data-table="{}">{}</button>\n'
        ).format(element_id, key, count, key, _("新增一列"))
        table_data = _row_cap(field)

    table_attributes = _attributes(
        [
            ("class", "record-table"),
            ("data-table", key),
            ("data-max-rows", table_data),
            ("aria-labelledby", f"{element_id}-label"),
            ("aria-describedby", _described_by(field, element_id, message)),
        ]
    )
    return Markup(
        '<div class="{}" id="{}">\n<div class="field-label" id="{}-label">{}{}</div>\n{}{}'
        '<div class="table-scroll">\n<table{}>\n<thead><tr>{}</tr></thead>\n<tbody>\n{}\n'
        "</tbody>\n</table>\n</div>\n{}</div>\n"
    ).format(
        classes,
        element_id,
        element_id,
        _label(field),
        _required_mark(field),
        _help(field, element_id),
        _error(message, element_id),
        table_attributes,
        Markup("").join(head_cells),
        body,
        extra,
    )


def _fixed_body(field, rows, columns, value, errors):
    """The <tr>s of a fixed-row table, one per row label."""
    value = value if isinstance(value, dict) else {}
    lines = []
    for row in rows:
        cells = value.get(row["key"])
        cells = cells if isinstance(cells, dict) else {}
        tds = [
            _input_cell(
                column,
                f"{field['key']}-{row['key']}-{column['key']}",
                cells.get(column["key"]),
                f"{_label(row)}：{_label(column)}",
                errors,
            )
            for column in columns
        ]
        lines.append(
            Markup('<tr class="table-row"{}><th scope="row">{}</th>{}</tr>').format(
                _attributes([("data-row-key", row["key"])]), _label(row), Markup("").join(tds)
            )
        )
    return Markup("\n").join(lines)


def _added_body(field, columns, value, errors):
    """The <tr>s of an add-a-row table: stored rows, then empty ones, and how many there are."""
    cap = _row_cap(field)
    stored = [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []
    stored = stored[:cap]
    # one spare empty row so that the form works without the add-row script
    count = min(max(len(stored) + 1, _min_rows(field)), cap)
    count = max(count, len(stored))

    lines = []
    for index in range(count):
        cells = stored[index] if index < len(stored) else {}
        tds = [
            _input_cell(
                column,
                f"{field['key']}-{index}-{column['key']}",
                cells.get(column["key"]),
                _label(column),
                errors,
            )
            for column in columns
        ]
        lines.append(
            Markup('<tr class="table-row" data-row-index="{}">{}</tr>').format(
                index, Markup("").join(tds)
            )
        )
    return Markup("\n").join(lines), count


def _input_cell(column, name, value, aria_label, errors):
    """One table cell: its control and any error under it."""
    element_id = "f-" + name
    message = errors.get(name)
    if column.get("type") == "multichoice":
        control = _checkboxes(column, name, element_id, value, aria_label)
    else:
        described = [
            ("aria-label", aria_label),
            ("aria-describedby", f"{element_id}-error" if message else None),
        ]
        control = _control(column, name, element_id, value, described, message)
    cell_class = Markup(' class="has-error"') if message else Markup("")
    return Markup("<td{}>{}{}{}</td>").format(
        cell_class,
        _cell_label(column, _required_mark(column)),
        control,
        _error(message, element_id),
    )


def _cell_label(column, mark=""):
    """The column heading again in a cell, shown only where a narrow screen stacks the cells."""
    return Markup('<span class="cell-label" aria-hidden="true">{}{}</span>').format(
        _label(column), mark
    )
