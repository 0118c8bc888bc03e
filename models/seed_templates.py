"""The observation-record templates shipped with the system, loaded once by `flask seed-templates`.

The field lists follow the official forms only as far as public material shows them, so parts
are unverified: staff correct them in the back office, and each edit there makes a new template
version (records already filled keep the version they were filled against). Editing this file
changes only what a fresh database starts with.

Every template here must pass `form_schema.validate_schema`; the tests check that.
"""

RATINGS = ["優良", "通過", "待成長", "不適用"]

GROWTH_METHODS = ["研讀書籍", "參加研習", "觀看影帶", "參加學習社群", "公開授課/教學觀察", "其他"]


def _text(key, label, required=True, help_text=None):
    """A one-line text field."""
    return _field(key, label, "text", required, help_text)


def _textarea(key, label, required=True, help_text=None):
    """A multi-line text field."""
    return _field(key, label, "textarea", required, help_text)


def _field(key, label, kind, required=True, help_text=None, **settings):
    """A field dict in the schema format, leaving out an empty hint."""
    field = {"key": key, "label": label, "type": kind, "required": required}
    if help_text:
        field["help"] = help_text
    field.update(settings)
    return field


def _heading(key, label):
    """A section title."""
    return {"key": key, "label": label, "type": "heading"}


def _teacher_header():
    """Who teaches what to whom: the first lines of every record."""
    return [
        _heading("basic_heading", "基本資料"),
        _text("teacher_name", "授課教師"),
        _text("grade", "任教年級", help_text="例如：國小五年級、國中八年級。"),
        _text("subject", "任教領域/科目", help_text="例如：數學領域、自然科學領域/生物。"),
        _text("observer_name", "回饋人員"),
        _text("teaching_unit", "教學單元"),
        _field(
            "lesson_number",
            "教學節次：本節為第幾節",
            "number",
            min=1,
            max=99,
            integer=True,
            at_most_field="lesson_total",
        ),
        _field("lesson_total", "教學節次：本單元共幾節", "number", min=1, max=99, integer=True),
    ]


def _pre_conference_header():
    """The header of a pre-observation conference record."""
    return [
        *_teacher_header(),
        _field("pre_meeting_date", "觀察前會談日期", "date"),
        _field("pre_meeting_time", "觀察前會談時間", "time"),
        _text("pre_meeting_place", "觀察前會談地點"),
        _field("observation_date", "預定入班觀察日期", "date", not_before="pre_meeting_date"),
        _field("observation_time", "預定入班觀察時間", "time"),
        _text("observation_place", "預定入班觀察地點"),
    ]


def _feedback_meeting_plan():
    """When and where the post-observation conference is planned."""
    return [
        _field("feedback_date", "回饋會談日期", "date", not_before="pre_meeting_date"),
        _text("feedback_place", "回饋會談地點"),
    ]


def _observation_header():
    """The header of an observation record."""
    return [
        *_teacher_header(),
        _field("observation_date", "入班觀察日期", "date"),
        _field("observation_time", "觀察開始時間", "time"),
        _text("observation_place", "觀察地點"),
    ]


def _post_conference_header():
    """The header of a post-observation conference record."""
    return [
        *_teacher_header(),
        _field(
            "feedback_date",
            "回饋會談日期",
            "date",
            not_before="pre_conference.pre_meeting_date",
        ),
        _text("feedback_place", "回饋會談地點"),
    ]


def _growth_plan():
    """The teacher's professional-growth plan, one row per growth indicator."""
    return {
        "key": "growth_plan",
        "label": "授課教師預定專業成長計畫",
        "type": "table",
        "required": True,
        "help": "每一列寫一項成長指標；需要更多列時按「新增一列」。",
        "columns": [
            {"key": "indicator", "label": "成長指標", "type": "text", "required": True},
            {
                "key": "methods",
                "label": "成長方式",
                "type": "multichoice",
                "required": True,
                "options": list(GROWTH_METHODS),
            },
            {"key": "summary", "label": "內容概要說明", "type": "textarea"},
            {"key": "helpers", "label": "協助人員或單位", "type": "text"},
            {"key": "due_date", "label": "預計完成日期", "type": "date", "required": True},
        ],
        "rows": None,
        "min_rows": 1,
        "max_rows": 10,
    }


