"""The teacher portal through its real pages: eligibility, the six items, records, submission,
the flow chart, the profile, blank documents and who may see what."""

import io
import re
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from werkzeug.datastructures import MultiDict

from admin_app.demo import demo_formdata
from admin_app.extensions import db
from admin_app.i18n import now_utc, roc_date
from models import (
    ApplicationItem,
    AuditEvent,
    Case,
    CaseState,
    CertificateHeld,
    CertificateLevel,
    Document,
    FormEntry,
    FormTemplate,
    FormTemplateVersion,
    TrainingRecord,
    workflow,
)
from models.application import attach_document, open_case

from .factories import case_in, pdf_upload
from .pages import count, flashes, text


class FormReader(HTMLParser):
    """What a browser would submit from one <form>: every control's name and current value."""

    def __init__(self, form_class):
        super().__init__()
        self.form_class = form_class
        self.inside = False
        self.values = MultiDict()
        self.names = []
        self.options = {}
        self._select = None
        self._select_value = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.form_class in (attrs.get("class") or "").split():
            self.inside = True
        if not self.inside or "name" not in attrs and tag != "option":
            return
        name = attrs.get("name")
        if tag == "input":
            self.names.append(name)
            kind = attrs.get("type", "text")
            if kind == "checkbox":
                self.options.setdefault(name, []).append(attrs.get("value"))
                if "checked" in attrs:
                    self.values.add(name, attrs.get("value"))
            elif kind not in ("submit", "button", "file"):
                self.values.add(name, attrs.get("value", ""))
        elif tag == "textarea":
            self.names.append(name)
            self._textarea = name
            self.values.add(name, "")
        elif tag == "select":
            self.names.append(name)
            self._select = name
            self._select_value = None
            self.options[name] = []
        elif tag == "option" and self._select:
            value = attrs.get("value", "")
            self.options[self._select].append(value)
            if "selected" in attrs or self._select_value is None:
                self._select_value = value

    def handle_data(self, data):
        if self._textarea:
            values = self.values.getlist(self._textarea)
            values[-1] += data
            self.values.setlist(self._textarea, values)

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea:
            values = self.values.getlist(self._textarea)
            values[-1] = values[-1].removeprefix("\n")
            self.values.setlist(self._textarea, values)
            self._textarea = None
        elif tag == "select" and self._select:
            self.values.add(self._select, self._select_value or "")
            self._select = None
        elif tag == "form" and self.inside:
            self.inside = False


def read_form(response, form_class="record-form"):
    reader = FormReader(form_class)
    reader.feed(text(response))
    assert reader.names, f"no form .{form_class} on the page"
    return reader


def template_by_code(code):
    return db.session.scalar(sa.select(FormTemplate).where(FormTemplate.code == code))


def entry_of(case, item):
    db.session.expire_all()
    return db.session.scalar(
        sa.select(FormEntry).where(FormEntry.case_id == case.id, FormEntry.item == item)
    )


def item_order(page):
    return re.findall(r'<span class="item-label">(.*?)</span>', page)


def item_block(page, item):
    """The <li> of one item on the application page."""
    match = re.search(rf'<li class="([^"]*)" id="item-{item.value}">(.*?)</li>', page, re.S)
    assert match, f"item {item.value} not on the page"
    return match.group(1).split(), match.group(2)


@pytest.fixture
def started(teacher, cycle):
    """The teacher's draft case with nothing filled."""
    case = open_case(teacher, cycle)
    db.session.commit()
    return case


# --- home, menu and landing -----------------------------------------------------------------


def test_home_menu_leads_to_the_application_page(login, teacher):
    page = text(login(teacher).get("/"))

    assert "認證專區" in page and "進階認證" in page
    assert 'href="/apply"' in page and "進階專業回饋人才認證" in page
    assert 'href="/profile"' in page and teacher.name in page


def test_apply_page_has_the_breadcrumb(login, teacher):
    page = text(login(teacher).get("/apply"))
    crumbs = re.findall(r"<li[^>]*>(?:<a[^>]*>|<span>)(.*?)</", page.split("breadcrumb")[1])

    assert crumbs[:4] == ["首頁", "認證專區", "進階認證", "進階專業回饋人才認證"]


def test_staff_go_to_the_back_office_and_may_not_use_the_application(login, staff):
    client = login(staff)

    assert client.get("/").headers["Location"].endswith("/admin/")
    assert client.get("/apply").status_code == 403
    assert client.post("/apply/start").status_code == 403


def test_reviewer_gets_a_landing_page_and_no_application(login, reviewer):
    client = login(reviewer)

    landing = client.get("/")
    assert landing.status_code == 200 and "審查委員" in text(landing)
    assert client.get("/apply").status_code == 403
    assert client.get("/apply/record/observation").status_code == 403


# --- eligibility ----------------------------------------------------------------------------


