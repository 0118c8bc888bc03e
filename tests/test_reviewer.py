"""The reviewer pages through their real forms: who sees which case, drafts, submission, the
read-only page after it, and what a reviewer must never see."""

import os
import re

import pytest

from admin_app import storage
from admin_app.extensions import db
from admin_app.i18n import roc_date
from models import ApplicationItem, CaseState, Decision, ReviewAssignment, workflow
from models.application import attach_document, effective_documents, submit_application

from .factories import case_in, pdf_upload, reviewers
from .pages import flashes, text


def complete_review(recommendation=Decision.passed, **changes):
    """A review form as a browser sends it, every part filled, 送出 confirmed."""
    data = {"overall_comment": "觀察紀錄完整，回饋具體。", "action": "submit", "confirm": "yes"}
    for item in ApplicationItem:
        data[f"result-{item.value}"] = "meets"
        data[f"comment-{item.value}"] = ""
    if recommendation is not None:
        data["recommendation"] = recommendation.value
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def stored(assignment):
    """The assignment as the database has it now."""
    db.session.expire_all()
    return db.session.get(ReviewAssignment, assignment.id)


def named_panel(*names):
    """Reviewer accounts with the given, easily searched-for names."""
    panel = reviewers(len(names))
    for reviewer, name in zip(panel, names, strict=True):
        reviewer.name = name
    db.session.flush()
    return panel


@pytest.fixture
def panel(app):
    return named_panel("林審查甲", "陳審查乙")


@pytest.fixture
def case(cycle, staff, panel):
    """A round-1 case under review by the two reviewers of `panel`."""
    return case_in(CaseState.under_review, cycle, staff, panel=panel)


@pytest.fixture
def outsider(app):
    """A reviewer assigned to nothing."""
    (reviewer,) = named_panel("黃局外丙")
    db.session.commit()
    return reviewer


def assignment_of(case, reviewer):
    return next(
        a for a in case.assignments if a.reviewer_id == reviewer.id and a.round == case.round
    )


def a_document(case):
    return next(iter(effective_documents(case, case.round).values()))


# --- who may see what -----------------------------------------------------------------------


def test_reviewer_lists_only_own_assignments(login, cycle, staff, case, panel):
    elsewhere = case_in(CaseState.under_review, cycle, staff, panel=named_panel("甲", "乙"))
    assignment = assignment_of(case, panel[0])

    page = text(login(panel[0]).get("/review/"))

    assert f"案號 {case.id}｜{case.applicant.name}" in page
    assert case.applicant.school.name in page
    assert "初審" in page
    assert roc_date(assignment.due_at) in page
    assert "待審查" in page
    assert f"案號 {elsewhere.id}｜" not in page
    assert elsewhere.applicant.name not in page


def test_index_lists_open_assignments_before_submitted_ones(login, cycle, staff, panel):
    first = case_in(CaseState.under_review, cycle, staff, panel=panel)
    second = case_in(CaseState.under_review, cycle, staff, panel=panel)
    client = login(panel[0])
    client.post(f"/review/{assignment_of(first, panel[0]).id}", data=complete_review())
    client.post(
        f"/review/{assignment_of(second, panel[0]).id}",
        data=complete_review(action="draft", recommendation=None),
    )

    page = text(client.get("/review/"))

    assert page.index(f"案號 {second.id}｜") < page.index(f"案號 {first.id}｜")
    assert page.index('status">草稿已儲存') < page.index('status">已送出')


def test_other_reviewer_gets_404_everywhere(login, case, panel, outsider):
    assignment = assignment_of(case, panel[0])
    document = a_document(case)
    client = login(outsider)

    assert client.get(f"/review/{assignment.id}").status_code == 404
    assert client.get(f"/review/{assignment.id}/document/{document.id}").status_code == 404
    response = client.post(f"/review/{assignment.id}", data=complete_review())
    assert response.status_code == 404
    assert stored(assignment).submitted_at is None
    assert stored(assignment).overall_comment == ""
    assert "找不到頁面" in text(client.get("/review/999999"))


def test_fellow_reviewer_cannot_open_the_others_assignment(login, case, panel):
    theirs = assignment_of(case, panel[1])
    client = login(panel[0])

    assert client.get(f"/review/{theirs.id}").status_code == 404
    assert client.post(f"/review/{theirs.id}", data=complete_review()).status_code == 404
    assert stored(theirs).submitted_at is None


