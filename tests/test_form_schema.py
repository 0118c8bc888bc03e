"""The record-template engine: definitions, posted forms, completeness and rendering, no app."""

import re
from html.parser import HTMLParser

import pytest
from werkzeug.datastructures import MultiDict

from models.form_schema import (
    ROW_LIMIT,
    TEXT_LIMIT,
    TEXTAREA_LIMIT,
    missing_required,
    parse_submission,
    render_inputs,
    render_readable,
    validate_schema,
)
from models.seed_templates import SEED_TEMPLATES

CJK = re.compile(r"[\u4e00-\u9fff]")

EVERY_TYPE = [
    {"key": "intro", "label": "基本資料", "type": "heading", "help": "請據實填寫。"},
    {"key": "teacher_name", "label": "授課教師", "type": "text", "required": True},
    {"key": "goal", "label": "學習目標", "type": "textarea", "required": True, "help": "一兩句"},
    {"key": "day", "label": "日期", "type": "date", "required": True},
    {"key": "start", "label": "時間", "type": "time"},
    {"key": "lesson", "label": "節次", "type": "number", "min": 1, "max": 9},
    {"key": "mood", "label": "氣氛", "type": "choice", "options": ["熱絡", "平靜"]},
    {"key": "tools", "label": "工具", "type": "multichoice", "options": ["甲", "乙", "丙"]},
    {
        "key": "rubric",
        "label": "規準",
        "type": "table",
        "columns": [
            {"key": "facts", "label": "事實摘要敘述", "type": "textarea", "required": True},
            {
                "key": "rating",
                "label": "評量",
                "type": "choice",
                "required": True,
                "options": ["優良", "通過"],
            },
        ],
        "rows": [{"key": "A-2", "label": "A-2 教材"}, {"key": "B-1", "label": "B-1 規範"}],
    },
    {
        "key": "plan",
        "label": "成長計畫",
        "type": "table",
        "required": True,
        "columns": [
            {"key": "indicator", "label": "成長指標", "type": "text", "required": True},
            {
                "key": "ways",
                "label": "成長方式",
                "type": "multichoice",
                "options": ["研習", "其他"],
            },
            {"key": "due", "label": "完成日期", "type": "date"},
            {"key": "hours", "label": "時數", "type": "number", "min": 0},
        ],
        "rows": None,
        "min_rows": 1,
        "max_rows": 5,
    },
]

FILLED = {
    "teacher_name": "王小明",
    "goal": "能說出分數的意義\n並比較大小",
    "day": "2025-03-14",
    "start": "09:05",
    "lesson": 2,
    "mood": "平靜",
    "tools": ["甲", "丙"],
    "rubric": {
        "A-2": {"facts": "以生活例子引入 <分數>", "rating": "優良"},
        "B-1": {"facts": "課前說明規範", "rating": "通過"},
    },
    "plan": [
        {"indicator": "提問技巧", "ways": ["研習"], "due": "2025-06-30", "hours": 1.5},
        {"indicator": "差異化教學", "ways": [], "due": "", "hours": ""},
    ],
}