def make_applicant(make_user, school, cycle, hours=0, basic=False, advanced=False):
    user = make_user("applicant9", school=school)
    if hours:
        db.session.add(
            TrainingRecord(
                user=user,
                course="進階專業回饋人才培訓",
                hours=hours,
                completed_on=date(2026, 3, 1),
                academic_year=cycle.hours_to_year,
            )
        )
    if basic:
        db.session.add(CertificateHeld(user=user, level=CertificateLevel.basic, number="初-001"))
    if advanced:
        db.session.add(CertificateHeld(user=user, level=CertificateLevel.advanced, number="進-001"))
    db.session.commit()
    return user


def unmet_items(page):
    return [
        re.sub(r"\s+", " ", item).strip()
        for item in re.findall(r'<li class="unmet">(.*?)</li>', page, re.S)
    ]


def test_short_hours_are_listed_in_red_with_the_figures(login, make_user, school, cycle):
    user = make_applicant(make_user, school, cycle, hours=12, basic=True)

    page = text(login(user).get("/apply"))

    assert unmet_items(page) == ["進階培訓時數不足：113–114 學年度已完成 12 小時，需 18 小時。"]
    assert 'href="/profile#training"' in page
    assert "開始申請" not in page


def test_missing_basic_certificate_is_listed(login, make_user, school, cycle):
    user = make_applicant(make_user, school, cycle, hours=18)

    page = text(login(user).get("/apply"))

    assert unmet_items(page) == ["尚未取得初階專業回饋人才認證。"]
    assert "開始申請" not in page


def test_already_advanced_is_listed(login, make_user, school, cycle):
    user = make_applicant(make_user, school, cycle, hours=18, basic=True, advanced=True)

    page = text(login(user).get("/apply"))

    assert unmet_items(page) == ["已取得進階專業回饋人才認證，無須再次申請。"]


def test_every_unmet_rule_is_listed_at_once(login, make_user, school, cycle):
    user = make_applicant(make_user, school, cycle, hours=0, advanced=True)

    page = text(login(user).get("/apply"))

    assert unmet_items(page) == [
        "進階培訓時數不足：113–114 學年度已完成 0 小時，需 18 小時。",
        "尚未取得初階專業回饋人才認證。",
        "已取得進階專業回饋人才認證，無須再次申請。",
    ]


def test_ineligible_crafted_start_is_refused(login, make_user, school, cycle):
    user = make_applicant(make_user, school, cycle, hours=6, basic=True)

    response = login(user).post("/apply/start", follow_redirects=True)

    assert "您尚未符合申請資格，請先查看資格檢核結果。" in flashes(response)
    assert count(Case) == 0


def test_eligible_teacher_sees_the_start_button_and_starts(login, teacher, cycle):
    client = login(teacher)
    page = text(client.get("/apply"))

    assert unmet_items(page) == []
    assert 'action="/apply/start"' in page and "開始申請" in page
    assert cycle.window_label in page

    response = client.post("/apply/start", follow_redirects=True)

    assert count(Case, Case.applicant_id == teacher.id) == 1
    assert item_order(text(response)) == [str(item.label) for item in ApplicationItem]
    assert 'action="/apply/start"' not in text(response)


def test_start_twice_keeps_one_case(login, teacher, cycle):
    client = login(teacher)
    client.post("/apply/start")
    client.post("/apply/start")

    assert count(Case, Case.applicant_id == teacher.id) == 1


def test_no_start_button_outside_the_window(login, teacher, cycle):
    cycle.opens_at = now_utc() + timedelta(days=1)
    cycle.closes_at = now_utc() + timedelta(days=20)
    db.session.commit()
    client = login(teacher)

    page = text(client.get("/apply"))
    assert "開始申請" not in page and "目前不在申請期間內" in page
    assert "目前不在申請期間內" in " ".join(
        flashes(client.post("/apply/start", follow_redirects=True))
    )
    assert count(Case) == 0


# --- the six items --------------------------------------------------------------------------


def test_items_in_order_with_status_and_the_next_highlighted(login, teacher, started):
    client = login(teacher)
    page = text(client.get("/apply"))

    assert item_order(page) == [
        "公開授課實施證明",
        "教師專業學習社群參與證明",
        "觀察前會談紀錄表",
        "觀察紀錄表",
        "觀察後會談紀錄表",
        "認證檢核表",
    ]
    for number, item in enumerate(ApplicationItem, start=1):
        classes, body = item_block(page, item)
        assert f'<span class="item-number">{number}</span>' in body
        assert ">新增</a>" in body
        assert ("next" in classes) == (item is ApplicationItem.public_teaching)

    attach_document(started, ApplicationItem.public_teaching, pdf_upload("公開授課.pdf"), teacher)
    db.session.commit()
    page = text(client.get("/apply"))

    classes, body = item_block(page, ApplicationItem.public_teaching)
    assert ">編輯</a>" in body and "公開授課.pdf" in body and "next" not in classes
    classes, body = item_block(page, ApplicationItem.community)
    assert ">新增</a>" in body and "next" in classes
    assert page.count('class="item next') == 1