def _reflection(label="觀察者省思", help_text=None):
    """The observer's closing reflection."""
    return _textarea("reflection", label, help_text=help_text)


def _added_rows_table(key, label, columns, help_text=None, max_rows=60):
    """A required table whose rows the observer adds while watching the lesson."""
    table = {
        "key": key,
        "label": label,
        "type": "table",
        "required": True,
        "columns": columns,
        "rows": None,
        "min_rows": 1,
        "max_rows": max_rows,
    }
    if help_text:
        table["help"] = help_text
    return table


PRE_A = {
    "code": "pre_a",
    "kind": "pre_conference",
    "name": "觀察前會談紀錄表（甲式）",
    "description": "逐項記錄學習目標、學生經驗、教學流程與評量方式，以及觀察焦點與工具。",
    "fields": [
        *_pre_conference_header(),
        _heading("content_heading", "會談內容"),
        _textarea(
            "learning_goal",
            "學習目標",
            help_text="本節希望學生達成的目標，可對應核心素養、學習表現與學習內容。",
        ),
        _textarea(
            "student_experience",
            "學生經驗",
            help_text="學生已有的先備知識、起點能力，以及班上的學習特性。",
        ),
        _textarea("teaching_flow", "教師教學預定流程與策略"),
        _textarea("student_strategy", "學生學習策略或方法"),
        _textarea("assessment", "教學評量方式"),
        _textarea(
            "focus_and_tools",
            "觀察焦點與觀察工具",
            help_text="說明回饋人員要看什麼，以及會使用哪一種觀察紀錄表。",
        ),
        *_feedback_meeting_plan(),
    ],
}

PRE_B = {
    "code": "pre_b",
    "kind": "pre_conference",
    "name": "觀察前會談紀錄表（乙式）",
    "description": "精簡版：會談內容合併為四個較寬的提問。",
    "fields": [
        *_pre_conference_header(),
        _heading("content_heading", "會談內容"),
        _textarea(
            "goal_and_students",
            "學習目標與學生經驗",
            help_text="本節的學習目標，以及學生在這個主題上已經會什麼、可能卡在哪裡。",
        ),
        _textarea(
            "teaching_and_learning",
            "教學流程與學生學習方式",
            help_text="教師預定的教學步驟與策略，以及學生在各步驟中如何學習。",
        ),
        _textarea("assessment", "教學評量方式"),
        _textarea("focus_and_tools", "觀察焦點與觀察工具"),
        *_feedback_meeting_plan(),
    ],
}

OBS_RUBRIC_105 = {
    "code": "obs_rubric_105",
    "kind": "observation",
    "name": "105年版教師專業發展規準觀察紀錄表",
    "description": "依規準層面 A、B 的指標，逐項寫下觀察到的事實並給予評量。",
    "fields": [
        *_observation_header(),
        _heading("rubric_heading", "觀察紀錄"),
        {
            "key": "indicators",
            "label": "觀察指標與評量",
            "type": "table",
            "required": True,
            "help": (
                "事實摘要只寫課堂上看到、聽到的具體事實，不寫推論；"
                "本節未出現相關情境時，評量選「不適用」並簡述原因。"
            ),
            "columns": [
                {"key": "facts", "label": "事實摘要敘述", "type": "textarea", "required": True},
                {
                    "key": "rating",
                    "label": "評量",
                    "type": "choice",
                    "required": True,
                    "options": list(RATINGS),
                },
            ],
            "rows": [
                {
                    "key": "A-2",
                    "label": "A-2 掌握教材內容，實施教學活動，促進學生學習。",
                },
                {
                    "key": "A-3",
                    "label": "A-3 運用適切教學策略與溝通技巧，幫助學生學習。",
                },
                {
                    "key": "A-4",
                    "label": "A-4 運用多元評量方式評估學生能力，提供學習回饋並調整教學。",
                },
                {
                    "key": "B-1",
                    "label": "B-1 建立課堂規範，並適切回應學生的行為表現。",
                },
                {
                    "key": "B-2",
                    "label": "B-2 安排學習情境，促進師生互動。",
                },
            ],
        },
    ],
}

