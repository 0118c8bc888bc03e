"""The back office: staff-only access, Chinese pages, case file, templates, read-only audit."""

import json
import os
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from admin_app import create_app, demo
from admin_app.extensions import db
from admin_app.i18n import now_utc
from admin_app.storage import path_of
from models import (
    ApplicationItem,
    AuditEvent,
    Case,
    CaseState,
    County,
    Cycle,
    Document,
    FormEntry,
    FormTemplate,
    FormTemplateVersion,
    RecordKind,
    Role,
    School,
    TrainingRecord,
    User,
)
from models.application import attach_document, open_case, save_record, submit_application

from .conftest import PASSWORD
from .factories import case_in, counted_statements, new_applicant, pdf_upload

# filter positions in the case list: flt<n>_<position>=value
CYCLE, COUNTY, STATE, ROUND = 0, 1, 2, 3


def listed_cases(response):
    """The case ids a list page shows."""
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return {int(found) for found in re.findall(r"/admin/case/details/\?id=(\d+)", page(response))}


def page(response):
    return response.get_data(as_text=True)


def county(name):
    return db.session.scalar(sa.select(County).where(County.name == name))


def template_entry(case, item=ApplicationItem.pre_conference):
    return db.session.scalar(
        sa.select(FormEntry).where(FormEntry.case_id == case.id, FormEntry.item == item)
    )


def versions_of(template_id):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(FormTemplateVersion)
        .where(FormTemplateVersion.template_id == template_id)
        .order_by(FormTemplateVersion.version)
    ).all()


# --- access ---------------------------------------------------------------------------------


ADMIN_PAGES = [
    "/admin/",
    "/admin/case/",
    "/admin/case/details/?id={case}",
    "/admin/document/",
    "/admin/document/download/{document}/",
    "/admin/user/",
    "/admin/user/new/",
    "/admin/user/edit/?id={user}",
    "/admin/school/",
    "/admin/school/new/",
    "/admin/county/",
    "/admin/training/",
    "/admin/training/new/",
    "/admin/cycle/",
    "/admin/cycle/new/",
    "/admin/cycle/edit/?id={cycle}",
    "/admin/template/",
    "/admin/template/new/",
    "/admin/template/edit/?id={template}",
    "/admin/template/details/?id={template}",
    "/admin/audit/",
]
ADMIN_POSTS = [
    "/admin/user/new/",
    "/admin/school/new/",
    "/admin/template/edit/?id={template}",
    "/admin/school/delete/",
    "/admin/training/action/",
]


@pytest.fixture
def urls(submitted_case, teacher, cycle):
    """Every back-office URL to check, filled with ids of real rows."""
    ids = {
        "case": submitted_case.id,
        "document": submitted_case.documents[0].id,
        "user": teacher.id,
        "cycle": cycle.id,
        "template": template_entry(submitted_case).template_version.template_id,
    }
    return [url.format(**ids) for url in ADMIN_PAGES], [url.format(**ids) for url in ADMIN_POSTS]


def test_anonymous_is_sent_to_login(client, urls):
    pages, posts = urls
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login?next=/admin/"), url
    for url in posts:
        response = client.post(url, data={"name": "x"})
        assert response.status_code == 302, url
        assert "/login" in response.headers["Location"], url


@pytest.mark.parametrize("role", ["teacher", "reviewer", "county_officer"])
def test_other_roles_are_refused(request, login, urls, role):
    client = login(request.getfixturevalue(role))
    pages, posts = urls
    for url in pages:
        assert client.get(url).status_code == 403, url
    for url in posts:
        assert client.post(url, data={"name": "x", "id": "1"}).status_code == 403, url


@pytest.mark.parametrize("role", ["staff", "admin_user"])
def test_staff_and_admins_see_every_page(request, login, urls, role):
    client = login(request.getfixturevalue(role))
    pages, _ = urls
    for url in pages:
        assert client.get(url).status_code == 200, url