def test_filled_case_shows_edit_everywhere_and_the_submit_button(login, teacher, filled_case):
    page = text(login(teacher).get("/apply"))

    for item in ApplicationItem:
        classes, body = item_block(page, item)
        assert ">編輯</a>" in body and "next" not in classes
    assert 'href="/apply/submit"' in page
    assert "填寫中" in page


def test_incomplete_case_lists_what_is_missing(login, teacher, started):
    attach_document(started, ApplicationItem.community, pdf_upload(), teacher)
    db.session.commit()

    page = text(login(teacher).get("/apply"))
    missing = re.search(r'<ul class="missing-list">(.*?)</ul>', page, re.S).group(1)

    assert re.findall(r"<li>(.*?)</li>", missing) == [
        "公開授課實施證明",
        "觀察前會談紀錄表",
        "觀察紀錄表",
        "觀察後會談紀錄表",
        "認證檢核表",
    ]
    assert 'href="/apply/submit"' not in page


# --- records through the real form ----------------------------------------------------------


def fill(reader, fields, overrides=None):
    """Posted data for a record form: the demo values under the names the page rendered."""
    data = MultiDict(reader.values)
    wanted = demo_formdata(fields)
    for name in wanted:
        assert name in reader.names or name.endswith("-rows"), f"page has no input {name}"
        data.setlist(name, wanted.getlist(name))
    for name, value in (overrides or {}).items():
        data.setlist(name, value if isinstance(value, list) else [value])
    return data


def record_page(client, item, template=None):
    query = f"?template={template.id}" if template else ""
    response = client.get(f"/apply/record/{item.value}{query}")
    assert response.status_code == 200
    return response


def test_pre_conference_record_saves_and_edits(login, teacher, started):
    client = login(teacher)
    template = template_by_code("pre_a")
    response = record_page(client, ApplicationItem.pre_conference, template)
    page = text(response)
    reader = read_form(response)

    assert '<select id="template" name="template" data-autosubmit>' in page
    assert template.description in page
    assert page.count('<span class="req">*</span>') >= 20
    assert reader.values["template_version_id"] == str(template.current_version.id)

    data = fill(reader, template.current_version.fields, {"learning_goal": "能說出分數的意義"})
    saved = client.post("/apply/record/pre_conference", data=data)

    assert saved.status_code == 302 and saved.headers["Location"].endswith("/apply")
    assert "已儲存「觀察前會談紀錄表」。" in flashes(client.get("/apply"))
    entry = entry_of(started, ApplicationItem.pre_conference)
    assert entry.data["learning_goal"] == "能說出分數的意義"
    assert entry.template_version_id == template.current_version.id

    again = read_form(record_page(client, ApplicationItem.pre_conference))
    assert again.values["learning_goal"] == "能說出分數的意義"
    assert again.values["lesson_number"] == "1"

    changed = MultiDict(again.values)
    changed["learning_goal"] = "比較分數的大小"
    client.post("/apply/record/pre_conference", data=changed)

    assert entry_of(started, ApplicationItem.pre_conference).data["learning_goal"] == (
        "比較分數的大小"
    )
    assert count(FormEntry, FormEntry.case_id == started.id) == 1


def test_lesson_number_beyond_the_unit_and_fractions_are_refused(login, teacher, started):
    client = login(teacher)
    template = template_by_code("pre_a")
    reader = read_form(record_page(client, ApplicationItem.pre_conference, template))

    data = fill(
        reader, template.current_version.fields, {"lesson_number": "5", "lesson_total": "3"}
    )
    beyond = client.post("/apply/record/pre_conference", data=data)
    data = fill(reader, template.current_version.fields, {"lesson_number": "1.5"})
    fraction = client.post("/apply/record/pre_conference", data=data)

    assert "不可大於「教學節次：本單元共幾節」（3）。" in text(beyond)
    assert read_form(beyond).values["lesson_number"] == "5"
    assert "請填寫整數，例如 3。" in text(fraction)
    assert entry_of(started, ApplicationItem.pre_conference) is None


def test_feedback_meeting_may_not_precede_the_pre_conference(login, teacher, started):
    client = login(teacher)
    pre = template_by_code("pre_a")
    reader = read_form(record_page(client, ApplicationItem.pre_conference, pre))
    data = fill(reader, pre.current_version.fields, {"pre_meeting_date": "2025-03-10"})
    data.setlist("feedback_date", ["2025-03-12"])
    data.setlist("observation_date", ["2025-03-11"])
    assert client.post("/apply/record/pre_conference", data=data).status_code == 302

    post = template_by_code("post_a")
    reader = read_form(record_page(client, ApplicationItem.post_conference, post))
    early = fill(reader, post.current_version.fields, {"feedback_date": "2025-03-09"})
    refused = client.post("/apply/record/post_conference", data=early)

    assert refused.status_code == 200
    assert "不可早於「觀察前會談紀錄表」的「觀察前會談日期」（2025-03-10）。" in text(refused)
    assert read_form(refused).values["feedback_date"] == "2025-03-09"
    assert entry_of(started, ApplicationItem.post_conference) is None

    later = fill(reader, post.current_version.fields, {"feedback_date": "2025-03-12"})
    assert client.post("/apply/record/post_conference", data=later).status_code == 302