def test_own_assignment_does_not_open_another_cases_document(login, cycle, staff, case, panel):
    elsewhere = case_in(CaseState.under_review, cycle, staff, panel=named_panel("甲", "乙"))
    own = assignment_of(case, panel[0])

    response = login(panel[0]).get(f"/review/{own.id}/document/{a_document(elsewhere).id}")

    assert response.status_code == 404


@pytest.mark.parametrize("role", ["teacher", "staff", "county_officer", "admin_user"])
def test_other_roles_are_refused(request, login, case, panel, role):
    assignment = assignment_of(case, panel[0])
    document = a_document(case)
    client = login(request.getfixturevalue(role))

    for url in ("/review/", f"/review/{assignment.id}", f"/review/{assignment.id}/document/1"):
        assert client.get(url).status_code == 403, url
    assert client.get(f"/review/{assignment.id}/document/{document.id}").status_code == 403
    assert client.post(f"/review/{assignment.id}", data=complete_review()).status_code == 403
    assert stored(assignment).submitted_at is None


def test_anonymous_is_sent_to_login(client, case, panel):
    assignment = assignment_of(case, panel[0])

    for url in ("/review/", f"/review/{assignment.id}"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]
    response = client.post(f"/review/{assignment.id}", data=complete_review())
    assert response.status_code == 302
    assert stored(assignment).submitted_at is None


# --- reading the case -----------------------------------------------------------------------


def test_page_shows_every_document_and_record(login, case, panel):
    assignment = assignment_of(case, panel[0])

    page = text(login(panel[0]).get(f"/review/{assignment.id}"))

    for item in ApplicationItem:
        assert str(item.label) in page
    for document in effective_documents(case, 1).values():
        assert f"/review/{assignment.id}/document/{document.id}" in page
        assert document.original_name in page
    assert "示範內容" in page  # the records' demo content, rendered readably
    assert "初審資料" not in page
    assert 'name="csrf_token"' in page


def test_document_download_sends_the_pdf(login, case, panel):
    assignment = assignment_of(case, panel[0])
    document = a_document(case)

    response = login(panel[0]).get(f"/review/{assignment.id}/document/{document.id}")

    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.data.startswith(b"%PDF-")


def test_missing_file_is_a_chinese_404(login, case, panel):
    assignment = assignment_of(case, panel[0])
    document = a_document(case)
    os.remove(storage.path_of(document.stored_name))

    response = login(panel[0]).get(f"/review/{assignment.id}/document/{document.id}")

    assert response.status_code == 404
    assert "檔案已遺失" in text(response)