def test_flask_admin_reads_in_traditional_chinese(login, staff, submitted_case):
    text = page(login(staff).get("/admin/school/"))

    assert "資料列表" in text and "新增過濾器" in text and "建立" in text
    assert "过滤器" not in text and "创建" not in text and "列表" in text


def test_required_field_error_in_admin_form_is_traditional(login, staff):
    response = login(staff).post("/admin/school/new/", data={"code": "X1", "name": ""})

    assert response.status_code == 200
    assert "此欄位為必填。" in page(response)
    assert "该字段是必填字段" not in page(response) and "此欄位是必需的" not in page(response)
    assert db.session.scalar(sa.select(School).where(School.code == "X1")) is None


# --- case list ------------------------------------------------------------------------------


@pytest.fixture
def other_cycle():
    """A second, older intake cycle whose window is also open."""
    cycle = Cycle(
        academic_year=114,
        name="114 學年度進階專業回饋人才認證",
        opens_at=now_utc() - timedelta(days=5),
        closes_at=now_utc() + timedelta(days=5),
        required_hours=18,
        hours_from_year=112,
        hours_to_year=113,
    )
    db.session.add(cycle)
    db.session.commit()
    return cycle


@pytest.fixture
def listed(cycle, other_cycle, staff, teacher, other_teacher, submitted_case):
    """Cases that differ in cycle, county, state and round."""
    draft = open_case(other_teacher, cycle)  # 新北市, 另一所國小, draft
    older = open_case(new_applicant(other_cycle), other_cycle)  # 高雄市, other cycle
    db.session.commit()
    second_round = case_in(CaseState.awaiting_assignment, cycle, staff, round_=2)
    return {
        "submitted": submitted_case.id,  # 臺北市, formal review, round 1
        "draft": draft.id,
        "older": older.id,
        "second_round": second_round.id,
    }


def test_case_list_shows_every_case(login, staff, listed):
    assert listed_cases(login(staff).get("/admin/case/")) == set(listed.values())


def test_case_list_search(login, staff, listed, teacher, other_teacher):
    client = login(staff)

    assert listed_cases(client.get("/admin/case/?search=teacher1")) == {listed["submitted"]}
    assert listed_cases(client.get(f"/admin/case/?search={other_teacher.name}")) == {
        listed["draft"]
    }
    assert listed_cases(client.get("/admin/case/?search=另一所國小")) == {listed["draft"]}


def test_case_list_filters(login, staff, listed, other_cycle):
    client = login(staff)

    def shown(position, value):
        return listed_cases(client.get(f"/admin/case/?flt0_{position}={value}"))

    assert shown(CYCLE, other_cycle.id) == {listed["older"]}
    assert shown(COUNTY, county("臺北市").id) == {listed["submitted"]}
    assert shown(COUNTY, county("新北市").id) == {listed["draft"]}
    assert shown(STATE, "formal_review") == {listed["submitted"]}
    assert shown(STATE, "draft") == {listed["draft"], listed["older"]}
    assert shown(ROUND, 2) == {listed["second_round"]}
    combined = client.get(f"/admin/case/?flt0_{STATE}=draft&flt1_{CYCLE}={other_cycle.id}")
    assert listed_cases(combined) == {listed["older"]}


def test_case_list_columns(login, staff, listed, teacher):
    text = page(login(staff).get("/admin/case/"))

    for heading in ("案號", "學年度", "縣市", "學校", "申請人", "職別", "狀態", "送出日期"):
        assert heading in text
    assert f"{teacher.name}（{teacher.login}）" in text
    assert "形式審查" in text and "填寫中" in text and "複審分發委員" in text
    # no create, edit or delete of cases from the list
    assert "/admin/case/new/" not in text and "/admin/case/edit/" not in text
    assert "/admin/case/delete/" not in text


def test_case_list_cannot_create_edit_or_delete(login, staff, submitted_case):
    client = login(staff)

    client.post("/admin/case/new/", data={"state": "passed"})
    client.post(f"/admin/case/edit/?id={submitted_case.id}", data={"state": "passed"})
    client.post("/admin/case/delete/", data={"id": submitted_case.id})
    client.post("/admin/case/action/", data={"action": "delete", "rowid": submitted_case.id})

    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Case)) == 1
    assert db.session.get(Case, submitted_case.id).state is CaseState.formal_review