def test_observation_rubric_with_fixed_rows(login, teacher, started):
    client = login(teacher)
    template = template_by_code("obs_rubric_105")
    response = record_page(client, ApplicationItem.observation, template)
    reader = read_form(response)

    assert "indicators-A-2-facts" in reader.names and "indicators-B-2-rating" in reader.names
    assert reader.options["indicators-A-3-rating"][1:] == ["優良", "通過", "待成長", "不適用"]

    data = fill(
        reader,
        template.current_version.fields,
        {"indicators-A-3-facts": "以提問引導學生比較", "indicators-A-3-rating": "優良"},
    )
    assert client.post("/apply/record/observation", data=data).status_code == 302

    stored = entry_of(started, ApplicationItem.observation).data["indicators"]
    assert stored["A-3"] == {"facts": "以提問引導學生比較", "rating": "優良"}
    assert set(stored) == {"A-2", "A-3", "A-4", "B-1", "B-2"}

    edit = read_form(record_page(client, ApplicationItem.observation))
    assert edit.values["indicators-A-3-facts"] == "以提問引導學生比較"
    assert edit.values["indicators-A-3-rating"] == "優良"
    assert edit.values["template_version_id"] == str(template.current_version.id)


def test_observation_with_rows_the_teacher_adds(login, teacher, started):
    client = login(teacher)
    template = template_by_code("obs_anecdotal")
    response = record_page(client, ApplicationItem.observation, template)
    reader = read_form(response)
    page = text(response)

    assert reader.values["events-rows"] == "1"
    assert 'class="add-row" data-table="events"' in page
    assert '<script src="/static/records.js" defer></script>' in page

    # what records.js does on 新增一列: two more rows, renumbered, and the count raised
    data = fill(reader, template.current_version.fields)
    rows = [("09:00", "提問", "舉手回答"), ("09:10", "分組", "討論"), ("09:20", "總結", "發表")]
    for index, (time, teacher_action, student_action) in enumerate(rows):
        data.setlist(f"events-{index}-time", [time])
        data.setlist(f"events-{index}-teacher_action", [teacher_action])
        data.setlist(f"events-{index}-student_action", [student_action])
    data.setlist("events-rows", ["3"])

    assert client.post("/apply/record/observation", data=data).status_code == 302
    stored = entry_of(started, ApplicationItem.observation).data["events"]
    assert [row["teacher_action"] for row in stored] == ["提問", "分組", "總結"]

    edit = read_form(record_page(client, ApplicationItem.observation))
    assert edit.values["events-rows"] == "4"  # three stored and one spare
    assert edit.values["events-2-student_action"] == "發表"
    assert edit.values["events-3-time"] == ""


def test_post_conference_growth_plan(login, teacher, started):
    client = login(teacher)
    template = template_by_code("post_a")
    reader = read_form(record_page(client, ApplicationItem.post_conference, template))

    assert "參加學習社群" in reader.options["growth_plan-0-methods"]
    data = fill(
        reader,
        template.current_version.fields,
        {
            "growth_plan-0-indicator": "A-4 運用多元評量",
            "growth_plan-0-methods": ["研讀書籍", "參加研習"],
        },
    )

    assert client.post("/apply/record/post_conference", data=data).status_code == 302
    plan = entry_of(started, ApplicationItem.post_conference).data["growth_plan"]
    assert plan[0]["indicator"] == "A-4 運用多元評量"
    assert plan[0]["methods"] == ["研讀書籍", "參加研習"]


def test_required_field_errors_keep_the_typed_values_and_store_nothing(login, teacher, started):
    client = login(teacher)
    template = template_by_code("pre_a")
    reader = read_form(record_page(client, ApplicationItem.pre_conference, template))
    data = fill(
        reader,
        template.current_version.fields,
        {"teacher_name": "", "learning_goal": "已經打好的學習目標", "lesson_number": "abc"},
    )

    response = client.post("/apply/record/pre_conference", data=data)
    page = text(response)

    assert response.status_code == 200
    assert 'id="f-teacher_name-error"' in page
    assert 'id="f-lesson_number-error"' in page
    assert any("需要修正" in message for message in flashes(response))
    kept = read_form(response)
    assert kept.values["learning_goal"] == "已經打好的學習目標"
    assert kept.values["lesson_number"] == "abc"
    assert kept.values["template_version_id"] == str(template.current_version.id)
    assert entry_of(started, ApplicationItem.pre_conference) is None
    assert count(AuditEvent, AuditEvent.action == "save_record") == 0


