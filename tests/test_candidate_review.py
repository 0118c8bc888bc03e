"""What the candidate reads of the review (查看審查意見), the revision for 複審 and the appeal
(申復), through the real pages."""

import io
import os
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from admin_app import demo
from admin_app.demo import demo_pdf
from admin_app.extensions import db
from admin_app.i18n import now_utc, roc_date, roc_datetime, roc_moment, to_taipei
from models import (
    Appeal,
    ApplicationItem,
    AuditEvent,
    Case,
    CaseState,
    Decision,
    Document,
    DocumentKind,
    FormEntry,
    ReviewAssignment,
    workflow,
)
from models.application import submit_application

from .factories import case_in, pdf_upload, reviewers
from .pages import flashes_of
from .test_portal import flashes, item_block, read_form, text

REVIEWER_NAMES = ("王大明審查委員", "李小華審查委員")
STAFF_NAME = "承辦人陳大文"


def count(model, *where):
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def reload(case):
    db.session.expire_all()
    return db.session.get(Case, case.id)


def stored_files(app):
    """The PDFs written under the upload folder."""
    found = []
    for folder, _dirs, names in os.walk(app.config["UPLOAD_FOLDER"]):
        found += [os.path.join(folder, name) for name in names]
    return sorted(found)


@pytest.fixture
def panel(staff):
    """Two reviewers with names that must never reach the candidate; staff named as well."""
    made = reviewers(2)
    for reviewer, name in zip(made, REVIEWER_NAMES, strict=True):
        reviewer.name = name
    staff.name = STAFF_NAME
    db.session.commit()
    return made


def assignments_of(case, round_):
    return db.session.scalars(
        sa.select(ReviewAssignment)
        .where(ReviewAssignment.case_id == case.id, ReviewAssignment.round == round_)
        .order_by(ReviewAssignment.id)
    ).all()


def submit_review(assignment, observation_comment, overall, recommendation):
    """One reviewer's review: 符合 everywhere but 待改進 on the observation record."""
    results = {item.value: {"result": "meets", "comment": ""} for item in ApplicationItem}
    results["observation"] = {"result": "improve", "comment": observation_comment}
    workflow.save_review(assignment, assignment.reviewer, results, overall, recommendation, True)
    db.session.commit()


def review_round(case, recommendation, prefix=""):
    """Both reviewers of the case's round submit, the later-assigned one first."""
    first, second = assignments_of(case, case.round)
    submit_review(
        second, f"{prefix}第二位：事實摘要不足。", f"{prefix}第二位綜合意見", recommendation
    )
    submit_review(
        first, f"{prefix}第一位：紀錄過於簡略。", f"{prefix}第一位綜合意見", recommendation
    )


def judged(cycle, staff, panel, teacher, decision, comment):
    """The teacher's case reviewed by the panel in round 1 and judged."""
    case = case_in(CaseState.under_review, cycle, staff, applicant=teacher, panel=panel)
    review_round(case, decision)
    workflow.record_verdict(reload(case), decision, staff, comment)
    db.session.commit()
    return reload(case)


# --- 查看審查意見 -------------------------------------------------------------------------------


def test_formal_review_returns_are_listed_under_round_one(login, teacher, cycle, staff, panel):
    case = case_in(CaseState.returned, cycle, staff, applicant=teacher)
    submit_application(case, teacher)
    workflow.return_for_correction(reload(case), staff, "社群參與證明缺少召集人簽名。")
    db.session.commit()

    page = text(login(teacher).get("/apply/comments"))

    section = page.split('id="round-1"')[1]
    assert "形式審查意見" in section
    first = section.index("公開授課實施證明未核章，請補蓋學校章後重新上傳。")
    assert first < section.index("社群參與證明缺少召集人簽名。")
    assert "委員審查意見" not in page
    assert STAFF_NAME not in page and staff.login not in page