class _FormReader(HTMLParser):
    """Collects what a browser would post from rendered inputs, in document order."""

    def __init__(self):
        super().__init__()
        self.posted = MultiDict()
        self.ids = set()
        self.label_targets = []
        self._select = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "label" and "for" in attrs:
            self.label_targets.append(attrs["for"])
        if tag == "input":
            kind = attrs.get("type")
            if kind == "checkbox":
                if "checked" in attrs:
                    self.posted.add(attrs["name"], attrs["value"])
            else:
                self.posted.add(attrs["name"], attrs.get("value", ""))
        elif tag == "select":
            self._select = [attrs["name"], ""]
        elif tag == "option" and self._select is not None and "selected" in attrs:
            self._select[1] = attrs["value"]
        elif tag == "textarea":
            self._textarea = [attrs["name"], ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self.posted.add(*self._select)
            self._select = None
        elif tag == "textarea":
            name, text = self._textarea
            # browsers drop the first newline right after <textarea>
            self.posted.add(name, text[1:] if text.startswith("\n") else text)
            self._textarea = None


def read_form(html):
    """What a browser would post for the rendered inputs."""
    reader = _FormReader()
    reader.feed(str(html))
    reader.close()
    return reader


def sample_value(column_or_field):
    """A valid posted string for one field or column."""
    kind = column_or_field["type"]
    if kind in ("choice", "multichoice"):
        return column_or_field["options"][-1]
    return {
        "text": "示範",
        "textarea": "第一行\n第二行",
        "date": "2025-05-31",
        "time": "14:20",
        "number": str(column_or_field.get("min", 3)),
    }[kind]


def fill_everything(fields):
    """Form data that fills every field and cell of a template (two rows in add-a-row tables)."""
    posted = MultiDict()
    for field in fields:
        if field["type"] == "heading":
            continue
        if field["type"] != "table":
            posted.add(field["key"], sample_value(field))
            continue
        rows = field["rows"]
        row_keys = [row["key"] for row in rows] if rows is not None else ["0", "1"]
        for row_key in row_keys:
            for column in field["columns"]:
                posted.add(f"{field['key']}-{row_key}-{column['key']}", sample_value(column))
    return posted


def messages(fields):
    """validate_schema's problems joined, for substring checks."""
    return "\n".join(validate_schema(fields))


# --- seed templates --------------------------------------------------------------------------


def test_seed_templates_are_the_expected_set():
    codes = [template["code"] for template in SEED_TEMPLATES]

    assert codes == [
        "pre_a",
        "pre_b",
        "obs_rubric_105",
        "obs_anecdotal",
        "obs_verbatim",
        "obs_movement",
        "obs_on_task",
        "obs_flanders",
        "post_a",
        "post_b",
    ]
    for template in SEED_TEMPLATES:
        assert template["kind"] in ("pre_conference", "observation", "post_conference")
        assert CJK.search(template["name"]) and CJK.search(template["description"])
        assert "\n" not in template["description"]


@pytest.mark.parametrize("template", SEED_TEMPLATES, ids=lambda t: t["code"])
def test_seed_template_validates_and_fills(template):
    fields = template["fields"]
    assert validate_schema(fields) == []

    data, errors = parse_submission(fields, fill_everything(fields))
    assert errors == {}
    assert missing_required(fields, data) == []

    reposted = read_form(render_inputs(fields, data, {})).posted
    assert parse_submission(fields, reposted) == (data, {})


def test_pre_conference_variants_differ():
    pre_a, pre_b = SEED_TEMPLATES[0], SEED_TEMPLATES[1]
    keys_a = {field["key"] for field in pre_a["fields"]}
    keys_b = {field["key"] for field in pre_b["fields"]}

    assert len(pre_b["fields"]) < len(pre_a["fields"])
    assert keys_a != keys_b
    # the description is what teachers read: no notes meant for the centre
    assert "精簡" in pre_b["description"] and "後台" not in pre_b["description"]


def test_rubric_and_flanders_rows():
    by_code = {template["code"]: template for template in SEED_TEMPLATES}
    rubric = next(f for f in by_code["obs_rubric_105"]["fields"] if f["type"] == "table")
    flanders = next(f for f in by_code["obs_flanders"]["fields"] if f["type"] == "table")

    assert [row["key"] for row in rubric["rows"]] == ["A-2", "A-3", "A-4", "B-1", "B-2"]
    assert rubric["columns"][1]["options"] == ["優良", "通過", "待成長", "不適用"]
    assert [row["key"] for row in flanders["rows"]] == [str(n) for n in range(1, 11)]


# --- validate_schema -------------------------------------------------------------------------


def test_example_message_names_the_field():
    fields = [
        {"key": "a", "label": "甲", "type": "text"},
        {"key": "b", "label": "乙", "type": "text"},
        {"key": "learning_goal", "label": "學習目標", "type": "foo"},
    ]

    assert validate_schema(fields)[0].startswith("第 3 個欄位「學習目標」的類型「foo」不存在")


def _text(**overrides):
    field = {"key": "goal", "label": "學習目標", "type": "text"}
    field.update(overrides)
    return {key: value for key, value in field.items() if value is not None}


def _table(**overrides):
    field = {
        "key": "plan",
        "label": "計畫",
        "type": "table",
        "columns": [{"key": "what", "label": "項目", "type": "text"}],
        "rows": None,
    }
    field.update(overrides)
    return {key: value for key, value in field.items() if value is not None or key == "rows"}


BAD_DEFINITIONS = {
    "not a list": ({"key": "a"}, "清單"),
    "empty": ([], "至少要有一個欄位"),
    "field not an object": (["學習目標"], "第 1 個欄位必須是物件"),
    "missing key": ([_text(key=None)], "缺少代碼（key）"),
    "missing label": ([_text(label=None)], "缺少名稱（label）"),
    "blank label": ([_text(label="  ")], "不可空白"),
    "missing type": ([_text(type=None)], "缺少類型（type）"),
    "bad key": ([_text(key="Learning Goal")], "「Learning Goal」不合格式"),
    "key with hyphen": ([_text(key="learning-goal")], "不合格式"),
    "non-string key": ([_text(key=["a"])], "不合格式"),
    "reserved key": ([_text(key="csrf_token")], "保留給系統使用"),
    "duplicate key": (
        [_text(), _text(label="學習目標二")],
        "第 2 個欄位「學習目標二」的代碼（key）「goal」與前面重複",
    ),
    "unknown type": ([_text(type="paragraph")], "類型「paragraph」不存在"),
    "unknown attribute": ([_text(optins=["a"])], "無法辨識的設定：optins"),
    "required not bool": ([_text(required="yes")], "只能是 true 或 false"),
    "help not text": ([_text(help=3)], "說明（help）必須是文字"),
    "choice without options": ([_text(type="choice")], "需要提供選項（options）"),
    "empty options": ([_text(type="multichoice", options=[])], "至少有一項"),
    "blank option": ([_text(type="choice", options=["是", ""])], "第 2 個選項"),
    "duplicate option": ([_text(type="choice", options=["是", "是"])], "選項「是」重複了"),
    "padded option": ([_text(type="choice", options=[" 是"])], "前後不可有空白"),
    "options on text": ([_text(options=["是"])], "無法辨識的設定：options"),
    "min not number": ([_text(type="number", min="1")], "min 必須是數字"),
    "min above max": ([_text(type="number", min=5, max=1)], "最小值（min）不可大於最大值"),
    "heading required": (
        [{"key": "h", "label": "標題", "type": "heading", "required": True}, _text()],
        "標題，不能設為必填",
    ),
    "only headings": ([{"key": "h", "label": "標題", "type": "heading"}], "只有標題"),
    "table without columns": ([_table(columns=None)], "需要提供欄（columns）"),
    "table with empty columns": ([_table(columns=[])], "至少有一欄"),
    "column not an object": ([_table(columns=["項目"])], "第 1 欄必須是物件"),
    "column nested table": (
        [_table(columns=[{"key": "x", "label": "巢狀", "type": "table"}])],
        "第 1 欄「巢狀」的類型「table」不能用在表格的欄",
    ),
    "column duplicate key": (
        [
            _table(
                columns=[
                    {"key": "x", "label": "一", "type": "text"},
                    {"key": "x", "label": "二", "type": "text"},
                ]
            )
        ],
        "第 2 欄「二」的代碼（key）「x」與前面重複",
    ),
    "column choice without options": (
        [_table(columns=[{"key": "x", "label": "評量", "type": "choice"}])],
        "「評量」是選擇題，需要提供選項",
    ),
    "column bad key": ([_table(columns=[{"key": "X", "label": "一", "type": "text"}])], "不合格式"),
    "empty fixed rows": ([_table(rows=[])], "設為 null"),
    "fixed row without label": ([_table(rows=[{"key": "A-2"}])], "第 1 列缺少名稱"),
    "fixed row bad key": ([_table(rows=[{"key": "A 2", "label": "甲"}])], "「A 2」不合格式"),
    "fixed row duplicate key": (
        [_table(rows=[{"key": "A-2", "label": "甲"}, {"key": "A-2", "label": "乙"}])],
        "第 2 列「乙」的代碼（key）「A-2」與前面重複",
    ),
    "fixed rows with min_rows": (
        [_table(rows=[{"key": "A-2", "label": "甲"}], min_rows=1)],
        "不能再設定 min_rows",
    ),
    "negative min_rows": ([_table(min_rows=-1)], "min_rows 必須是 0 到 200 的整數"),
    "huge max_rows": ([_table(max_rows=1000)], "max_rows 必須是 1 到 200 的整數"),
    "min_rows above max_rows": ([_table(min_rows=3, max_rows=2)], "min_rows 不可大於 max_rows"),
}


@pytest.mark.parametrize(
    ("fields", "expected"), list(BAD_DEFINITIONS.values()), ids=list(BAD_DEFINITIONS)
)
def test_validate_schema_explains_each_problem(fields, expected):
    problems = validate_schema(fields)

    assert problems, "the definition should have been refused"
    assert expected in "\n".join(problems)
    assert all(CJK.search(problem) for problem in problems)


def test_every_type_definition_is_valid():
    assert validate_schema(EVERY_TYPE) == []


@pytest.mark.parametrize(
    "fields",
    [
        None,
        "[]",
        42,
        [None, 3, "x", []],
        [{"key": {"a": 1}, "label": ["x"], "type": ["text"]}],
        [{"key": "a", "label": "甲", "type": "choice", "options": [[1], {"a": 2}, None]}],
        [{"key": "a", "label": "甲", "type": "table", "columns": [{"type": {}}], "rows": "x"}],
        [{"key": "a", "label": "甲", "type": "table", "columns": {}, "min_rows": "1"}],
        [{"key": "a", "label": "甲", "type": "number", "min": float("nan"), 7: "x"}],
    ],
)
def test_validate_schema_never_raises_on_junk(fields):
    assert validate_schema(fields)


# --- parse_submission ------------------------------------------------------------------------


def test_round_trip_through_rendered_inputs():
    html = render_inputs(EVERY_TYPE, FILLED, {})
    reposted = read_form(html).posted

    data, errors = parse_submission(EVERY_TYPE, reposted)

    assert errors == {}
    assert data == FILLED
    assert reposted["plan-rows"] == "3"


def test_blank_form_round_trip_gives_empty_values_and_required_errors():
    reposted = read_form(render_inputs(EVERY_TYPE, {}, {})).posted

    data, errors = parse_submission(EVERY_TYPE, reposted)

    assert data["start"] == "" and data["lesson"] == "" and data["tools"] == []
    assert data["plan"] == []
    assert data["rubric"] == {
        "A-2": {"facts": "", "rating": ""},
        "B-1": {"facts": "", "rating": ""},
    }
    assert errors == {
        "teacher_name": "此欄位為必填。",
        "goal": "此欄位為必填。",
        "day": "此欄位為必填。",
        "rubric-A-2-facts": "此欄位為必填。",
        "rubric-A-2-rating": "此欄位為必填。",
        "rubric-B-1-facts": "此欄位為必填。",
        "rubric-B-1-rating": "此欄位為必填。",
        "plan": "請至少填寫 1 列。",
    }


def test_required_column_only_binds_rows_that_have_content():
    posted = MultiDict({"plan-0-due": "2025-01-02", "plan-1-indicator": "提問"})

    data, errors = parse_submission([EVERY_TYPE[-1]], posted)

    assert data["plan"][0]["due"] == "2025-01-02"
    assert errors == {"plan-0-indicator": "此欄位為必填。"}


def test_required_table_needs_min_rows():
    table = dict(EVERY_TYPE[-1], min_rows=2)
    posted = MultiDict({"plan-0-indicator": "提問"})

    assert parse_submission([table], posted)[1] == {"plan": "請至少填寫 2 列。"}


def test_optional_add_a_row_table_may_stay_empty():
    table = dict(EVERY_TYPE[-1], required=False)

    assert parse_submission([table], MultiDict({"plan-rows": "1"})) == ({"plan": []}, {})


def test_required_fixed_table_without_required_columns_needs_one_cell():
    table = {
        "key": "counts",
        "label": "次數",
        "type": "table",
        "required": True,
        "columns": [{"key": "n", "label": "次數", "type": "number"}],
        "rows": [{"key": "1", "label": "一"}, {"key": "2", "label": "二"}],
    }

    assert parse_submission([table], MultiDict())[1] == {"counts": "請至少填寫表格中的一格。"}
    data, errors = parse_submission([table], MultiDict({"counts-2-n": "0"}))
    assert errors == {} and data == {"counts": {"1": {"n": ""}, "2": {"n": 0}}}


def test_empty_rows_are_dropped_and_errors_follow_the_kept_rows():
    posted = MultiDict(
        {
            "plan-rows": "5",
            "plan-0-indicator": "   ",
            "plan-1-indicator": "提問",
            "plan-2-hours": "",
            "plan-3-due": "明天",
            "plan-4-ways": "研習",
        }
    )

    data, errors = parse_submission([EVERY_TYPE[-1]], posted)

    assert [row["indicator"] for row in data["plan"]] == ["提問", "", ""]
    assert errors == {
        "plan-1-indicator": "此欄位為必填。",
        "plan-1-due": "日期格式應為 年-月-日，例如 2025-03-14。",
        "plan-2-indicator": "此欄位為必填。",
    }


def test_rows_beyond_max_rows_are_refused():
    posted = MultiDict({f"plan-{index}-indicator": f"第{index}項" for index in range(7)})

    data, errors = parse_submission([EVERY_TYPE[-1]], posted)

    assert len(data["plan"]) == 5
    assert errors == {"plan": "最多只能填寫 5 列。"}


@pytest.mark.parametrize(
    ("posted", "stored"),
    [
        ("2025-03-04", "2025-03-04"),
        ("2025/3/4", "2025-03-04"),
        (" 2024-02-29 ", "2024-02-29"),
    ],
)
def test_dates_are_normalised(posted, stored):
    data, errors = parse_submission([EVERY_TYPE[3]], MultiDict({"day": posted}))

    assert errors == {} and data["day"] == stored


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        ("03/04/2025", "日期格式應為 年-月-日，例如 2025-03-14。"),
        ("昨天", "日期格式應為 年-月-日，例如 2025-03-14。"),
        ("114-03-04", "請以西元年填寫日期，例如 2025-03-14。"),
        ("2025-02-30", "沒有這一天，請檢查月份和日期。"),
        ("2025-13-01", "沒有這一天，請檢查月份和日期。"),
    ],
)
def test_bad_dates(posted, message):
    data, errors = parse_submission([EVERY_TYPE[3]], MultiDict({"day": posted}))

    assert errors == {"day": message}
    assert data["day"] == posted