def test_editing_keeps_the_pinned_version_and_switching_starts_empty(login, teacher, started):
    client = login(teacher)
    template = template_by_code("pre_a")
    first = template.current_version
    data = fill(
        read_form(record_page(client, ApplicationItem.pre_conference, template)), first.fields
    )
    client.post("/apply/record/pre_conference", data=data)

    newer_fields = [*first.fields, {"key": "new_field", "label": "新增的欄位", "type": "text"}]
    db.session.add(FormTemplateVersion(template=template, version=2, fields=newer_fields))
    db.session.commit()

    pinned = record_page(client, ApplicationItem.pre_conference)
    reader = read_form(pinned)
    assert reader.values["template_version_id"] == str(first.id)
    assert reader.values["teacher_name"] == "示範內容"
    assert "new_field" not in reader.names

    other = template_by_code("pre_b")
    switched = record_page(client, ApplicationItem.pre_conference, other)
    reader = read_form(switched)
    assert reader.values["template_version_id"] == str(other.current_version.id)
    assert reader.values["teacher_name"] == ""
    assert "儲存後將取代原本填寫的「觀察前會談紀錄表（甲式）」" in text(switched)

    back = read_form(record_page(client, ApplicationItem.pre_conference, template))
    assert back.values["template_version_id"] == str(first.id)
    assert back.values["teacher_name"] == "示範內容"


def test_a_template_of_another_item_is_refused(login, teacher, started):
    client = login(teacher)
    observation = template_by_code("obs_rubric_105").current_version
    data = demo_formdata(observation.fields)
    data["template_version_id"] = str(observation.id)

    response = client.post("/apply/record/pre_conference", data=data, follow_redirects=True)

    assert "所選的紀錄表範本不適用於此項目。" in flashes(response)
    assert entry_of(started, ApplicationItem.pre_conference) is None


def test_unknown_items_are_not_found(login, teacher, started):
    client = login(teacher)

    assert client.get("/apply/record/public_teaching").status_code == 404
    assert client.get("/apply/item/observation").status_code == 404
    assert client.get("/apply/blank/observation").status_code == 404
    assert client.get("/apply/item/nothing").status_code == 404


# --- submission -----------------------------------------------------------------------------


def test_submit_confirmation_then_locked(login, teacher, filled_case):
    client = login(teacher)
    confirm = text(client.get("/apply/submit"))

    assert item_order(confirm) == [str(item.label) for item in ApplicationItem]
    assert "無法修改" in confirm and ">確定</button>" in confirm
    assert re.search(r'<a class="button secondary" href="/apply">取消</a>', confirm)

    response = client.post("/apply/submit")
    assert response.headers["Location"].endswith("/apply/flow")
    flow = client.get("/apply/flow")
    assert "已送出審查文件，資料在審查期間無法修改。" in flashes(flow)
    db.session.expire_all()
    assert db.session.get(Case, filled_case.id).state is CaseState.formal_review

    page = text(client.get("/apply"))
    assert "形式審查" in page and "僅供檢視" in page
    assert "item-edit" not in page and ">新增</a>" not in page and ">編輯</a>" not in page
    assert 'href="/apply/submit"' not in page
    record = text(client.get("/apply/record/observation"))
    assert "僅供檢視" in record and "<form" not in record.split("<main")[1]
    assert 'type="file"' not in text(client.get("/apply/item/community"))


def test_crafted_posts_after_submission_change_nothing(login, teacher, submitted_case):
    client = login(teacher)
    documents = count(Document)
    events = count(AuditEvent)
    entry = entry_of(submitted_case, ApplicationItem.pre_conference)
    before = dict(entry.data)

    upload = client.post(
        "/apply/item/community",
        data={"file": (io.BytesIO(pdf_upload().read()), "新的.pdf")},
        follow_redirects=True,
    )
    assert "此申請目前為「形式審查」，無法修改。" in flashes(upload)

    data = demo_formdata(entry.template_version.fields)
    data["template_version_id"] = str(entry.template_version_id)
    data["teacher_name"] = "偷改"
    saved = client.post("/apply/record/pre_conference", data=data, follow_redirects=True)
    assert "此申請目前為「形式審查」，無法修改。" in flashes(saved)

    again = client.post("/apply/submit", follow_redirects=True)
    assert "此申請已送出，目前狀態為「形式審查」，無須再次送出。" in flashes(again)

    assert count(Document) == documents
    assert count(AuditEvent) == events
    assert entry_of(submitted_case, ApplicationItem.pre_conference).data == before
    assert db.session.get(Case, submitted_case.id).state is CaseState.formal_review