def _open_cases(cycle, count):
    """Cases of applicants who have since moved school, so the list must load each case's own."""
    for number in range(count):
        applicant = new_applicant(cycle)
        case = open_case(applicant, cycle)
        db.session.flush()
        case.submitted_at = now_utc()
        applicant.school = School(name=f"新任教學校{number}-{case.id}", county=county("臺東縣"))
    db.session.commit()


def test_case_list_statement_count_does_not_grow_with_rows(login, staff, cycle):
    client = login(staff)
    _open_cases(cycle, 3)
    # each request starts from a fresh session in production; start both from the same state
    db.session.expire_all()
    with counted_statements() as few:
        assert len(listed_cases(client.get("/admin/case/"))) == 3

    _open_cases(cycle, 27)
    db.session.expire_all()
    with counted_statements() as many:
        assert len(listed_cases(client.get("/admin/case/"))) == 30

    assert len(few) == len(many), many


# --- case page ------------------------------------------------------------------------------


TYPED = "王老師的<script>alert(1)</script>分數教學"
FIRST_PDF = demo.demo_pdf("第一版")
SECOND_PDF = demo.demo_pdf("第二版")


@pytest.fixture
def case_with_history(teacher, cycle):
    """A submitted case whose teacher replaced one upload and typed into a record."""
    case = open_case(teacher, cycle)
    demo.fill_application(case, teacher)
    attach_document(
        case,
        ApplicationItem.public_teaching,
        pdf_upload("舊的公開授課證明.pdf", FIRST_PDF),
        teacher,
    )
    attach_document(
        case, ApplicationItem.public_teaching, pdf_upload("公開授課證明.pdf", SECOND_PDF), teacher
    )

    entry = template_entry(case)
    version = entry.template_version
    formdata = demo.demo_formdata(version.fields)
    text_key = next(field["key"] for field in version.fields if field["type"] == "text")
    formdata.setlist(text_key, [TYPED])
    save_record(case, ApplicationItem.pre_conference, version, formdata, teacher)
    submit_application(case, teacher)
    db.session.commit()
    return case


def test_case_page_shows_applicant_items_and_trail(login, staff, teacher, case_with_history):
    case = case_with_history
    text = page(login(staff).get(f"/admin/case/details/?id={case.id}"))

    for value in (teacher.name, teacher.login, teacher.email, "教師", "測試國民中學", "臺北市"):
        assert value in text
    assert "形式審查" in text
    for item in ApplicationItem:
        assert str(item.label) in text
    assert "舊的公開授課證明.pdf" in text and "公開授課證明.pdf" in text
    assert text.count("已被取代") == 2  # the demo upload and the first replacement
    version = template_entry(case).template_version
    assert f"{version.template.name}（第 {version.version} 版）" in text
    assert "王老師的&lt;script&gt;alert(1)&lt;/script&gt;分數教學" in text
    assert "<script>alert(1)" not in text
    for trail in ("建立申請案", "上傳文件", "儲存紀錄表", "送出審查文件", "填寫中 → 形式審查"):
        assert trail in text


def test_long_file_names_wrap_on_the_case_page(login, staff, case_with_history):
    document = db.session.scalar(
        sa.select(Document).where(Document.original_name == "舊的公開授課證明.pdf")
    )
    document.original_name = "長" * 250 + ".pdf"
    db.session.commit()
    client = login(staff)

    text = page(client.get(f"/admin/case/details/?id={case_with_history.id}"))
    css = page(client.get("/admin/assets/admin.css"))

    assert f'<td class="file-name">{"長" * 250}.pdf</td>' in text
    assert re.search(r"\.file-name,[^{]*\.case-facts td[^{]*\{ overflow-wrap: anywhere; \}", css)
    assert '<link rel="icon" href="/static/favicon.ico">' in text