@pytest.mark.parametrize("posted", ["9999-01-01", "1900-12-31", "2200-01-01"])
def test_dates_out_of_range_say_the_range(posted):
    errors = parse_submission([EVERY_TYPE[3]], MultiDict({"day": posted}))[1]

    assert errors == {"day": "日期須介於 1912-01-01 與 2199-12-31 之間。"}


@pytest.mark.parametrize(("posted", "stored"), [("09:05", "09:05"), ("9:05", "09:05")])
def test_times_are_normalised(posted, stored):
    assert parse_submission([EVERY_TYPE[4]], MultiDict({"start": posted})) == (
        {"start": stored},
        {},
    )


@pytest.mark.parametrize("posted", ["24:00", "12:60", "九點", "0905", "12:5"])
def test_bad_times(posted):
    errors = parse_submission([EVERY_TYPE[4]], MultiDict({"start": posted}))[1]

    assert errors == {"start": "時間格式應為 時:分（24 小時制），例如 09:05。"}


@pytest.mark.parametrize(
    ("posted", "stored"), [("3", 3), ("-0", 0), ("2.5", 2.5), ("007", 7), (" 9 ", 9)]
)
def test_numbers_become_int_or_float(posted, stored):
    field = {"key": "n", "label": "數", "type": "number"}

    data, errors = parse_submission([field], MultiDict({"n": posted}))

    assert errors == {}
    assert data["n"] == stored and type(data["n"]) is type(stored)


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        ("abc", "請填寫數字，例如 3 或 2.5。"),
        ("1e5", "請填寫數字，例如 3 或 2.5。"),
        ("nan", "請填寫數字，例如 3 或 2.5。"),
        ("inf", "請填寫數字，例如 3 或 2.5。"),
        ("1,000", "請填寫數字，例如 3 或 2.5。"),
        ("9" * 5000, "數字太大或位數太多，最多 15 位數。"),
        ("1" * 23, "數字太大或位數太多，最多 15 位數。"),
        ("0", "不可小於 1。"),
        ("9.5", "不可大於 9。"),
    ],
)
def test_bad_numbers(posted, message):
    errors = parse_submission([EVERY_TYPE[5]], MultiDict({"lesson": posted}))[1]

    assert errors == {"lesson": message}