def test_reviews_stay_hidden_while_the_committee_is_reviewing(login, teacher, cycle, staff, panel):
    case = case_in(CaseState.under_review, cycle, staff, applicant=teacher, panel=panel)
    first, second = assignments_of(case, 1)
    client = login(teacher)

    submit_review(second, "第二位：事實摘要不足。", "第二位綜合意見", Decision.failed)
    page = text(client.get("/apply/comments"))
    assert "委員審查中，審查意見將於初審判定後公布。" in page
    assert "第二位" not in page

    submit_review(first, "第一位：紀錄過於簡略。", "第一位綜合意見", Decision.failed)
    assert reload(case).state is CaseState.awaiting_verdict
    page = text(client.get("/apply/comments"))
    assert "委員審查中" in page
    assert "第一位" not in page and "第二位" not in page and 'class="review"' not in page


def test_a_judged_round_shows_numbered_reviews_and_the_verdict(login, teacher, cycle, staff, panel):
    judged(cycle, staff, panel, teacher, Decision.revise_and_review, "請補充觀察紀錄的事實摘要。")

    page = text(login(teacher).get("/apply/comments"))

    one, two = page.index(">委員一</h5>"), page.index(">委員二</h5>")
    assert one < two
    # numbered by assignment, not by who submitted first
    assert one < page.index("第一位：紀錄過於簡略。") < two < page.index("第二位：事實摘要不足。")
    assert one < page.index("第一位綜合意見") < two < page.index("第二位綜合意見")
    first_review = page[one:two]
    assert first_review.count(">符合</span>") == 5 and first_review.count(">待改進</span>") == 1
    assert "綜合意見" in first_review
    verdict = page.split("初審判定")[-1]
    assert "修正後複審" in verdict and "請補充觀察紀錄的事實摘要。" in verdict


def test_no_reviewer_or_staff_name_ever_reaches_the_candidate(login, teacher, cycle, staff, panel):
    """The whole way through: return, two rounds, failure, appeal and its outcome."""
    case = case_in(CaseState.returned, cycle, staff, applicant=teacher, panel=panel)
    submit_application(reload(case), teacher)
    workflow.pass_formal_review([reload(case)], staff)
    workflow.assign_reviewers(reload(case), panel, staff)
    db.session.commit()
    review_round(reload(case), Decision.revise_and_review)
    workflow.record_verdict(reload(case), Decision.revise_and_review, staff, "請修正。")
    submit_application(reload(case), teacher)
    workflow.assign_reviewers(reload(case), panel, staff)
    db.session.commit()
    review_round(reload(case), Decision.failed, prefix="複審")
    workflow.record_verdict(reload(case), Decision.failed, staff, "複審未通過。")
    workflow.file_appeal(reload(case), teacher, "請再審酌。")
    workflow.accept_appeal(reload(case), staff, "受理")
    workflow.dismiss_appeal(reload(case), staff, "申復理由不足。")
    db.session.commit()
    client = login(teacher)

    pages = ["/apply", "/apply/flow", "/apply/comments", "/apply/appeal", "/messages"]
    messages = text(client.get("/messages"))
    pages += sorted(set(re.findall(r'href="(/messages/\d+)"', messages)))
    assert len(pages) > 6
    shown = "\n".join(text(client.get(url)) for url in pages)

    assert "複審第一位：紀錄過於簡略。" in shown and "申復理由不足。" in shown
    people = [*panel, staff]
    for person in people:
        assert person.name not in shown
        assert person.login not in shown
        assert person.email not in shown


def test_undone_verdict_hides_its_reviews_and_its_comment(login, teacher, cycle, staff, panel):
    case = judged(cycle, staff, panel, teacher, Decision.failed, "觀察紀錄不完整。")
    workflow.undo_verdict(case, staff, "誤植判定")
    db.session.commit()

    page = text(login(teacher).get("/apply/comments"))

    assert "觀察紀錄不完整。" not in page and "誤植判定" not in page
    assert "第一位" not in page and 'class="review"' not in page
    assert "委員審查中，審查意見將於初審判定後公布。" in page