def test_document_download_returns_the_pdf(login, staff, case_with_history):
    document = db.session.scalar(
        sa.select(Document).where(Document.original_name == "舊的公開授課證明.pdf")
    )
    response = login(staff).get(f"/admin/document/download/{document.id}/")

    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data == FIRST_PDF
    assert "attachment" in response.headers["Content-Disposition"]
    assert "%E8%88%8A" in response.headers["Content-Disposition"]  # 舊, UTF-8 encoded


def test_document_download_name_ends_in_pdf(login, staff, case_with_history):
    document = db.session.scalar(
        sa.select(Document).where(Document.original_name == "舊的公開授課證明.pdf")
    )
    document.original_name = "掃描檔"
    db.session.commit()

    response = login(staff).get(f"/admin/document/download/{document.id}/")

    assert "%E6%8E%83%E6%8F%8F%E6%AA%94.pdf" in response.headers["Content-Disposition"]


def test_document_download_is_staff_only(login, teacher, case_with_history):
    document = case_with_history.documents[0]

    assert login(teacher).get(f"/admin/document/download/{document.id}/").status_code == 403


def test_missing_file_is_a_chinese_404(login, staff, case_with_history):
    document = case_with_history.documents[0]
    os.remove(path_of(document.stored_name))

    response = login(staff).get(f"/admin/document/download/{document.id}/")

    assert response.status_code == 404
    assert "檔案不在伺服器上" in page(response) and "Traceback" not in page(response)


def test_case_page_statement_count_does_not_grow_with_documents(login, staff, teacher, cycle):
    client = login(staff)
    case = open_case(teacher, cycle)
    demo.fill_application(case, teacher)
    db.session.commit()
    url = f"/admin/case/details/?id={case.id}"
    db.session.expire_all()
    with counted_statements() as few:
        assert client.get(url).status_code == 200

    for number in range(6):
        attach_document(case, ApplicationItem.community, pdf_upload(f"社群{number}.pdf"), teacher)
    db.session.commit()
    db.session.expire_all()
    with counted_statements() as many:
        assert page(client.get(url)).count("已被取代") == 6

    assert len(few) == len(many)


def test_unknown_case_is_a_chinese_404(login, staff):
    response = login(staff).get("/admin/case/details/?id=999999")

    assert response.status_code == 404 and "找不到這個案件" in page(response)


# --- record templates -----------------------------------------------------------------------


def _template_form(template, fields, **changes):
    data = {
        "name": template.name,
        "description": template.description,
        "sort_order": template.sort_order,
        "fields_json": fields if isinstance(fields, str) else json.dumps(fields),
    }
    if template.active:
        data["active"] = "y"
    data.update(changes)
    return data


def test_template_edit_adds_a_version_and_keeps_filled_records(login, staff, filled_case):
    entry = template_entry(filled_case)
    first = entry.template_version
    template = first.template
    data_before, fields_before = json.loads(json.dumps(entry.data)), list(first.fields)
    new_fields = [*first.fields, {"key": "extra_note", "label": "補充說明", "type": "textarea"}]

    response = login(staff).post(
        f"/admin/template/edit/?id={template.id}", data=_template_form(template, new_fields)
    )

    assert response.status_code == 302, page(response)[:2000]
    versions = versions_of(template.id)
    assert [version.version for version in versions] == [1, 2]
    assert versions[1].fields == new_fields and versions[1].created_by_id == staff.id
    assert versions[0].fields == fields_before
    entry = db.session.get(FormEntry, entry.id)
    assert entry.template_version_id == first.id and entry.data == data_before


def test_template_edit_without_field_changes_adds_no_version(login, staff, filled_case):
    template = template_entry(filled_case).template_version.template
    fields = template.current_version.fields

    response = login(staff).post(
        f"/admin/template/edit/?id={template.id}",
        data=_template_form(template, fields, name="新的名稱"),
    )

    assert response.status_code == 302
    assert len(versions_of(template.id)) == 1
    assert db.session.get(FormTemplate, template.id).name == "新的名稱"