def test_choice_must_be_an_option():
    data, errors = parse_submission([EVERY_TYPE[6]], MultiDict({"mood": "吵鬧"}))

    assert data == {"mood": ""}
    assert errors == {"mood": "請從選項中選擇。"}


def test_multichoice_keeps_option_order_and_refuses_strangers():
    field = EVERY_TYPE[7]

    ok = parse_submission([field], MultiDict([("tools", "丙"), ("tools", "甲"), ("tools", "甲")]))
    bad = parse_submission([field], MultiDict([("tools", "甲"), ("tools", "丁")]))

    assert ok == ({"tools": ["甲", "丙"]}, {})
    assert bad == ({"tools": ["甲"]}, {"tools": "請從選項中選擇。"})


def test_text_is_cleaned():
    posted = MultiDict({"teacher_name": "  王\r\n小明\x00 ", "goal": " 第一行\r\n第二行\t\x07 "})

    data = parse_submission(EVERY_TYPE[1:3], posted)[0]

    assert data == {"teacher_name": "王 小明", "goal": "第一行\n第二行"}


@pytest.mark.parametrize(
    ("field", "limit"), [(EVERY_TYPE[1], TEXT_LIMIT), (EVERY_TYPE[2], TEXTAREA_LIMIT)]
)
def test_long_text_is_refused_with_a_message_and_kept_whole(field, limit):
    data, errors = parse_submission([field], MultiDict({field["key"]: "字" * 100_000}))

    assert len(data[field["key"]]) == 100_000
    assert errors[field["key"]] == f"內容過長：最多 {limit:,} 字，目前有 100,000 字。"