def test_submitting_an_incomplete_case_is_refused(login, teacher, started):
    attach_document(started, ApplicationItem.public_teaching, pdf_upload(), teacher)
    db.session.commit()
    client = login(teacher)

    assert ">確定</button>" not in text(client.get("/apply/submit"))
    response = client.post("/apply/submit", follow_redirects=True)

    assert any(message.startswith("尚有項目未完成：") for message in flashes(response))
    assert "認證檢核表" in flashes(response)[0]
    assert db.session.get(Case, started.id).state is CaseState.draft


def test_submitting_after_the_window_closed_is_refused(login, teacher, cycle, filled_case):
    cycle.opens_at = now_utc() - timedelta(days=30)
    cycle.closes_at = now_utc() - timedelta(minutes=1)
    db.session.commit()
    client = login(teacher)

    assert "申請期間已結束" in text(client.get("/apply"))
    assert ">確定</button>" not in text(client.get("/apply/submit"))
    response = client.post("/apply/submit", follow_redirects=True)

    assert any(message.startswith("申請期間已結束") for message in flashes(response))
    db.session.expire_all()
    assert db.session.get(Case, filled_case.id).state is CaseState.draft
    assert db.session.get(Case, filled_case.id).submitted_at is None


def test_double_submit_changes_the_case_once(login, teacher, filled_case):
    client = login(teacher)
    client.post("/apply/submit")
    second = client.post("/apply/submit", follow_redirects=True)

    assert "此申請已送出，目前狀態為「形式審查」，無須再次送出。" in flashes(second)
    assert (
        count(AuditEvent, AuditEvent.case_id == filled_case.id, AuditEvent.action == "submit") == 1
    )


def test_revision_is_sent_as_the_second_round(login, teacher, cycle, staff):
    case = case_in(CaseState.revision_requested, cycle, staff, applicant=teacher)
    client = login(teacher)

    page = text(client.get("/apply"))
    assert "送出複審資料" in page and "修正後複審" in page
    assert "請修正觀察紀錄的事實摘要。" in page

    client.post("/apply/submit")

    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert (case.state, case.round) == (CaseState.awaiting_assignment, 2)
    assert "複審分發委員" in text(client.get("/apply/flow"))


# --- flow chart -----------------------------------------------------------------------------


def current_step(page):
    match = re.search(r'class="step current" aria-current="step" data-step="([^"]+)"', page)
    return match.group(1) if match else None


def test_timeline_names_each_step_once(login, teacher, cycle, staff):
    from models import CaseState

    from .factories import case_in

    case_in(CaseState.revision_requested, cycle, staff, applicant=teacher)

    page = text(login(teacher).get("/apply/flow"))

    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', page, re.S).group(1)
    assert '送出審查文件</span> <span class="muted">（狀態：形式審查）</span>' in timeline
    assert '形式審查通過</span> <span class="muted">（狀態：初審分發委員）</span>' in timeline
    assert "修正後複審 → 修正後複審" not in timeline and "→" not in timeline


def test_timeline_of_a_return_names_it_once(login, teacher, cycle, staff):
    from models import CaseState

    from .factories import case_in

    case_in(CaseState.returned, cycle, staff, applicant=teacher)

    page = text(login(teacher).get("/apply/flow"))

    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', page, re.S).group(1)
    assert '<span class="timeline-label">形式審查退件</span></li>' in timeline
    assert timeline.count("形式審查退件") == 1


def test_flow_marks_the_current_step_and_lists_the_timeline(login, teacher, submitted_case):
    page = text(login(teacher).get("/apply/flow"))

    assert current_step(page) == "formal_review"
    for label in ("填寫中", "形式審查退件", "初審分發委員", "複審判定", "已公告", "申復審查中"):
        assert label in page
    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', page, re.S).group(1)
    assert "送出審查文件" in timeline and "形式審查" in timeline
    assert "開始申請" not in timeline  # only state changes are listed
    assert re.search(r"<time>\d{3}/\d{2}/\d{2} \d{2}:\d{2}</time>", timeline)


def test_returned_case_shows_comments_without_the_staff_name(login, teacher, cycle, staff):
    staff.name = "承辦人陳大文"
    db.session.commit()
    case_in(CaseState.returned, cycle, staff, applicant=teacher)
    client = login(teacher)

    flow = text(client.get("/apply/flow"))
    assert current_step(flow) == "returned"
    assert "公開授課實施證明未核章，請補蓋學校章後重新上傳。" in flow
    assert "查看審查意見" in flow
    assert "陳大文" not in flow and staff.login not in flow

    apply_page = text(client.get("/apply"))
    assert "公開授課實施證明未核章" in apply_page and "陳大文" not in apply_page
    assert ">編輯</a>" in apply_page  # returned: editable again