def test_the_second_round_is_shown_beside_the_first(login, teacher, cycle, staff, panel):
    case = case_in(CaseState.under_review, cycle, staff, round_=2, applicant=teacher, panel=panel)
    review_round(case, Decision.failed, prefix="複審")
    workflow.record_verdict(reload(case), Decision.failed, staff, "複審仍未改善。")
    db.session.commit()

    page = text(login(teacher).get("/apply/comments"))
    first = page.split('id="round-1"')[1].split('id="round-2"')[0]
    second = page.split('id="round-2"')[1]

    assert "請依委員意見修正觀察紀錄。" in first and "修正後複審" in first
    # the demo's round-1 reviews, which recommended 修正後複審
    assert first.count(demo.WANTING["revise_and_review"][1]) == 2
    assert "複審第一位：紀錄過於簡略。" in second and "複審仍未改善。" in second
    assert second.index(">委員一</h5>") < second.index("複審第一位") < second.index(">委員二</h5>")
    assert "未通過" in second


def test_appeal_decisions_are_shown_with_their_comments(login, teacher, cycle, staff):
    case = case_in(CaseState.appeal_review, cycle, staff, applicant=teacher)
    workflow.dismiss_appeal(case, staff, "所附資料不足以推翻原審查結果。")
    db.session.commit()
    client = login(teacher)

    page = text(client.get("/apply/comments"))
    appeal = page.split('id="appeal"')[1]
    assert "觀察紀錄已依規定填寫，請重新審查。" in appeal  # the candidate's own reasons
    assert appeal.index("申復受理") < appeal.index("申復不成立")
    assert "所附資料不足以推翻原審查結果。" in appeal
    assert re.search(r"申復結果：<strong[^>]*>申復不成立</strong>", appeal)

    appeal_page = text(client.get("/apply/appeal"))
    assert "申復不成立" in appeal_page and "所附資料不足以推翻原審查結果。" in appeal_page


def test_what_people_typed_is_escaped(login, teacher, cycle, staff, panel):
    case = case_in(CaseState.under_review, cycle, staff, applicant=teacher, panel=panel)
    for assignment in assignments_of(case, 1):
        submit_review(assignment, "<script>alert(1)</script>", "<b>粗體</b>", Decision.failed)
    workflow.record_verdict(reload(case), Decision.failed, staff, "<i>未通過</i>\n第二行")
    db.session.commit()

    page = text(login(teacher).get("/apply/comments"))

    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "<b>粗體</b>" not in page and "&lt;b&gt;粗體&lt;/b&gt;" in page
    assert "&lt;i&gt;未通過&lt;/i&gt;\n第二行" in page


def test_another_teacher_cannot_read_the_comments(
    login, teacher, other_teacher, cycle, staff, panel
):
    case = judged(cycle, staff, panel, teacher, Decision.failed, "觀察紀錄不完整。")
    client = login(other_teacher)

    assert client.get(f"/apply/comments/{case.id}").status_code == 404
    assert client.get("/apply/comments").headers["Location"].endswith("/apply")
    assert login(teacher).get(f"/apply/comments/{case.id}").status_code == 200


# --- 修正後複審 -----------------------------------------------------------------------------------


@pytest.fixture
def revision(teacher, cycle, staff):
    return case_in(CaseState.revision_requested, cycle, staff, applicant=teacher)


def round_one_snapshot(case):
    """Every round-1 document and record as stored, to compare after round-2 edits."""
    db.session.expire_all()
    documents = db.session.scalars(
        sa.select(Document).where(Document.case_id == case.id, Document.round == 1)
    ).all()
    entries = db.session.scalars(
        sa.select(FormEntry).where(FormEntry.case_id == case.id, FormEntry.round == 1)
    ).all()
    return (
        sorted((d.id, d.kind, d.stored_name, d.sha256, d.superseded_at is None) for d in documents),
        sorted((e.id, e.item, e.template_version_id, repr(e.data)) for e in entries),
    )


def test_revision_page_says_so_and_opens_the_items(login, teacher, revision):
    page = text(login(teacher).get("/apply"))

    assert "初審結果：修正後複審" in page
    assert "請修正觀察紀錄的事實摘要。" in page
    assert 'href="/apply/comments"' in page
    for item in ApplicationItem:
        _classes, body = item_block(page, item)
        assert ">編輯</a>" in body and "沿用初審資料" in body and "已修正" not in body
    assert re.search(r'<a class="button primary" href="/apply/submit">送出複審資料</a>', page)