# --- hostile input ---------------------------------------------------------------------------


HOSTILE_POSTS = {
    "nothing": MultiDict(),
    "none": None,
    "duplicates everywhere": MultiDict(
        [(name, value) for name in ("teacher_name", "day", "mood", "lesson") for value in "ab"]
    ),
    "plain dict with lists": {"teacher_name": ["a", ["b"]], "tools": [["甲"], 3], "day": 5},
    "huge strings": MultiDict(
        dict.fromkeys(
            ("teacher_name", "goal", "day", "start", "lesson", "mood", "tools"),
            "<script>" + "x" * 100_000,
        )
    ),
    "huge row count": MultiDict({"plan-rows": str(10**9), "plan-0-indicator": "提問"}),
    "negative row count": MultiDict({"plan-rows": "-5", "plan-2-indicator": "提問"}),
    "junk row count": MultiDict({"plan-rows": "many", "plan-0-hours": "x" * 100_000}),
    "rows far beyond the cap": MultiDict({f"plan-{n}-indicator": "x" for n in range(0, 5000)}),
    "extra names": MultiDict({"csrf_token": "t", "plan-A-2-facts": "x", "rubric-C-9-facts": "y"}),
    "non-string values": {"teacher_name": object(), "lesson": True, "plan-0-indicator": None},
}