def test_script_typed_in_a_record_is_escaped(login, case, panel):
    entry = next(e for e in case.form_entries if e.item is ApplicationItem.pre_conference)
    field = next(f for f in entry.template_version.fields if f["type"] in ("text", "textarea"))
    entry.data = {**entry.data, field["key"]: "<script>alert('x')</script>"}
    db.session.commit()

    page = text(login(panel[0]).get(f"/review/{assignment_of(case, panel[0]).id}"))

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(" in page


def test_page_never_names_the_other_reviewer_or_staff(login, case, panel, staff):
    client = login(panel[1])
    client.post(f"/review/{assignment_of(case, panel[1]).id}", data=complete_review())
    client = login(panel[0])

    for url in ("/review/", f"/review/{assignment_of(case, panel[0]).id}"):
        page = text(client.get(url))
        assert panel[1].name not in page
        assert staff.name not in page
        assert "觀察紀錄完整，回饋具體。" not in page  # the other reviewer's comment


def test_recommendation_has_no_default_choice(login, case, panel):
    page = text(login(panel[0]).get(f"/review/{assignment_of(case, panel[0]).id}"))

    radios = re.findall(r'<input type="radio" name="recommendation"[^>]*>', page)
    assert len(radios) == 4
    assert not any("checked" in radio for radio in radios)
    assert "確認送出後不得修改" in page


# --- drafts and submission ------------------------------------------------------------------


def test_draft_keeps_what_was_typed_and_the_case_under_review(login, case, panel):
    assignment = assignment_of(case, panel[0])
    client = login(panel[0])
    data = {
        "action": "draft",
        "result-observation": "improve",
        "comment-observation": "事實摘要過簡。",
        "overall_comment": "尚待補充。",
    }

    response = client.post(f"/review/{assignment.id}", data=data)
    assert response.status_code == 303
    page = client.get(response.headers["Location"])

    assert "草稿已儲存" in " ".join(flashes(page))
    saved = stored(assignment)
    assert saved.submitted_at is None
    assert saved.item_results["observation"] == {"result": "improve", "comment": "事實摘要過簡。"}
    assert saved.overall_comment == "尚待補充。"
    assert saved.recommendation is None
    assert saved.case.state is CaseState.under_review
    assert 'name="result-observation" value="improve" checked' in text(page)
    assert "事實摘要過簡。" in text(page)
    assert "草稿已儲存" in text(client.get("/review/"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"recommendation": None}, "請選擇建議審查結果"),
        ({"overall_comment": "  "}, "請填寫給申請人的綜合意見"),
        ({"result-checklist": None}, "「認證檢核表」尚未評定符合或待改進"),
        ({"result-observation": "improve"}, "「觀察紀錄表」評為待改進，請填寫意見"),
        ({"confirm": None}, "確認送出後不得修改"),
    ],
)
def test_incomplete_submission_is_refused_and_keeps_the_typing(
    login, case, panel, changes, message
):
    assignment = assignment_of(case, panel[0])
    data = complete_review(**{"comment-community": "社群紀錄清楚。", **changes})

    response = login(panel[0]).post(f"/review/{assignment.id}", data=data)

    assert response.status_code == 200
    assert any(message in flash for flash in flashes(response))
    saved = stored(assignment)
    assert saved.submitted_at is None
    assert saved.overall_comment == ""
    assert saved.case.state is CaseState.under_review
    assert "社群紀錄清楚。" in text(response)
    assert 'class="review-form"' in text(response)


@pytest.mark.parametrize("action", ["draft", "submit"])
def test_an_overlong_overall_comment_is_refused_and_kept(login, case, panel, action):
    assignment = assignment_of(case, panel[0])
    overlong = "長" * 100_000
    data = complete_review(overall_comment=overlong, action=action)

    response = login(panel[0]).post(f"/review/{assignment.id}", data=data)

    assert response.status_code == 200
    assert "綜合意見最多 20,000 字，目前有 100,000 字，請精簡後再送出。" in flashes(response)
    assert overlong in text(response)
    saved = stored(assignment)
    assert saved.overall_comment == "" and saved.submitted_at is None


def test_an_overlong_item_comment_is_refused(login, case, panel):
    assignment = assignment_of(case, panel[0])
    data = complete_review(**{"comment-community": "短" * 5_001})

    response = login(panel[0]).post(f"/review/{assignment.id}", data=data)

    expected = "「教師專業學習社群參與證明」的意見最多 5,000 字，目前有 5,001 字，請精簡後再送出。"
    assert expected in flashes(response)
    assert stored(assignment).submitted_at is None


def test_refusal_of_an_incomplete_review_ends_as_a_sentence(login, case, panel):
    assignment = assignment_of(case, panel[0])
    data = complete_review(recommendation=None, **{"result-observation": "improve"})

    response = login(panel[0]).post(f"/review/{assignment.id}", data=data)

    assert "「觀察紀錄表」評為待改進，請填寫意見；請選擇建議審查結果。" in flashes(response)


def test_two_submissions_move_the_case_to_verdict(login, case, panel):
    for reviewer in panel:
        client = login(reviewer)
        response = client.post(
            f"/review/{assignment_of(case, reviewer).id}", data=complete_review()
        )
        assert response.status_code == 303
        assert "審查意見已送出" in " ".join(flashes(client.get(response.headers["Location"])))

    db.session.refresh(case)
    assert case.state is CaseState.awaiting_verdict
    assert case.status_label == "初審判定"
    page = text(client.get("/review/"))
    assert 'status">已送出' in page and 'status">待審查' not in page