def test_round_two_uploads_keep_round_one_and_supersede_only_round_two(
    app, login, teacher, revision
):
    before = round_one_snapshot(revision)
    files_before = stored_files(app)
    client = login(teacher)

    for name in ("修正一.pdf", "修正二.pdf"):
        response = client.post(
            "/apply/item/community",
            data={"file": (io.BytesIO(pdf_upload(name).read()), name)},
            follow_redirects=True,
        )
        assert f"已上傳「{name}」。" in flashes(response)

    assert round_one_snapshot(revision) == before
    assert all(os.path.isfile(path) for path in files_before)
    second = db.session.scalars(
        sa.select(Document)
        .where(Document.case_id == revision.id, Document.round == 2)
        .order_by(Document.id)
    ).all()
    assert [(d.original_name, d.superseded_at is None) for d in second] == [
        ("修正一.pdf", False),
        ("修正二.pdf", True),
    ]
    assert all(d.kind is DocumentKind.community for d in second)

    page = text(client.get("/apply"))
    _classes, body = item_block(page, ApplicationItem.community)
    assert "已修正" in body and "修正二.pdf" in body and "修正一.pdf" not in body
    _classes, body = item_block(page, ApplicationItem.public_teaching)
    assert "沿用初審資料" in body
    upload_page = text(client.get("/apply/item/community"))
    assert "修正二.pdf" in upload_page and "已修正" in upload_page


def test_round_two_record_is_stored_beside_round_one(login, teacher, revision):
    before = round_one_snapshot(revision)
    client = login(teacher)

    response = client.get("/apply/record/pre_conference")
    assert "目前顯示初審填寫的內容" in text(response)
    form = read_form(response)
    assert form.values["teacher_name"] == "示範內容"  # round 1's answers to start from

    for goal in ("修正後的學習目標", "再次修正的學習目標"):
        data = MultiDict(form.values)
        data["learning_goal"] = goal
        assert client.post("/apply/record/pre_conference", data=data).status_code == 302

    assert round_one_snapshot(revision) == before
    entries = db.session.scalars(
        sa.select(FormEntry)
        .where(FormEntry.case_id == revision.id, FormEntry.item == ApplicationItem.pre_conference)
        .order_by(FormEntry.round)
    ).all()
    assert [entry.round for entry in entries] == [1, 2]
    assert entries[0].data["learning_goal"] != "再次修正的學習目標"
    assert entries[1].data["learning_goal"] == "再次修正的學習目標"

    page = text(client.get("/apply"))
    _classes, body = item_block(page, ApplicationItem.pre_conference)
    assert "已修正" in body
    assert "目前顯示初審填寫的內容" not in text(client.get("/apply/record/pre_conference"))


def test_revision_is_confirmed_then_sent_once(login, teacher, revision):
    client = login(teacher)
    client.post(
        "/apply/item/checklist",
        data={"file": (io.BytesIO(pdf_upload("檢核表修正.pdf").read()), "檢核表修正.pdf")},
    )

    confirm = text(client.get("/apply/submit"))
    assert '<h1 class="page-title">送出複審資料</h1>' in confirm
    assert ">確定</button>" in confirm
    assert re.search(r'<a class="button secondary" href="/apply">取消</a>', confirm)
    assert reload(revision).state is CaseState.revision_requested  # nothing sent by looking

    sent = client.post("/apply/submit")
    assert sent.headers["Location"].endswith("/apply/flow")
    assert "已送出複審資料，請靜候複審結果。" in flashes(client.get("/apply/flow"))
    case = reload(revision)
    assert (case.state, case.round) == (CaseState.awaiting_assignment, 2)

    page = text(client.get("/apply"))
    assert "複審分發委員" in page and "僅供檢視" in page
    _classes, body = item_block(page, ApplicationItem.checklist)
    assert "已修正" in body and "檢核表修正.pdf" in body
    _classes, body = item_block(page, ApplicationItem.community)
    assert "沿用初審資料" in body

    again = client.post("/apply/submit", follow_redirects=True)
    assert "此申請已送出，目前狀態為「複審分發委員」，無須再次送出。" in flashes(again)
    assert (
        count(AuditEvent, AuditEvent.case_id == case.id, AuditEvent.action == "submit_revision")
        == 1
    )
    case = reload(revision)
    assert (case.state, case.round) == (CaseState.awaiting_assignment, 2)