@pytest.mark.parametrize("posted", list(HOSTILE_POSTS.values()), ids=list(HOSTILE_POSTS))
def test_hostile_posts_never_raise(posted):
    data, errors = parse_submission(EVERY_TYPE, posted)

    assert set(data) == {field["key"] for field in EVERY_TYPE if field["type"] != "heading"}
    assert all(isinstance(message, str) and CJK.search(message) for message in errors.values())
    assert len(data["plan"]) <= 5
    # an overlong text comes back whole, for the form, but with an error, so it is never stored
    for key, limit in (("teacher_name", TEXT_LIMIT), ("goal", TEXTAREA_LIMIT)):
        assert len(data[key]) <= limit or key in errors
    render_inputs(EVERY_TYPE, data, errors)
    render_readable(EVERY_TYPE, data)
    missing_required(EVERY_TYPE, data)


def test_two_values_for_a_scalar_are_refused():
    data, errors = parse_submission(EVERY_TYPE[1:2], MultiDict([("teacher_name", "甲")] * 2))

    assert data == {"teacher_name": ""}
    assert errors == {"teacher_name": "此欄位只能填一個值。"}


def test_uncapped_table_reads_at_most_the_row_limit():
    table = dict(EVERY_TYPE[-1], max_rows=None, required=False)
    posted = MultiDict({f"plan-{n}-indicator": "x" for n in range(ROW_LIMIT + 50)})
    posted["plan-rows"] = str(10**9)

    data, errors = parse_submission([table], posted)

    assert len(data["plan"]) == ROW_LIMIT
    assert errors == {"plan": f"最多只能填寫 {ROW_LIMIT} 列。"}


# --- missing_required ------------------------------------------------------------------------


def test_missing_required_lists_labels_in_template_order():
    assert missing_required(EVERY_TYPE, {}) == ["授課教師", "學習目標", "日期", "規準", "成長計畫"]
    assert missing_required(EVERY_TYPE, None) == missing_required(EVERY_TYPE, {})
    assert missing_required(EVERY_TYPE, FILLED) == []


def test_missing_required_checks_required_cells():
    half_rubric = dict(FILLED, rubric={"A-2": {"facts": "有", "rating": "優良"}})
    plan_row_without_indicator = dict(FILLED, plan=[{"indicator": " ", "due": "2025-01-01"}])
    blank_plan_rows = dict(FILLED, plan=[{"indicator": "", "ways": []}])

    assert missing_required(EVERY_TYPE, half_rubric) == ["規準"]
    assert missing_required(EVERY_TYPE, plan_row_without_indicator) == ["成長計畫"]
    assert missing_required(EVERY_TYPE, blank_plan_rows) == ["成長計畫"]


def test_zero_counts_as_filled():
    field = {"key": "n", "label": "次數", "type": "number", "required": True}

    assert missing_required([field], {"n": 0}) == []
    assert missing_required([field], {"n": ""}) == ["次數"]


def test_missing_required_tolerates_malformed_data():
    junk = {"teacher_name": ["王"], "rubric": ["x"], "plan": {"0": {}}, "goal": 7}

    assert missing_required(EVERY_TYPE, junk) == ["日期", "規準", "成長計畫"]