def test_flow_of_a_second_round_and_of_a_failed_case(login, teacher, cycle, staff, other_teacher):
    case_in(CaseState.under_review, cycle, staff, round_=2, applicant=teacher)
    case_in(CaseState.failed, cycle, staff, applicant=other_teacher)

    page = text(login(teacher).get("/apply/flow"))
    assert current_step(page) == "under_review-2"
    assert 'class="step done"' in page and 'data-step="revision_requested"' in page

    failed = text(login(other_teacher).get("/apply/flow"))
    assert current_step(failed) == "failed"
    assert "觀察紀錄與會談紀錄內容不一致。" in failed
    assert "提出申復" in failed


def test_undone_verdict_comment_is_not_shown(login, teacher, cycle, staff):
    case = case_in(CaseState.failed, cycle, staff, applicant=teacher)
    workflow.undo_verdict(case, staff, "誤植判定")
    db.session.commit()

    page = text(login(teacher).get("/apply/flow"))

    assert current_step(page) == "awaiting_verdict-1"
    assert "觀察紀錄與會談紀錄內容不一致。" not in page
    assert "誤植判定" not in page


# --- profile --------------------------------------------------------------------------------


def test_profile_shows_hours_by_year_certificates_and_numbers(login, teacher, cycle, staff):
    db.session.add_all(
        [
            TrainingRecord(
                user=teacher,
                course="觀察工具實作",
                hours=6.5,
                completed_on=date(2024, 10, 5),
                academic_year=113,
            ),
            TrainingRecord(
                user=teacher,
                course="回饋會談演練",
                hours=3,
                completed_on=date(2025, 1, 20),
                academic_year=113,
            ),
        ]
    )
    db.session.commit()
    client = login(teacher)

    page = text(client.get("/profile"))
    assert teacher.login in page and teacher.email in page and "教師" in page
    assert "測試國民中學" in page and "臺北市" in page
    assert "113/10/05" in page and "114/01/20" in page
    assert re.search(r"113 學年度合計</th><td class=\"num total\">9.5</td>", page)
    assert re.search(r"114 學年度合計</th><td class=\"num total\">18</td>", page)
    assert "初階" in page and f"初階-{teacher.id}" in page
    assert "尚無進階專業回饋人才認證證號" in page

    case = case_in(CaseState.certified, cycle, staff, applicant=teacher)
    page = text(client.get("/profile"))
    assert case.certificate_number and case.certificate_number in page
    assert "尚無進階專業回饋人才認證證號" not in page


def test_application_page_shows_the_certificate_number_once_issued(login, teacher, cycle, staff):
    case = case_in(CaseState.passed, cycle, staff, applicant=teacher)
    client = login(teacher)
    assert 'id="certificate-number"' not in text(client.get("/apply"))

    workflow.issue_certificates(cycle, staff)
    db.session.commit()
    db.session.refresh(case)

    page = text(client.get("/apply"))
    number = page.split('id="certificate-number"')[1].split("</dd>")[0]
    assert case.certificate_number and case.certificate_number in number


def test_profile_shows_the_issue_date_then_the_announcement(login, teacher, cycle, staff):
    case = case_in(CaseState.certified, cycle, staff, applicant=teacher)
    client = login(teacher)

    numbers = text(client.get("/profile")).split('id="certificate-numbers"')[1]
    assert case.certificate_number in numbers
    assert f"發證日期：{roc_date(case.certified_at)}" in numbers
    assert "已發證" in numbers and "已公告" not in numbers

    workflow.announce_certificates(cycle, staff)
    db.session.commit()
    db.session.refresh(case)

    numbers = text(client.get("/profile")).split('id="certificate-numbers"')[1]
    assert case.certificate_number in numbers and "已公告" in numbers
    assert f"公告日期：{roc_date(case.announced_at)}" in numbers


def test_profile_link_is_the_name_top_right(login, teacher):
    page = text(login(teacher).get("/apply"))

    assert re.search(rf'<a class="user-name" href="/profile"[^>]*>{teacher.name}</a>', page)


# --- blank documents and downloads ----------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "title"),
    [
        ("public_teaching", "教師公開授課實施證明"),
        ("community", "教師專業學習社群參與證明"),
        ("checklist", "進階專業回饋人才認證檢核表"),
    ],
)
def test_blank_documents_are_printable_workbooks(login, teacher, started, item, title):
    response = login(teacher).get(f"/apply/blank/{item}")

    assert response.status_code == 200
    assert response.mimetype == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response.headers["Content-Disposition"].startswith("attachment")
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert sheet["A1"].value == title
    assert int(sheet.page_setup.paperSize) == 9  # A4
    assert sheet.page_setup.orientation == "portrait"
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    cells = " ".join(str(cell.value) for row in sheet.iter_rows() for cell in row if cell.value)
    assert "校長核章" in cells
    if item == "checklist":
        for label in ApplicationItem:
            assert str(label.label) in cells