# --- 申復 ---------------------------------------------------------------------------------------


@pytest.fixture
def failed(teacher, cycle, staff):
    return case_in(CaseState.failed, cycle, staff, applicant=teacher)


def move_deadline(case, moment):
    db.session.execute(sa.update(Case).where(Case.id == case.id).values(appeal_deadline=moment))
    db.session.commit()


def appeal_post(reason="觀察紀錄已依規定填寫，請重新審查。", confirm=True, pdf=None):
    data = {"reason": reason}
    if confirm:
        data["confirm"] = "yes"
    if pdf is not None:
        data["file"] = (io.BytesIO(pdf[1]), pdf[0])
    return data


def nothing_stored(app, case, events, files):
    assert reload(case).state is CaseState.failed
    assert count(Appeal) == 0
    assert count(Document, Document.kind == DocumentKind.appeal) == 0
    assert count(AuditEvent, AuditEvent.case_id == case.id) == events
    assert stored_files(app) == files


def test_appeal_page_shows_the_last_moment_and_the_form(login, teacher, failed):
    deadline = to_taipei(failed.appeal_deadline)
    assert (deadline.hour, deadline.minute, deadline.second) == (23, 59, 59)

    page = text(login(teacher).get("/apply/appeal"))

    assert f"{roc_date(deadline)} 23:59（" in page and "23:59:59" not in page
    form = page.split('class="appeal-form"')[1].split("</form>")[0]
    assert re.search(r'<textarea id="reason" name="reason"[^>]* required', form)
    assert 'type="file" id="file" name="file" accept=".pdf,application/pdf"' in form
    assert re.search(r'<input type="checkbox" name="confirm" value="yes" required>', form)
    assert ">確定</button>" in form
    assert re.search(r'<a class="button secondary" href="/apply">取消</a>', form)
    assert 'name="csrf_token"' in form
    assert 'href="/apply/comments"' in page


def test_appeal_needs_the_confirmation_and_a_reason(app, login, teacher, failed):
    events, files = count(AuditEvent, AuditEvent.case_id == failed.id), stored_files(app)
    client = login(teacher)

    unconfirmed = client.post("/apply/appeal", data=appeal_post(confirm=False))
    assert unconfirmed.status_code == 200
    assert "送出前請勾選「我已確認申復理由與附件無誤」。" in flashes(unconfirmed)
    assert read_form(unconfirmed, "appeal-form").values["reason"] == (
        "觀察紀錄已依規定填寫，請重新審查。"
    )
    nothing_stored(app, failed, events, files)

    blank = client.post("/apply/appeal", data=appeal_post(reason="   "))
    assert "請填寫申復理由。" in flashes(blank)
    nothing_stored(app, failed, events, files)


def test_appeal_with_a_pdf_is_filed_once(login, teacher, failed):
    client = login(teacher)

    response = client.post(
        "/apply/appeal",
        data=appeal_post(pdf=("佐證資料.pdf", pdf_upload("佐證資料.pdf").read())),
    )

    assert response.headers["Location"].endswith("/apply/appeal")
    case = reload(failed)
    assert case.state is CaseState.appeal_filed
    appeal = db.session.scalar(sa.select(Appeal).where(Appeal.case_id == case.id))
    assert appeal.reason == "觀察紀錄已依規定填寫，請重新審查。"
    assert appeal.document.kind is DocumentKind.appeal
    assert appeal.document.original_name == "佐證資料.pdf"

    page = text(client.get("/apply/appeal"))
    assert "已提出申復，認證中心將通知您是否受理。" in flashes_of(page)
    assert "申復申請中" in page and "佐證資料.pdf" in page
    assert 'class="appeal-form"' not in page
    assert "申復申請中" in text(client.get("/apply"))
    assert "申復申請中" in text(client.get("/apply/flow"))
    assert "佐證資料.pdf" in text(client.get("/apply/comments"))

    again = client.post("/apply/appeal", data=appeal_post(), follow_redirects=True)
    assert "此案件目前為「申復申請中」，無法執行「提出申復」。請重新整理頁面。" in flashes(again)
    assert count(Appeal) == 1