OBS_ANECDOTAL = {
    "code": "obs_anecdotal",
    "kind": "observation",
    "name": "軼事紀錄表",
    "description": "依時間順序記下教師的教學行為與學生的反應，最後寫下觀察者的省思。",
    "fields": [
        *_observation_header(),
        _heading("record_heading", "觀察紀錄"),
        _added_rows_table(
            "events",
            "教學事件紀錄",
            [
                {"key": "time", "label": "時間", "type": "time", "required": True},
                {"key": "teacher_action", "label": "教師教學行為", "type": "textarea"},
                {"key": "student_action", "label": "學生學習行為", "type": "textarea"},
            ],
            help_text="每一列記一個片段：當下的時間、教師做了什麼、學生如何回應。",
        ),
        _reflection(),
    ],
}

OBS_VERBATIM = {
    "code": "obs_verbatim",
    "kind": "observation",
    "name": "選擇性逐字紀錄表",
    "description": "針對觀察焦點，逐字記下師生在課堂上說的話，再寫下省思。",
    "fields": [
        *_observation_header(),
        _text(
            "verbatim_focus",
            "逐字紀錄的焦點",
            help_text="例如：教師的提問、教師給學生的回饋、學生的發言。",
        ),
        _heading("record_heading", "逐字紀錄"),
        _added_rows_table(
            "transcript",
            "逐字紀錄",
            [
                {"key": "time", "label": "時間", "type": "time"},
                {
                    "key": "speaker",
                    "label": "說話者",
                    "type": "choice",
                    "required": True,
                    "options": ["教師", "學生"],
                },
                {"key": "words", "label": "逐字內容", "type": "textarea", "required": True},
            ],
            max_rows=200,
        ),
        _reflection("省思"),
    ],
}

OBS_MOVEMENT = {
    "code": "obs_movement",
    "kind": "observation",
    "name": "教室移動紀錄表",
    "description": "描述座位配置，依時段記下教師在教室中的移動路線與師生互動。",
    "fields": [
        *_observation_header(),
        _textarea(
            "seat_map",
            "座位表與教室配置說明",
            help_text="說明講台、黑板、門窗與各組座位的位置，並為座位編號（例如 S1～S30）。",
        ),
        _heading("record_heading", "移動紀錄"),
        _added_rows_table(
            "movements",
            "移動路線與互動",
            [
                {"key": "time", "label": "時段", "type": "time", "required": True},
                {
                    "key": "path",
                    "label": "移動路線",
                    "type": "textarea",
                    "required": True,
                },
                {"key": "interaction", "label": "與學生的互動", "type": "textarea"},
            ],
            help_text="用座位編號寫出路線，例如「講台→S5→S12→講台」；時段填該時段的開始時間。",
        ),
        _reflection("分析與省思"),
    ],
}

OBS_ON_TASK = {
    "code": "obs_on_task",
    "kind": "observation",
    "name": "在工作中紀錄表",
    "description": "每隔一段時間掃視全班一次，記下專注、分心、求助與聊天的學生人數。",
    "fields": [
        *_observation_header(),
        _field("class_size", "全班學生人數", "number", min=1, max=200, integer=True),
        _text(
            "sweep_interval",
            "掃視間隔",
            required=False,
            help_text="例如：每 5 分鐘掃視一次。",
        ),
        _heading("record_heading", "掃視紀錄"),
        _added_rows_table(
            "sweeps",
            "掃視紀錄",
            [
                {"key": "time", "label": "時間", "type": "time", "required": True},
                {
                    "key": "on_task",
                    "label": "專注",
                    "type": "number",
                    "required": True,
                    "min": 0,
                    "integer": True,
                },
                {
                    "key": "distracted",
                    "label": "分心",
                    "type": "number",
                    "required": True,
                    "min": 0,
                    "integer": True,
                },
                {
                    "key": "asking_help",
                    "label": "求助",
                    "type": "number",
                    "required": True,
                    "min": 0,
                    "integer": True,
                },
                {
                    "key": "chatting",
                    "label": "聊天",
                    "type": "number",
                    "required": True,
                    "min": 0,
                    "integer": True,
                },
                {"key": "note", "label": "備註", "type": "text"},
            ],
            help_text="每次掃視填一列，各欄寫該狀態的學生人數（沒有就填 0）。",
        ),
        _reflection("分析與省思"),
    ],
}