def test_template_edit_page_shows_fields_as_json_and_history(login, staff, filled_case):
    template = template_entry(filled_case).template_version.template
    text = page(login(staff).get(f"/admin/template/edit/?id={template.id}"))

    label = template.current_version.fields[0]["label"]
    assert (
        f"&#34;label&#34;: &#34;{label}&#34;" in text
        or f"&quot;label&quot;: &quot;{label}&quot;" in text
    )
    assert "版本紀錄" in text and "第 1 版" in text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ('[{"key": "a", "label": "甲", "type": "text"', "不是有效的 JSON"),
        ("[]", "範本至少要有一個欄位"),
    ],
)
def test_invalid_template_is_refused_in_chinese(login, staff, filled_case, fields, message):
    template = template_entry(filled_case).template_version.template

    response = login(staff).post(
        f"/admin/template/edit/?id={template.id}",
        data=_template_form(template, fields, name="不該儲存"),
    )

    assert response.status_code == 200
    assert message in page(response)
    assert len(versions_of(template.id)) == 1
    assert db.session.get(FormTemplate, template.id).name != "不該儲存"


def test_template_schema_problems_are_listed(login, staff, filled_case):
    template = template_entry(filled_case).template_version.template
    fields = [
        {"key": "a", "label": "甲", "type": "text"},
        {"key": "a", "label": "乙", "type": "unknown"},
    ]

    response = login(staff).post(
        f"/admin/template/edit/?id={template.id}", data=_template_form(template, fields)
    )

    from models.form_schema import validate_schema

    for problem in validate_schema(fields):
        assert str(problem) in page(response)
    assert len(versions_of(template.id)) == 1


def test_creating_a_template_creates_version_one(login, staff):
    fields = [{"key": "note", "label": "紀錄", "type": "textarea", "required": True}]

    response = login(staff).post(
        "/admin/template/new/",
        data={
            "code": "post_conference_c",
            "kind": "post_conference",
            "name": "觀察後會談紀錄表（丙式）",
            "description": "",
            "sort_order": "9",
            "active": "y",
            "fields_json": json.dumps(fields, ensure_ascii=False),
        },
    )

    assert response.status_code == 302, page(response)[:2000]
    template = db.session.scalar(
        sa.select(FormTemplate).where(FormTemplate.code == "post_conference_c")
    )
    assert [(v.version, v.fields) for v in versions_of(template.id)] == [(1, fields)]


def test_a_refused_template_code_says_why_next_to_the_field(login, staff):
    fields = [{"key": "note", "label": "紀錄", "type": "textarea"}]
    data = {"code": "Bad Code", "kind": "post_conference", "name": "丙式", "sort_order": "9"}

    response = login(staff).post(
        "/admin/template/new/", data={**data, "fields_json": json.dumps(fields)}
    )

    assert response.status_code == 200
    assert "代碼只能使用小寫英文字母、數字與底線，並以字母開頭。" in page(response)
    assert db.session.scalar(sa.select(FormTemplate).where(FormTemplate.name == "丙式")) is None


def test_unused_template_is_deleted_with_its_versions(login, staff):
    template = FormTemplate(code="unused", kind=RecordKind.observation, name="試用範本")
    template.versions.append(FormTemplateVersion(version=1, fields=[]))
    db.session.add(template)
    db.session.commit()
    template_id = template.id

    response = login(staff).post("/admin/template/delete/", data={"id": template_id})

    assert response.status_code == 302
    assert db.session.get(FormTemplate, template_id) is None
    assert versions_of(template_id) == []


def test_template_with_records_cannot_be_deleted(login, staff, filled_case):
    template = template_entry(filled_case).template_version.template

    response = login(staff).post(
        "/admin/template/delete/", data={"id": template.id}, follow_redirects=True
    )

    assert "無法刪除" in page(response)
    assert db.session.get(FormTemplate, template.id) is not None
    assert len(versions_of(template.id)) == 1


# --- audit trail ----------------------------------------------------------------------------