def test_appeal_a_minute_before_the_deadline_is_taken(login, teacher, failed):
    move_deadline(failed, now_utc() + timedelta(minutes=1))

    login(teacher).post("/apply/appeal", data=appeal_post())

    assert reload(failed).state is CaseState.appeal_filed


def test_appeal_after_the_deadline_is_refused_and_stores_nothing(app, login, teacher, failed):
    move_deadline(failed, now_utc() - timedelta(seconds=1))
    deadline = reload(failed).appeal_deadline
    events, files = count(AuditEvent, AuditEvent.case_id == failed.id), stored_files(app)
    client = login(teacher)

    page = text(client.get("/apply/appeal"))
    assert 'class="appeal-form"' not in page
    assert f"申復期限已於 {roc_moment(deadline)} 截止，無法再提出申復。" in page
    assert "無法提出申復" not in page and "可申復" not in page
    assert "未通過（申復期限已過）" in page
    for other in ("/apply", "/apply/flow"):
        other_page = text(client.get(other))
        assert "未通過（申復期限已過）" in other_page and "提出申復" not in other_page

    response = client.post(
        "/apply/appeal", data=appeal_post(pdf=("佐證.pdf", pdf_upload("佐證.pdf").read()))
    )

    assert f"申復期限已於 {roc_datetime(deadline)} 截止，無法再提出申復。" in flashes(response)
    nothing_stored(app, failed, events, files)


def test_appeal_with_a_file_over_the_limit_keeps_the_reason(app, login, teacher, failed):
    events, files = count(AuditEvent, AuditEvent.case_id == failed.id), stored_files(app)
    eleven_mb = demo_pdf("大") + b"%" + b"0" * (11 * 1024 * 1024)

    data = appeal_post(reason="第三項意見與事實不符。", pdf=("大.pdf", eleven_mb))

    response = login(teacher).post("/apply/appeal", data=data)

    assert response.status_code == 200
    assert "檔案超過 10 MB 的上限，請壓縮後再上傳。" in flashes(response)
    assert read_form(response, "appeal-form").values["reason"] == "第三項意見與事實不符。"
    nothing_stored(app, failed, events, files)


def test_appeal_form_checks_the_file_size_before_sending(login, teacher, failed):
    page = text(login(teacher).get("/apply/appeal"))

    assert f'data-max-bytes="{10 * 1024 * 1024}"' in page
    assert 'data-too-big="檔案超過 10 MB 的上限，請壓縮後再上傳。"' in page
    assert '<script src="/static/upload-size.js" defer></script>' in page


def test_appeal_with_a_file_that_is_no_pdf_stores_nothing(app, login, teacher, failed):
    events, files = count(AuditEvent, AuditEvent.case_id == failed.id), stored_files(app)

    response = login(teacher).post(
        "/apply/appeal", data=appeal_post(pdf=("假的.pdf", b"this is not a pdf"))
    )

    assert any(message.startswith("檔案內容不是 PDF") for message in flashes(response))
    nothing_stored(app, failed, events, files)


def test_appeal_outcome_is_shown_later(login, teacher, failed, staff):
    client = login(teacher)
    client.post("/apply/appeal", data=appeal_post())

    workflow.accept_appeal(reload(failed), staff, "內部備註：交由原委員複查")
    db.session.commit()
    page = text(client.get("/apply/appeal"))
    assert "已受理" in page and "申復審查中" in page
    assert "內部備註" not in page
    assert "內部備註" not in text(client.get("/apply/comments"))

    workflow.uphold_appeal(reload(failed), staff, "經複查，觀察紀錄符合規定。")
    db.session.commit()
    page = text(client.get("/apply/appeal"))
    assert "申復成立" in page and "經複查，觀察紀錄符合規定。" in page
    assert "通過可產證" in page
    comments = text(client.get("/apply/comments"))
    assert "申復成立" in comments and "經複查，觀察紀錄符合規定。" in comments