def test_upload_page_links_the_blank_document(login, teacher, started):
    page = text(login(teacher).get("/apply/item/public_teaching"))

    assert 'href="/apply/blank/public_teaching"' in page and "下載空白文件" in page
    assert 'accept=".pdf,application/pdf"' in page
    assert 'enctype="multipart/form-data"' in page


def test_own_document_downloads_under_its_original_name(login, teacher, filled_case):
    document = db.session.scalar(
        sa.select(Document).where(Document.case_id == filled_case.id).limit(1)
    )
    response = login(teacher).get(f"/apply/document/{document.id}")

    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert "attachment" in response.headers["Content-Disposition"]
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]


def test_document_missing_on_disk_is_a_chinese_404(app, login, teacher, filled_case):
    import os

    from admin_app import storage

    document = db.session.scalar(
        sa.select(Document).where(Document.case_id == filled_case.id).limit(1)
    )
    os.remove(storage.path_of(document.stored_name))

    response = login(teacher).get(f"/apply/document/{document.id}")

    assert response.status_code == 404
    assert "找不到頁面" in text(response) and "Traceback" not in text(response)


# --- access ---------------------------------------------------------------------------------

PAGES = [
    "/",
    "/profile",
    "/apply",
    "/apply/item/public_teaching",
    "/apply/record/observation",
    "/apply/submit",
    "/apply/flow",
    "/apply/appeal",
    "/apply/comments",
    "/apply/blank/checklist",
    "/messages",
]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_login(client, cycle, url):
    response = client.get(url)

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize(
    "url", ["/apply/start", "/apply/item/community", "/apply/record/observation", "/apply/submit"]
)
def test_anonymous_posts_are_sent_to_login(client, cycle, url):
    response = client.post(url)

    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_another_teacher_cannot_reach_the_case(login, teacher, other_teacher, filled_case):
    documents = db.session.scalars(
        sa.select(Document).where(Document.case_id == filled_case.id)
    ).all()
    client = login(other_teacher)

    for document in documents:
        assert client.get(f"/apply/document/{document.id}").status_code == 404
    assert client.get(f"/apply/flow/{filled_case.id}").status_code == 404
    assert client.get("/apply/document/999999").status_code == 404

    # every other page works on the visitor's own (absent) case, never on the teacher's
    for url in (
        "/apply/item/community",
        "/apply/record/observation",
        "/apply/submit",
        "/apply/comments",
        "/apply/appeal",
    ):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].endswith("/apply")
    assert filled_case.applicant.name not in text(client.get("/apply"))

    client.post("/apply/submit")
    client.post("/apply/item/community", data={"file": (io.BytesIO(b"%PDF-1.4"), "x.pdf")})
    db.session.expire_all()
    assert db.session.get(Case, filled_case.id).state is CaseState.draft
    assert count(Document, Document.case_id == filled_case.id) == len(documents)
    assert count(Case, Case.applicant_id == other_teacher.id) == 0


def test_owner_can_reach_an_earlier_case_by_id(login, teacher, filled_case):
    response = login(teacher).get(f"/apply/flow/{filled_case.id}")

    assert response.status_code == 200 and current_step(text(response)) == "draft"


def test_pages_carry_no_inline_script(login, teacher, filled_case):
    client = login(teacher)
    urls = ("/", "/profile", "/apply", "/apply/record/observation", "/apply/flow")
    for url in (*urls, "/apply/comments", "/apply/appeal", "/messages"):
        response = client.get(url)
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", text(response), re.S)
        assert all('src="/static/' in attributes and not body for attributes, body in scripts)
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_records_script_is_served(client):
    response = client.get("/static/records.js")

    assert response.status_code == 200
    assert b"add-row" in response.data and b"-rows" in response.data


def test_every_post_form_carries_a_csrf_token(login, teacher, started):
    client = login(teacher)
    for url in ("/apply", "/apply/item/community", "/apply/record/pre_conference"):
        page = text(client.get(url))
        for form in re.findall(r'<form method="post".*?</form>', page, re.S):
            assert 'name="csrf_token"' in form


def test_csrf_is_enforced_on_the_portal(app, teacher, started):
    with app.test_client() as fresh:
        fresh.post("/login", data={"login": teacher.login, "password": "correct-horse-42"})
        app.config["WTF_CSRF_ENABLED"] = True
        response = fresh.post("/apply/submit")
        app.config["WTF_CSRF_ENABLED"] = False

    assert response.status_code == 400
    assert "表單已過期" in text(response)
    assert db.session.get(Case, started.id).state is CaseState.draft


def test_the_site_icon_is_served_and_linked(client, login, teacher):
    icon = client.get("/favicon.ico")

    assert icon.status_code == 200 and icon.mimetype == "image/vnd.microsoft.icon"
    assert icon.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert '<link rel="icon" href="/static/favicon.ico">' in text(client.get("/login"))
    assert '<link rel="icon" href="/static/favicon.ico">' in text(login(teacher).get("/profile"))