# --- rendering -------------------------------------------------------------------------------


def test_render_readable_escapes_and_marks_empty_values():
    data = dict(
        FILLED,
        teacher_name='<script>alert("x")</script>',
        start="",
        plan=[{"indicator": "<b>粗</b>", "ways": ["研習"]}],
    )

    html = str(render_readable(EVERY_TYPE, data))

    assert "<script>" not in html and "<b>粗" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert '<dt>時間</dt><dd><span class="empty">（未填）</span></dd>' in html
    assert '<h4 class="record-heading">基本資料</h4>' in html
    assert "能說出分數的意義<br>\n並比較大小" in html
    assert "<dt>工具</dt><dd>甲、丙</dd>" in html
    assert html.count('<div class="table-scroll">') == 2
    assert html.count('<table class="record-table">') == 2
    assert "以生活例子引入 &lt;分數&gt;" in html


def test_render_readable_of_nothing():
    html = str(render_readable(EVERY_TYPE, None))

    assert html.count("（未填）") == 7 + 4 + 1
    assert "<table" in html  # the fixed-row table still shows its rows


def test_render_inputs_marks_required_fields_and_links_labels():
    reader = read_form(render_inputs(EVERY_TYPE, {}, {}))
    html = str(render_inputs(EVERY_TYPE, {}, {}))

    assert (
        '<label class="field-label" for="f-teacher_name">授課教師<span class="req">*</span>' in html
    )
    assert '<label class="field-label" for="f-start">時間</label>' in html
    assert all(target in reader.ids for target in reader.label_targets)
    assert '<input type="date"' in html and '<input type="time"' in html
    assert '<input type="number"' in html and "<textarea" in html
    assert '<option value="">請選擇</option>' in html
    assert 'type="checkbox"' in html
    assert "<form" not in html and "csrf" not in html


def test_render_inputs_for_add_a_row_tables():
    html = str(render_inputs(EVERY_TYPE, FILLED, {}))
    reader = read_form(html)

    assert '<button type="button" class="add-row" data-table="plan">新增一列</button>' in html
    assert '<input type="hidden" id="f-plan-rows" name="plan-rows" value="3">' in html
    assert reader.posted.getlist("plan-2-indicator") == [""]
    assert "plan-3-indicator" not in reader.posted
    assert html.count('<div class="table-scroll">') == 2


def test_render_inputs_stops_spare_rows_at_max_rows():
    rows = [{"indicator": str(n)} for n in range(5)]

    html = str(render_inputs(EVERY_TYPE, {"plan": rows}, {}))

    assert 'name="plan-rows" value="5"' in html
    assert 'name="plan-5-indicator"' not in html


def test_render_inputs_shows_errors_next_to_fields():
    errors = {
        "teacher_name": "此欄位為必填。",
        "plan-0-indicator": "<i>注意</i>",
        "plan": "請至少填寫 1 列。",
    }

    html = str(render_inputs(EVERY_TYPE, {}, errors))

    assert '<div class="field-error" id="f-teacher_name-error">此欄位為必填。</div>' in html
    assert '<div class="field-error" id="f-plan-0-indicator-error">&lt;i&gt;注意' in html
    assert '<div class="field-error" id="f-plan-error">請至少填寫 1 列。</div>' in html
    assert 'aria-invalid="true"' in html and "has-error" in html


def test_render_inputs_escapes_values():
    data = {
        "teacher_name": '"><script>alert(1)</script>',
        "goal": "</textarea><script>x</script>",
        "rubric": {"A-2": {"facts": "<img src=x onerror=alert(1)>"}},
    }

    html = str(render_inputs(EVERY_TYPE, data, {}))
    reposted = read_form(html).posted

    assert "<script>" not in html and "<img" not in html
    assert reposted["teacher_name"] == data["teacher_name"]
    assert reposted["goal"] == data["goal"]
    assert reposted["rubric-A-2-facts"] == data["rubric"]["A-2"]["facts"]


def test_rendering_is_deterministic():
    assert render_inputs(EVERY_TYPE, FILLED, {}) == render_inputs(EVERY_TYPE, FILLED, {})
    assert render_readable(EVERY_TYPE, FILLED) == render_readable(EVERY_TYPE, FILLED)


# --- whole numbers and rules between fields ---------------------------------------------------