def test_audit_events_cannot_be_created_edited_or_deleted(login, staff, submitted_case):
    client = login(staff)
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "submit"))
    before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))

    refused = [
        client.get(f"/admin/audit/edit/?id={event.id}"),
        client.get("/admin/audit/new/"),
        client.post("/admin/audit/new/", data={"action": "submit", "comment": "偽造"}),
        client.post(f"/admin/audit/edit/?id={event.id}", data={"comment": "竄改"}),
        client.post("/admin/audit/delete/", data={"id": event.id}),
        client.post("/admin/audit/action/", data={"action": "delete", "rowid": event.id}),
        client.post("/admin/audit/ajax/update/", data={"list_form_pk": event.id, "comment": "x"}),
    ]

    assert [response.status_code for response in refused] == [403] * len(refused)
    db.session.expire_all()
    after = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    assert after == before
    assert db.session.get(AuditEvent, event.id).comment == ""
    listing = page(client.get("/admin/audit/"))
    assert "送出審查文件" in listing and "/admin/audit/edit/" not in listing


# --- accounts -------------------------------------------------------------------------------


def _account(login_name, role):
    return {
        "login": login_name,
        "name": "新帳號",
        "email": f"{login_name}@example.edu.tw",
        "role": role,
        "position": "",
        "active": "y",
        "new_password": "a-long-password",
    }


def test_staff_cannot_create_an_admin_account(login, staff):
    response = login(staff).post("/admin/user/new/", data=_account("boss", "admin"))

    assert response.status_code == 200
    assert "只有系統管理員可以建立或修改" in page(response)
    assert db.session.scalar(sa.select(User).where(User.login == "boss")) is None


def test_staff_cannot_promote_or_change_a_staff_account(login, staff, teacher, admin_user):
    client = login(staff)

    client.post(f"/admin/user/edit/?id={teacher.id}", data=_account(teacher.login, "admin"))
    client.post(f"/admin/user/edit/?id={admin_user.id}", data=_account(admin_user.login, "admin"))

    db.session.expire_all()
    assert db.session.get(User, teacher.id).role is Role.applicant
    assert db.session.get(User, admin_user.id).name != "新帳號"


def test_staff_manage_applicant_accounts(login, staff, school):
    data = {**_account("newteacher", "applicant"), "position": "teacher", "school": school.id}

    response = login(staff).post("/admin/user/new/", data=data)

    assert response.status_code == 302, page(response)[:2000]
    user = db.session.scalar(sa.select(User).where(User.login == "newteacher"))
    assert user.role is Role.applicant and user.school_id == school.id
    assert user.check_password("a-long-password")


def test_admin_creates_an_admin_account(login, admin_user):
    response = login(admin_user).post("/admin/user/new/", data=_account("boss", "admin"))

    assert response.status_code == 302, page(response)[:2000]
    user = db.session.scalar(sa.select(User).where(User.login == "boss"))
    assert user.role is Role.admin and user.check_password("a-long-password")
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "create_account"))
    assert event.actor_id == admin_user.id and "boss" in event.comment


@pytest.mark.parametrize(
    ("password", "problem"),
    [("short1", "密碼至少需要"), ("12345678901234", "不可全為數字"), ("newteacher", "不可與帳號")],
)
def test_a_weak_password_is_refused_with_the_reason(login, staff, school, password, problem):
    data = {**_account("newteacher", "applicant"), "position": "teacher", "school": school.id}

    response = login(staff).post("/admin/user/new/", data={**data, "new_password": password})

    assert response.status_code == 200
    assert problem in page(response)
    assert db.session.scalar(sa.select(User).where(User.login == "newteacher")) is None


def test_password_hash_is_never_shown(login, admin_user, teacher):
    client = login(admin_user)
    pages = [client.get("/admin/user/"), client.get(f"/admin/user/edit/?id={teacher.id}")]

    for response in pages:
        assert teacher.password_hash not in page(response)
        assert "password_hash" not in page(response)


def test_blank_password_on_edit_keeps_the_old_one(login, admin_user, teacher):
    data = {**_account(teacher.login, "applicant"), "new_password": "", "position": "teacher"}

    response = login(admin_user).post(f"/admin/user/edit/?id={teacher.id}", data=data)

    assert response.status_code == 302, page(response)[:2000]
    db.session.expire_all()
    assert db.session.get(User, teacher.id).check_password(PASSWORD)