def test_submitted_review_is_read_only_and_a_crafted_post_changes_nothing(login, case, panel):
    assignment = assignment_of(case, panel[0])
    client = login(panel[0])
    client.post(f"/review/{assignment.id}", data=complete_review())
    before = stored(assignment)
    kept = (before.submitted_at, before.overall_comment, before.recommendation)

    page = text(client.get(f"/review/{assignment.id}"))
    assert 'class="review-form"' not in page
    assert "無法修改" in page

    for action in ("draft", "submit"):
        crafted = complete_review(
            Decision.failed,
            action=action,
            overall_comment="改過的意見",
            **{"result-community": "improve"},
        )
        response = client.post(f"/review/{assignment.id}", data=crafted)
        assert "此審查意見已送出，無法再修改。" in flashes(response)
        assert "改過的意見" not in text(response)
        after = stored(assignment)
        assert (after.submitted_at, after.overall_comment, after.recommendation) == kept
        assert after.item_results["community"]["result"] == "meets"
    assert stored(assignment).case.state is CaseState.under_review


def test_double_submit_is_harmless(login, case, panel):
    assignment = assignment_of(case, panel[0])
    client = login(panel[0])

    first = client.post(f"/review/{assignment.id}", data=complete_review())
    second = client.post(f"/review/{assignment.id}", data=complete_review())

    assert first.status_code == 303
    assert second.status_code == 200
    assert "此審查意見已送出，無法再修改。" in flashes(second)
    assert stored(assignment).case.state is CaseState.under_review


def test_unknown_action_is_a_bad_request(login, case, panel):
    assignment = assignment_of(case, panel[0])

    response = login(panel[0]).post(f"/review/{assignment.id}", data=complete_review(action="x"))

    assert response.status_code == 400
    assert stored(assignment).submitted_at is None


# --- round 2 --------------------------------------------------------------------------------


@pytest.fixture
def second_round(cycle, staff):
    """A round-2 case with a revised checklist, reviewed by a panel other than round 1's."""
    first_panel = named_panel("初審委員甲", "初審委員乙")
    case = case_in(CaseState.revision_requested, cycle, staff, panel=first_panel)
    for assignment in case.assignments:
        assignment.overall_comment = "初審委員的私下意見"
    attach_document(case, ApplicationItem.checklist, pdf_upload("複審檢核表.pdf"), case.applicant)
    submit_application(case, case.applicant)
    second_panel = named_panel("複審委員丙", "複審委員丁")
    workflow.assign_reviewers(case, second_panel, staff)
    db.session.commit()
    return case, first_panel, second_panel


def test_round_two_page_lists_round_one_material_but_not_its_reviews(login, second_round):
    case, first_panel, second_panel = second_round
    assignment = assignment_of(case, second_panel[0])
    client = login(second_panel[0])

    page = text(client.get(f"/review/{assignment.id}"))

    assert "複審資料" in page and "初審資料" in page
    assert "複審檢核表.pdf" in page
    assert "認證檢核表.pdf" in page  # the round-1 file, under 初審資料
    assert "初審委員的私下意見" not in page
    assert "整體表現良好" not in page
    for reviewer in (*first_panel, second_panel[1]):
        assert reviewer.name not in page
    radios = re.findall(r'name="recommendation" value="(\w+)"', page)
    assert radios == ["passed", "failed"]
    for document in effective_documents(case, 1).values():
        response = client.get(f"/review/{assignment.id}/document/{document.id}")
        assert response.status_code == 200


def test_round_two_refuses_a_round_one_recommendation(login, second_round):
    case, _first, second_panel = second_round
    assignment = assignment_of(case, second_panel[0])

    response = login(second_panel[0]).post(
        f"/review/{assignment.id}", data=complete_review(Decision.passed_after_revision)
    )

    assert any("請選擇建議審查結果" in flash for flash in flashes(response))
    assert stored(assignment).submitted_at is None


def test_round_one_reviewer_cannot_fetch_round_two_files(login, second_round):
    case, first_panel, _second = second_round
    old = next(a for a in case.assignments if a.reviewer_id == first_panel[0].id)
    revised = next(d for d in effective_documents(case, 2).values() if d.round == 2)
    client = login(first_panel[0])

    assert client.get(f"/review/{old.id}").status_code == 200
    assert client.get(f"/review/{old.id}/document/{revised.id}").status_code == 404


def test_a_post_without_csrf_token_is_refused(app, login, case, panel):
    assignment = assignment_of(case, panel[0])
    client = login(panel[0])
    app.config["WTF_CSRF_ENABLED"] = True

    response = client.post(f"/review/{assignment.id}", data=complete_review())

    assert response.status_code == 400
    assert stored(assignment).submitted_at is None