LESSON_FIELDS = [
    {
        "key": "lesson_number",
        "label": "本節為第幾節",
        "type": "number",
        "min": 1,
        "integer": True,
        "at_most_field": "lesson_total",
    },
    {"key": "lesson_total", "label": "本單元共幾節", "type": "number", "min": 1, "integer": True},
    {"key": "pre_day", "label": "觀察前會談日期", "type": "date"},
    {"key": "post_day", "label": "回饋會談日期", "type": "date", "not_before": "pre_day"},
]


def test_lesson_fields_are_a_valid_definition():
    assert validate_schema(LESSON_FIELDS) == []


@pytest.mark.parametrize(
    ("posted", "message"), [("1.5", "請填寫整數，例如 3。"), ("abc", "請填寫整數，例如 3。")]
)
def test_integer_fields_refuse_fractions(posted, message):
    errors = parse_submission(LESSON_FIELDS, MultiDict({"lesson_total": posted}))[1]

    assert errors == {"lesson_total": message}


def test_integer_fields_store_whole_numbers():
    data, errors = parse_submission(LESSON_FIELDS, MultiDict({"lesson_total": "3.0"}))

    assert errors == {} and data["lesson_total"] == 3 and type(data["lesson_total"]) is int


def test_integer_fields_step_by_one_in_the_browser():
    html = str(render_inputs(LESSON_FIELDS, {}, {}))

    assert re.search(
        r'<input type="number" step="1" inputmode="numeric"[^>]*name="lesson_total"', html
    )


def test_a_number_may_not_exceed_the_field_it_names():
    posted = MultiDict({"lesson_number": "5", "lesson_total": "3"})

    errors = parse_submission(LESSON_FIELDS, posted)[1]

    assert errors == {"lesson_number": "不可大於「本單元共幾節」（3）。"}
    assert (
        parse_submission(LESSON_FIELDS, MultiDict({"lesson_number": "3", "lesson_total": "3"}))[1]
        == {}
    )


def test_a_date_may_not_be_earlier_than_the_field_it_names():
    posted = MultiDict({"pre_day": "2025-03-10", "post_day": "2025-03-09"})

    errors = parse_submission(LESSON_FIELDS, posted)[1]

    assert errors == {"post_day": "不可早於「觀察前會談日期」（2025-03-10）。"}


def test_a_date_may_not_be_earlier_than_a_date_of_another_record():
    fields = [{"key": "day", "label": "回饋會談日期", "type": "date", "not_before": "pre.pre_day"}]
    fields[0]["not_before"] = "pre_conference.pre_day"
    others = {"pre_conference": ("觀察前會談紀錄表", LESSON_FIELDS, {"pre_day": "2025-03-10"})}

    early = parse_submission(fields, MultiDict({"day": "2025-03-01"}), others)[1]
    same_day = parse_submission(fields, MultiDict({"day": "2025-03-10"}), others)[1]
    no_other = parse_submission(fields, MultiDict({"day": "2025-03-01"}), {})[1]

    assert early == {"day": "不可早於「觀察前會談紀錄表」的「觀察前會談日期」（2025-03-10）。"}
    assert same_day == {} and no_other == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"integer": "yes"}, "的整數（integer）只能是 true 或 false。"),
        (
            {"at_most_field": "pre_day"},
            "的 at_most_field 必須是本範本另一個數字欄位的代碼（key）。",
        ),
        ({"at_most_field": "lesson_number"}, "的 at_most_field 必須是本範本另一個數字欄位"),
    ],
)
def test_comparison_settings_are_checked(change, message):
    fields = [dict(LESSON_FIELDS[0], **change), *LESSON_FIELDS[1:]]

    problems = validate_schema(fields)

    assert any(message in problem for problem in problems), problems


@pytest.mark.parametrize("reference", ["lesson_total", "post_day", "nowhere.day", "missing"])
def test_not_before_must_name_a_date(reference):
    fields = [*LESSON_FIELDS[:3], dict(LESSON_FIELDS[3], not_before=reference)]

    assert any("的 not_before 必須是" in problem for problem in validate_schema(fields))


def test_seed_lesson_and_conference_rules():
    by_code = {template["code"]: template for template in SEED_TEMPLATES}
    pre = {field["key"]: field for field in by_code["pre_a"]["fields"]}
    post = {field["key"]: field for field in by_code["post_a"]["fields"]}

    assert pre["lesson_number"]["integer"] and pre["lesson_total"]["integer"]
    assert pre["lesson_number"]["at_most_field"] == "lesson_total"
    assert post["feedback_date"]["not_before"] == "pre_conference.pre_meeting_date"
    assert "後台" not in by_code["pre_b"]["description"]
    assert all("後台" not in template["description"] for template in SEED_TEMPLATES)