def _edit_teacher(client, teacher, school, changes):
    data = {**_account(teacher.login, "applicant"), "new_password": "", "position": "teacher"}
    data.update({"school": school.id, **changes})
    return client.post(f"/admin/user/edit/?id={teacher.id}", data=data)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"email": "not-an-email"}, "電子郵件格式不正確，例如 wang@example.edu.tw。"),
        (
            {"login": "有 空白 的帳號"},
            "帳號只能使用英文字母、數字及 . _ @ -，不可有空白，長度 1 至 64 字。",
        ),
        ({"position": ""}, "申請人帳號須選擇職別（教師或校長）。"),
        ({"email": "ADMIN1@example.edu.tw"}, "電子郵件「ADMIN1@example.edu.tw」已由其他帳號使用"),
        ({"county": "99999"}, "所選的縣市不存在，請重新選擇。"),
        ({"school": "99999"}, "所選的學校不存在，請重新選擇。"),
        ({"name": ""}, "此欄位為必填。"),
        ({"login": "admin1"}, "資料已經存在。"),
    ],
    ids=["email", "login", "position", "same-email", "county", "school", "name", "same-login"],
)
def test_account_edits_are_checked(login, admin_user, teacher, school, changes, message):
    before = (teacher.login, teacher.name, teacher.email, teacher.county_id, teacher.school_id)

    response = _edit_teacher(login(admin_user), teacher, school, changes)

    assert response.status_code == 200
    assert message in page(response)
    assert "Failed" not in page(response) and "This field" not in page(response)
    db.session.expire_all()
    user = db.session.get(User, teacher.id)
    assert (user.login, user.name, user.email, user.county_id, user.school_id) == before


def test_flask_admin_messages_read_like_the_rest_of_the_site(login, admin_user, teacher, school):
    client = login(admin_user)

    refused = _edit_teacher(client, teacher, school, {"name": ""})
    saved = _edit_teacher(client, teacher, school, {"name": "改過的名字"})
    listing = client.get(saved.headers["Location"])

    assert "未儲存，請修正標示紅字的欄位。" in page(refused)
    assert "此欄位為必填。" in page(refused) and "此欄位是必需的" not in page(refused)
    assert "已儲存。" in page(listing) and "保存" not in page(listing)


def test_a_new_account_refused_for_a_blank_name_says_so_in_chinese(login, admin_user):
    response = login(admin_user).post(
        "/admin/user/new/", data={**_account("x1", "staff"), "name": ""}
    )

    assert "未新增，請修正標示紅字的欄位。" in page(response)
    assert "Failed" not in page(response)


# --- cycles, training hours, documents ------------------------------------------------------


def _cycle_form(**changes):
    data = {
        "academic_year": "116",
        "name": "116 學年度進階專業回饋人才認證",
        "opens_at": "2027-09-01T09:00",
        "closes_at": "2027-10-31T17:00",
        "required_hours": "18",
        "hours_from_year": "",
        "hours_to_year": "",
        "requires_basic_certificate": "y",
        "appeal_days": "10",
        "reviewers_per_case": "2",
        "review_days": "14",
        "certificate_format": "進階回饋字第{year}{seq:05d}號",
    }
    data.update(changes)
    return data


def test_cycle_is_created_in_taipei_time_with_default_hour_years(login, staff):
    response = login(staff).post("/admin/cycle/new/", data=_cycle_form())

    assert response.status_code == 302, page(response)[:2000]
    cycle = db.session.scalar(sa.select(Cycle).where(Cycle.academic_year == 116))
    assert (cycle.hours_from_year, cycle.hours_to_year) == (114, 115)
    assert cycle.opens_at.isoformat() == "2027-09-01T01:00:00+00:00"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"closes_at": "2027-08-01T09:00"}, "截止申請時間必須晚於開始申請時間"),
        ({"hours_from_year": "115", "hours_to_year": "114"}, "起始學年度不可晚於結束學年度"),
        ({"certificate_format": "進階回饋字第{year}號"}, "必須包含流水號"),
        ({"certificate_format": "第{number}號"}, "證號格式只能使用"),
    ],
)
def test_cycle_settings_are_checked(login, staff, changes, message):
    response = login(staff).post("/admin/cycle/new/", data=_cycle_form(**changes))

    assert response.status_code == 200
    assert message in page(response)
    assert db.session.scalar(sa.select(Cycle).where(Cycle.academic_year == 116)) is None