FLANDERS_CATEGORIES = [
    ("1", "1 接納學生的感受（教師間接影響）"),
    ("2", "2 稱讚或鼓勵（教師間接影響）"),
    ("3", "3 接納或引用學生的想法（教師間接影響）"),
    ("4", "4 提問（教師間接影響）"),
    ("5", "5 講述（教師直接影響）"),
    ("6", "6 給予指示（教師直接影響）"),
    ("7", "7 批評或維護權威（教師直接影響）"),
    ("8", "8 學生回應性的說話"),
    ("9", "9 學生主動的說話"),
    ("10", "10 安靜或混亂"),
]

OBS_FLANDERS = {
    "code": "obs_flanders",
    "kind": "observation",
    "name": "佛蘭德斯互動分析",
    "description": "每 3 秒記下當下的師生互動類別，統計十個類別各出現幾次並加以分析。",
    "fields": [
        *_observation_header(),
        _field("duration_minutes", "觀察時間長度（分鐘）", "number", min=1, max=300, integer=True),
        _heading("record_heading", "互動類別統計"),
        {
            "key": "categories",
            "label": "各類別次數",
            "type": "table",
            "required": True,
            "help": "每 3 秒記一次當下的類別代碼，課後統計每個類別的次數填入（沒有就填 0）。",
            "columns": [
                {
                    "key": "count",
                    "label": "次數",
                    "type": "number",
                    "required": True,
                    "min": 0,
                    "integer": True,
                },
            ],
            "rows": [{"key": key, "label": label} for key, label in FLANDERS_CATEGORIES],
        },
        _reflection("分析與省思"),
    ],
}

POST_A = {
    "code": "post_a",
    "kind": "post_conference",
    "name": "觀察後會談紀錄表（甲式）",
    "description": "記錄教與學的優點與待精進之處，並訂定授課教師的專業成長計畫。",
    "fields": [
        *_post_conference_header(),
        _heading("content_heading", "會談內容"),
        _textarea(
            "strengths",
            "教與學之優點及特色",
            help_text="可對照觀察前會談約定的觀察焦點，引用觀察紀錄中的事實。",
        ),
        _textarea("improvements", "教與學之待調整或精進之處"),
        _heading("growth_heading", "專業成長計畫"),
        _growth_plan(),
    ],
}

POST_B = {
    "code": "post_b",
    "kind": "post_conference",
    "name": "觀察後會談紀錄表（乙式）",
    "description": "分別就教師教學與學生學習寫下優點與待精進之處，再訂成長計畫。",
    "fields": [
        *_post_conference_header(),
        _heading("content_heading", "會談內容"),
        {
            "key": "feedback",
            "label": "教與學之回饋",
            "type": "table",
            "required": True,
            "columns": [
                {
                    "key": "strengths",
                    "label": "優點及特色",
                    "type": "textarea",
                    "required": True,
                },
                {
                    "key": "improvements",
                    "label": "待調整或精進之處",
                    "type": "textarea",
                    "required": True,
                },
            ],
            "rows": [
                {"key": "teaching", "label": "教師教學"},
                {"key": "learning", "label": "學生學習"},
            ],
        },
        _textarea("teacher_reflection", "授課教師的回應與省思", required=False),
        _heading("growth_heading", "專業成長計畫"),
        _growth_plan(),
    ],
}

SEED_TEMPLATES = [
    PRE_A,
    PRE_B,
    OBS_RUBRIC_105,
    OBS_ANECDOTAL,
    OBS_VERBATIM,
    OBS_MOVEMENT,
    OBS_ON_TASK,
    OBS_FLANDERS,
    POST_A,
    POST_B,
]