def test_training_record_year_comes_from_the_completion_date(login, staff, teacher):
    response = login(staff).post(
        "/admin/training/new/",
        data={
            "user": teacher.id,
            "course": "進階培訓回流課程",
            "hours": "6",
            "completed_on": "2025-08-01",
            "academic_year": "",
            "advanced": "y",
        },
    )

    assert response.status_code == 302, page(response)[:2000]
    record = db.session.scalar(
        sa.select(TrainingRecord).where(TrainingRecord.course == "進階培訓回流課程")
    )
    assert record.academic_year == 114


def test_document_list_filters(login, staff, case_with_history, other_cycle):
    client = login(staff)

    def names(query):
        return set(
            re.findall(r">\s*([^<>]+?\.pdf)\s*</td>", page(client.get(f"/admin/document/{query}")))
        )

    everything = names("")
    assert "舊的公開授課證明.pdf" in everything and "認證檢核表.pdf" in everything
    assert names("?flt0_0=checklist") == {"認證檢核表.pdf"}
    assert names("?flt0_1=2") == set()
    assert names(f"?flt0_2={other_cycle.id}") == set()
    assert names(f"?flt0_2={case_with_history.cycle_id}") == everything
    assert names(f"?flt0_3={county('臺北市').id}") == everything
    assert names("?search=舊的") == {"舊的公開授課證明.pdf"}


# --- CSRF -----------------------------------------------------------------------------------


@pytest.fixture
def csrf_client(app, database, tmp_path):
    """A client of an app with CSRF protection on, sharing the test database."""
    protected = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": True,
            "SECRET_KEY": "csrf-test-secret",
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            "MAIL_SUPPRESS_SEND": True,
            **database,
        }
    )
    yield protected.test_client()
    with protected.app_context():
        db.session.remove()
        db.engine.dispose()


def _token(text):
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', text).group(1)


def test_delete_and_actions_work_with_csrf(csrf_client, staff, make_school, teacher):
    client = csrf_client
    token = _token(page(client.get("/login")))
    response = client.post(
        "/login", data={"login": staff.login, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    doomed, kept = make_school("要刪除的學校"), make_school("保留的學校")
    record = TrainingRecord(
        user=teacher, course="刪除測試", hours=3, completed_on=now_utc().date(), academic_year=115
    )
    db.session.add(record)
    db.session.commit()
    doomed_id, kept_id, record_id = doomed.id, kept.id, record.id

    listing = page(client.get("/admin/school/"))
    assert 'name="csrf_token"' in listing
    without = client.post("/admin/school/delete/", data={"id": kept_id})
    assert without.status_code == 400
    deleted = client.post(
        "/admin/school/delete/", data={"id": doomed_id, "csrf_token": _token(listing)}
    )
    assert deleted.status_code == 302

    listing = page(client.get("/admin/training/"))
    assert 'id="action_form"' in listing and "data-model-action" in listing
    acted = client.post(
        "/admin/training/action/",
        data={"action": "delete", "rowid": record_id, "csrf_token": _token(listing)},
    )
    assert acted.status_code == 302

    db.session.expire_all()
    assert db.session.get(School, doomed_id) is None
    assert db.session.get(School, kept_id) is not None
    assert db.session.get(TrainingRecord, record_id) is None


def test_school_in_use_is_not_deleted(login, staff, teacher):
    response = login(staff).post(
        "/admin/school/delete/", data={"id": teacher.school_id}, follow_redirects=True
    )

    assert "無法刪除" in page(response)
    assert db.session.get(School, teacher.school_id) is not None
