"""The review workflow in the back office, through HTTP: every step, its refusals, its access."""

import html
import re

import pytest
import sqlalchemy as sa

from admin_app.extensions import db
from models import (
    AuditEvent,
    Case,
    CaseState,
    Cycle,
    Decision,
    ReviewAssignment,
    Verdict,
    workflow,
)

from .conftest import PASSWORD
from .factories import case_in, new_applicant, pdf_upload, reviewers
from .pages import admin_flashes as flashes
from .pages import text as page

S = CaseState


@pytest.fixture
def login(login):
    """Sign in through the real form, then open the front page so its messages are read."""

    def do_login(user):
        client = login(user)
        client.get("/admin/")
        return client

    return do_login


def state_of(case):
    db.session.expire_all()
    return db.session.get(Case, case.id).state


def events_count():
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))


def assignments_of(case):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(ReviewAssignment).where(ReviewAssignment.case_id == case.id)
    ).all()


def details(case):
    return f"/admin/case/details/?id={case.id}"


def fresh(case):
    """The case as it is in the database now, for a form's version field."""
    db.session.expire_all()
    return db.session.get(Case, case.id)


def step(client, case, path, **data):
    """Post a case-page form as the page would, with the case's current version."""
    form = {"version": fresh(case).version, **data}
    return client.post(f"/admin/case/{case.id}/{path}/", data=form, follow_redirects=True)


def list_action(client, name, cases):
    return client.post(
        "/admin/case/action/",
        data={"action": name, "rowid": [case.id for case in cases], "url": "/admin/case/"},
    )


# --- 形式審查 ---------------------------------------------------------------------------------


def test_bulk_formal_review_confirms_then_passes(login, staff, cycle):
    waiting = [case_in(S.formal_review, cycle, staff) for _ in range(3)]
    moved_on = case_in(S.awaiting_assignment, cycle, staff)
    client = login(staff)

    confirm = list_action(client, "pass_formal_review", [*waiting, moved_on])

    assert confirm.status_code == 200
    text = page(confirm)
    assert '<strong class="case-count">4</strong>' in text and "確定" in text and "取消" in text
    for case in [*waiting, moved_on]:
        assert f"#{case.id}" in text and case.applicant.name in text
        assert case.school.name in text
    assert "形式審查" in text and "初審分發委員" in text
    assert {state_of(case) for case in waiting} == {S.formal_review}

    done = client.post(
        "/admin/case/formal-review/",
        data={"ids": [case.id for case in [*waiting, moved_on]], "url": "/admin/case/"},
        follow_redirects=True,
    )

    assert done.status_code == 200
    [message] = flashes(done)
    assert message.startswith("3 件已通過形式審查；1 件未處理：")
    assert f"#{moved_on.id} 此案件目前為「初審分發委員」" in message
    assert {state_of(case) for case in waiting} == {S.awaiting_assignment}


def test_bulk_formal_review_offers_nothing_to_confirm_when_no_case_is_waiting(login, staff, cycle):
    returned = case_in(S.returned, cycle, staff)
    moved_on = case_in(S.awaiting_assignment, cycle, staff)
    client = login(staff)

    text = page(list_action(client, "pass_formal_review", [returned, moved_on]))

    assert "勾選的案件都不在形式審查階段" in text
    assert f"#{returned.id}" in text and f"#{moved_on.id}" in text
    assert "確定</button>" not in text and "/admin/case/formal-review/" not in text
    assert state_of(returned) is S.returned and state_of(moved_on) is S.awaiting_assignment


def test_case_page_offers_formal_review_only_when_it_applies(login, staff, cycle):
    waiting = case_in(S.formal_review, cycle, staff)
    returned = case_in(S.returned, cycle, staff)
    client = login(staff)

    assert "退件（形式審查）" in page(client.get(details(waiting)))
    assert "退件（形式審查）" not in page(client.get(details(returned)))


def test_return_needs_a_comment(login, staff, cycle):
    case = case_in(S.formal_review, cycle, staff)
    client = login(staff)
    before = events_count()

    refused = step(client, case, "return", comment="   ")

    assert flashes(refused) == ["「形式審查退件」必須填寫意見。"]
    assert state_of(case) is S.formal_review and events_count() == before

    done = step(client, case, "return", comment="檢核表未核章，請補正。")

    assert flashes(done) == [f"案件 #{case.id} 已退件，申請人會收到形式審查意見。"]
    assert state_of(case) is S.returned
    event = db.session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.case_id == case.id, AuditEvent.action == "return_for_correction"
        )
    )
    assert event.comment == "檢核表未核章，請補正。" and event.actor_id == staff.id


# --- 分發委員 ---------------------------------------------------------------------------------


@pytest.fixture
def panel(app):
    """Three reviewers, the only active ones."""
    made = reviewers(3)
    db.session.commit()
    return made


def test_picker_lists_reviewers_with_loads_and_conflicts(login, staff, cycle, panel):
    colleague = panel[2]
    case = case_in(
        S.awaiting_assignment,
        cycle,
        staff,
        panel=panel,
        applicant=new_applicant(cycle, colleague.school),
    )
    busy = case_in(S.under_review, cycle, staff, panel=panel[:2])
    assert busy.state is S.under_review

    text = page(login(staff).get(details(case)))

    assert "請勾選 <strong>2</strong> 位審查委員" in text
    assert "括號內" not in text and "「未完成件數」為委員目前尚未送出的審查件數" in text
    rows = re.findall(r'<tr class="([^"]*)">\s*<td><input type="checkbox"(.*?)</tr>', text, re.S)
    assert len(rows) == 3
    by_name = {
        name: (row_class, body)
        for row_class, body in rows
        for name in [reviewer.name for reviewer in panel]
        if f">{name}</label>" in body
    }
    assert "disabled" in by_name[colleague.name][1] and "conflicted" in by_name[colleague.name][0]
    assert "與申請人同校，須迴避" in by_name[colleague.name][1]
    for reviewer in panel[:2]:
        row_class, body = by_name[reviewer.name]
        assert "disabled" not in body and '<td class="text-right">1</td>' in body


def test_manual_assignment_refuses_wrong_count_and_conflicts(login, staff, cycle, panel):
    colleague = panel[2]
    case = case_in(
        S.awaiting_assignment, cycle, staff, applicant=new_applicant(cycle, colleague.school)
    )
    client = login(staff)
    before = events_count()

    too_few = step(client, case, "assign", reviewer_id=[panel[0].id])
    # a crafted form: the conflicted reviewer's box is disabled on the page
    conflicted = step(client, case, "assign", reviewer_id=[panel[0].id, colleague.id])
    repeated = step(client, case, "assign", reviewer_id=[panel[0].id, panel[0].id])
    unknown = step(client, case, "assign", reviewer_id=[panel[0].id, "99999"])

    assert flashes(too_few) == ["每案須分發 2 位審查委員，目前選了 1 位。"]
    assert flashes(conflicted) == [f"「{colleague.name}」與申請人同校，須迴避。"]
    assert flashes(repeated) == ["同一位審查委員不可重複分發。"]
    assert flashes(unknown) == ["找不到所選的審查委員，請重新整理頁面後再選。"]
    assert state_of(case) is S.awaiting_assignment
    assert assignments_of(case) == [] and events_count() == before

    done = step(client, case, "assign", reviewer_id=[panel[0].id, panel[1].id])

    assert flashes(done) == [f"案件 #{case.id} 已分發 2 位審查委員。"]
    assert state_of(case) is S.under_review
    assert {a.reviewer_id for a in assignments_of(case)} == {panel[0].id, panel[1].id}
    text = page(done)
    assert "審查紀錄" in text and "尚未送出" in text and panel[0].name in text


def test_auto_assign_previews_then_applies_balanced(login, staff, cycle, panel):
    ready = [case_in(S.awaiting_assignment, cycle, staff, panel=panel) for _ in range(3)]
    # two of the three reviewers share the applicant's school: no pair can be found
    panel[1].school = panel[0].school
    db.session.commit()
    stuck = case_in(
        S.awaiting_assignment,
        cycle,
        staff,
        panel=panel,
        applicant=new_applicant(cycle, panel[0].school),
    )
    not_ready = case_in(S.formal_review, cycle, staff, panel=panel)
    client = login(staff)
    chosen = [*ready, stuck, not_ready]

    preview = list_action(client, "auto_assign", chosen)

    text = page(preview)
    assert preview.status_code == 200
    assert '<strong class="case-count">3</strong>' in text
    assert len(re.findall(r'<tr class="planned-case">', text)) == 3
    for reviewer in panel:
        assert f"{reviewer.name}（0）" in text
    assert "無法分發的案件" in text and f"#{stuck.id}" in text
    assert "不處理的案件" in text and f"#{not_ready.id}" in text
    assert assignments_of(ready[0]) == []

    signature = re.search(r'name="signature" value="([^"]+)"', text).group(1)
    done = client.post(
        "/admin/case/auto-assign/",
        data={"ids": [case.id for case in chosen], "signature": signature, "url": "/admin/case/"},
        follow_redirects=True,
    )

    [message] = flashes(done)
    assert message.startswith("3 件已分發審查委員；2 件未處理：")
    assert {state_of(case) for case in ready} == {S.under_review}
    assert state_of(stuck) is S.awaiting_assignment and state_of(not_ready) is S.formal_review
    assert workflow.open_loads() == {reviewer.id: 2 for reviewer in panel}


def test_auto_assign_reshows_a_plan_that_changed(login, staff, cycle, panel):
    case = case_in(S.awaiting_assignment, cycle, staff, panel=panel)
    client = login(staff)
    preview = page(list_action(client, "auto_assign", [case]))
    signature = re.search(r'name="signature" value="([^"]+)"', preview).group(1)
    # meanwhile a reviewer with no load joins and sorts first by name
    newcomer = reviewers(1)[0]
    newcomer.name = "委員-新"
    db.session.commit()

    again = client.post("/admin/case/auto-assign/", data={"ids": [case.id], "signature": signature})

    assert again.status_code == 200
    assert "分發計畫在您確認前已因其他處理" in page(again) and "委員-新" in page(again)
    assert state_of(case) is S.awaiting_assignment and assignments_of(case) == []


# --- 判定 -------------------------------------------------------------------------------------


VERDICTS = [
    (1, Decision.passed, False, S.passed),
    (1, Decision.passed_after_revision, True, S.passed),
    (1, Decision.revise_and_review, True, S.revision_requested),
    (1, Decision.failed, True, S.failed),
    (2, Decision.passed, False, S.passed),
    (2, Decision.failed, True, S.failed),
]


@pytest.mark.parametrize(("round_", "decision", "needs_comment", "target"), VERDICTS)
def test_verdict_per_decision(login, staff, cycle, round_, decision, needs_comment, target):
    case = case_in(S.awaiting_verdict, cycle, staff, round_=round_)
    client = login(staff)

    text = page(client.get(details(case)))
    assert "reviews-side-by-side" in text and "整體表現良好。" in text and "符合" in text
    for assignment in case.assignments:
        if assignment.round == round_:
            assert assignment.reviewer.name in text
    offered = re.findall(r'name="decision" id="verdict-(\w+)"', text)
    assert offered == [option.value for option in workflow.ROUND_DECISIONS[round_]]

    if needs_comment:
        refused = step(client, case, "verdict", decision=decision.value, comment="")
        assert flashes(refused) == [f"「判定{decision.label}」必須填寫意見。"]
        assert state_of(case) is S.awaiting_verdict

    done = step(client, case, "verdict", decision=decision.value, comment="依委員意見判定。")

    assert flashes(done) == [f"案件 #{case.id} 已判定「{decision.label}」。"]
    assert state_of(case) is target
    verdicts = db.session.scalars(sa.select(Verdict).where(Verdict.case_id == case.id)).all()
    assert [(v.round, v.decision) for v in verdicts][-1] == (round_, decision)


def test_second_round_cannot_be_judged_revise_and_review(login, staff, cycle):
    case = case_in(S.awaiting_verdict, cycle, staff, round_=2)

    response = step(login(staff), case, "verdict", decision="revise_and_review", comment="再修正")

    assert flashes(response) == ["第 2 輪審查不能判定「修正後複審」。"]
    assert state_of(case) is S.awaiting_verdict


def test_verdict_without_a_decision_is_refused(login, staff, cycle):
    case = case_in(S.awaiting_verdict, cycle, staff)

    response = step(login(staff), case, "verdict", decision="maybe", comment="")

    assert flashes(response) == ["請選擇判定結果。"]
    assert state_of(case) is S.awaiting_verdict


def test_bulk_verdict_form_confirmation_then_apply(login, staff, cycle):
    judged = [case_in(S.awaiting_verdict, cycle, staff) for _ in range(3)]
    early = case_in(S.formal_review, cycle, staff)
    chosen = [*judged, early]
    ids = [case.id for case in chosen]
    client = login(staff)

    form = list_action(client, "bulk_verdict", chosen)
    assert '<strong class="case-count">4</strong>' in page(form)
    assert 'name="decision"' in page(form) and "修正後複審" in page(form)

    missing = client.post(
        "/admin/case/bulk-verdict/confirm/", data={"ids": ids, "decision": "failed", "comment": ""}
    )
    assert "判定「未通過」必須填寫意見。" in page(missing)
    assert 'action="/admin/case/bulk-verdict/confirm/"' in page(missing)

    confirm = client.post(
        "/admin/case/bulk-verdict/confirm/",
        data={"ids": ids, "decision": "failed", "comment": "紀錄不完整。"},
    )
    text = page(confirm)
    assert '<strong class="case-count">3</strong>' in text and "未通過" in text
    assert text.count("將判定") == 3 and text.count("不處理（目前狀態不適用）") == 1
    assert "紀錄不完整。" in text
    assert {state_of(case) for case in judged} == {S.awaiting_verdict}

    done = client.post(
        "/admin/case/bulk-verdict/",
        data={"ids": ids, "decision": "failed", "comment": "紀錄不完整。", "url": "/admin/case/"},
        follow_redirects=True,
    )

    [message] = flashes(done)
    assert message.startswith("3 件已判定「未通過」；1 件未處理：")
    assert f"#{early.id} 此案件目前為「形式審查」" in message
    assert {state_of(case) for case in judged} == {S.failed}
    assert state_of(early) is S.formal_review


def test_undo_verdict_needs_a_reason_and_stays_on_record(login, staff, cycle):
    case = case_in(S.passed, cycle, staff)
    client = login(staff)
    assert "撤銷判定" in page(client.get(details(case)))

    refused = step(client, case, "undo-verdict", reason="")
    assert flashes(refused) == ["「撤銷判定」必須填寫意見。"]
    assert state_of(case) is S.passed

    done = step(client, case, "undo-verdict", reason="誤點通過，應為修正後通過。")

    assert flashes(done) == [f"案件 #{case.id} 的判定已撤銷，案件回到判定階段。"]
    assert state_of(case) is S.awaiting_verdict
    verdict = db.session.scalar(sa.select(Verdict).where(Verdict.case_id == case.id))
    assert verdict.undone_by_id == staff.id and verdict.undo_reason == "誤點通過，應為修正後通過。"
    text = page(done)
    assert f"已撤銷（{staff.name}，" in text and "誤點通過，應為修正後通過。" in text
    # the case is back in 判定: the verdict form is offered again, undo no longer
    assert 'id="verdict"' in text and 'id="undo-verdict"' not in text


def test_undo_is_not_offered_once_something_followed(login, staff, cycle):
    case = case_in(S.appeal_filed, cycle, staff)
    client = login(staff)

    assert 'id="undo-verdict"' not in page(client.get(details(case)))
    response = step(client, case, "undo-verdict", reason="太晚了")

    assert flashes(response) == ["此案件的判定之後已有其他處理，無法撤銷。"]
    assert state_of(case) is S.appeal_filed


def test_case_page_shows_every_round(login, staff, cycle):
    case = case_in(S.awaiting_verdict, cycle, staff, round_=2)

    text = page(login(staff).get(details(case)))

    assert 'id="round-1"' in text and 'id="round-2"' in text
    assert "修正後複審" in text and "請依委員意見修正觀察紀錄。" in text
    assert text.count("分發時間") == 2 and "審查期限" in text
    assignments = assignments_of(case)
    assert len(assignments) == 4
    for assignment in assignments:
        assert assignment.reviewer.name in text


# --- 申復 -------------------------------------------------------------------------------------


def test_appeal_page_shows_reason_and_attachment(login, staff, cycle):
    case = case_in(S.failed, cycle, staff)
    workflow.file_appeal(
        case, case.applicant, "觀察紀錄已依規定填寫。", pdf_upload("申復理由書.pdf")
    )
    db.session.commit()
    client = login(staff)

    text = page(client.get(details(case)))

    assert "觀察紀錄已依規定填寫。" in text and "申復理由書.pdf" in text
    assert "受理" in text and "未受理" in text
    url = re.search(r'申復理由書\.pdf\s*<a href="([^"]+)">下載</a>', text).group(1)
    download = client.get(url)
    assert download.status_code == 200 and download.mimetype == "application/pdf"


def test_appeal_accepted_then_upheld(login, staff, cycle):
    case = case_in(S.appeal_filed, cycle, staff)
    client = login(staff)

    accepted = step(client, case, "appeal/accept", comment="")
    assert flashes(accepted) == [f"案件 #{case.id} 申復已受理，進入申復審查。"]
    assert state_of(case) is S.appeal_review
    assert "申復成立" in page(accepted) and "申復不成立" in page(accepted)

    upheld = step(client, case, "appeal/uphold", comment="")
    assert flashes(upheld) == [f"案件 #{case.id} 申復成立，改為通過可產證。"]
    assert state_of(case) is S.passed


def test_appeal_not_accepted_needs_a_comment(login, staff, cycle):
    case = case_in(S.appeal_filed, cycle, staff)
    client = login(staff)

    refused = step(client, case, "appeal/reject", comment="")
    assert flashes(refused) == ["「申復未受理」必須填寫意見。"]
    assert state_of(case) is S.appeal_filed

    done = step(client, case, "appeal/reject", comment="逾越申復範圍。")
    assert flashes(done) == [f"案件 #{case.id} 申復未受理，已結案為未通過。"]
    assert state_of(case) is S.closed


def test_appeal_dismissed_needs_a_comment(login, staff, cycle):
    case = case_in(S.appeal_review, cycle, staff)
    client = login(staff)

    refused = step(client, case, "appeal/dismiss", comment="")
    assert flashes(refused) == ["「申復不成立」必須填寫意見。"]
    assert state_of(case) is S.appeal_review

    done = step(client, case, "appeal/dismiss", comment="委員維持原判定。")
    assert flashes(done) == [f"案件 #{case.id} 申復不成立，已結案為未通過。"]
    assert state_of(case) is S.closed


def test_unknown_appeal_step_is_404(login, staff, cycle):
    case = case_in(S.appeal_filed, cycle, staff)

    response = login(staff).post(f"/admin/case/{case.id}/appeal/delete/", data={"version": 1})

    assert response.status_code == 404 and state_of(case) is S.appeal_filed


# --- 發證與公告 -------------------------------------------------------------------------------


def test_issue_then_announce_certificates(login, staff, cycle):
    passed = [case_in(S.passed, cycle, staff) for _ in range(2)]
    client = login(staff)
    first, last = cycle.format_certificate_number(1), cycle.format_certificate_number(2)

    overview = page(client.get(f"/admin/certificates/{cycle.id}/"))
    assert '<td class="text-right" id="count-passed">2</td>' in overview
    assert '<td class="text-right" id="count-certified">0</td>' in overview
    assert "此梯次尚未核發證號" in overview

    confirm = page(client.get(f"/admin/certificates/{cycle.id}/issue/"))
    assert '<strong class="case-count">2</strong>' in confirm
    assert f'<strong class="first-number">{first}</strong>' in confirm
    assert f'<strong class="last-number">{last}</strong>' in confirm
    assert {state_of(case) for case in passed} == {S.passed}

    issued = client.post(
        f"/admin/certificates/{cycle.id}/issue/",
        data={"count": "2", "first": "1"},
        follow_redirects=True,
    )

    assert flashes(issued) == [f"已核發 2 張證書，證號 {first} 至 {last}。"]
    assert {state_of(case) for case in passed} == {S.certified}
    assert sorted(fresh(case).certificate_number for case in passed) == sorted([first, last])
    text = page(issued)
    assert '<td class="text-right" id="count-certified">2</td>' in text
    assert f"<td>{first}</td>" in text and f"<td>{last}</td>" in text

    announce = page(client.get(f"/admin/certificates/{cycle.id}/announce/"))
    assert '<strong class="case-count">2</strong>' in announce and first in announce

    announced = client.post(
        f"/admin/certificates/{cycle.id}/announce/", data={"count": "2"}, follow_redirects=True
    )

    assert flashes(announced) == ["已公告 2 張證書。"]
    assert {state_of(case) for case in passed} == {S.announced}


def test_issuing_twice_gives_no_new_numbers(login, staff, cycle):
    case = case_in(S.passed, cycle, staff)
    client = login(staff)
    url = f"/admin/certificates/{cycle.id}/issue/"

    client.post(url, data={"count": "1", "first": "1"}, follow_redirects=True)
    again = client.post(url, data={"count": "1", "first": "1"}, follow_redirects=True)

    assert flashes(again) == ["目前沒有「通過可產證」的案件，未核發任何證號。"]
    assert fresh(case).certificate_seq == 1
    assert db.session.get(Cycle, cycle.id).certificate_counter == 1


def test_issuing_refuses_a_list_that_changed_after_confirmation(login, staff, cycle):
    shown = case_in(S.passed, cycle, staff)
    client = login(staff)
    assert '<strong class="case-count">1</strong>' in page(
        client.get(f"/admin/certificates/{cycle.id}/issue/")
    )
    late = case_in(S.passed, cycle, staff)

    response = client.post(
        f"/admin/certificates/{cycle.id}/issue/",
        data={"count": "1", "first": "1"},
        follow_redirects=True,
    )

    assert flashes(response) == [
        "可發證的案件或證號在您確認後已有變動，未核發任何證號。請再確認一次。"
    ]
    assert state_of(shown) is S.passed and state_of(late) is S.passed
    assert db.session.get(Cycle, cycle.id).certificate_counter == 0
    assert '<strong class="case-count">2</strong>' in page(response)


def test_announcing_with_nothing_certified_changes_nothing(login, staff, cycle):
    case = case_in(S.passed, cycle, staff)

    response = login(staff).post(
        f"/admin/certificates/{cycle.id}/announce/", data={"count": "1"}, follow_redirects=True
    )

    assert flashes(response) == ["目前沒有「已發證」待公告的案件，未公告任何證號。"]
    assert state_of(case) is S.passed


def test_certificate_overview_lists_cycles(login, staff, cycle):
    case_in(S.certified, cycle, staff)

    text = page(login(staff).get("/admin/certificates/"))

    assert cycle.name in text and "目前梯次" in text and "通過可產證" in text


def test_cycle_certificate_page_shows_an_example_number_not_the_format(login, staff, cycle):
    text = page(login(staff).get(f"/admin/certificates/{cycle.id}/"))

    assert "{year}" not in text and "{seq" not in text
    assert "下一張證號：進階回饋字第11500001號" in text


# --- stale pages ------------------------------------------------------------------------------


def test_second_return_from_the_same_page_is_refused(login, staff, cycle):
    case = case_in(S.formal_review, cycle, staff)
    client = login(staff)
    version = fresh(case).version
    form = {"version": version, "comment": "請補正。"}

    client.post(f"/admin/case/{case.id}/return/", data=form, follow_redirects=True)
    before = events_count()
    again = client.post(f"/admin/case/{case.id}/return/", data=form, follow_redirects=True)

    [message] = flashes(again)
    assert "已有變動（目前為「形式審查退件」）" in message and "未做任何處理" in message
    assert state_of(case) is S.returned and events_count() == before


def test_page_opened_before_a_round_trip_is_refused(login, staff, cycle):
    """The case left 形式審查 and came back; a form from the old page must not act on it."""
    case = case_in(S.formal_review, cycle, staff)
    client = login(staff)
    old_version = fresh(case).version
    workflow.return_for_correction(fresh(case), staff, "請補正。")
    db.session.commit()
    from models.application import submit_application

    submit_application(fresh(case), fresh(case).applicant)
    db.session.commit()
    assert state_of(case) is S.formal_review

    response = client.post(
        f"/admin/case/{case.id}/return/",
        data={"version": old_version, "comment": "舊頁面的意見"},
        follow_redirects=True,
    )

    assert "已有變動" in flashes(response)[0]
    assert state_of(case) is S.formal_review


def test_second_bulk_pass_reports_the_refusal(login, staff, cycle):
    case = case_in(S.formal_review, cycle, staff)
    client = login(staff)
    data = {"ids": [case.id], "url": "/admin/case/"}

    client.post("/admin/case/formal-review/", data=data, follow_redirects=True)
    before = events_count()
    again = client.post("/admin/case/formal-review/", data=data, follow_redirects=True)

    assert flashes(again) == [
        f"0 件已通過形式審查；1 件未處理：#{case.id} 此案件目前為「初審分發委員」，"
        "無法執行「形式審查通過」。請重新整理頁面。"
    ]
    assert state_of(case) is S.awaiting_assignment and events_count() == before


def test_second_verdict_is_refused(login, staff, cycle):
    case = case_in(S.awaiting_verdict, cycle, staff)
    client = login(staff)
    form = {"version": fresh(case).version, "decision": "passed", "comment": ""}

    client.post(f"/admin/case/{case.id}/verdict/", data=form, follow_redirects=True)
    again = client.post(f"/admin/case/{case.id}/verdict/", data=form, follow_redirects=True)

    assert "已有變動（目前為「通過可產證」）" in flashes(again)[0]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Verdict)) == 1


# --- access -----------------------------------------------------------------------------------


@pytest.fixture
def every_state(cycle, staff):
    """A case in each state a back-office step starts from."""
    states = (
        S.formal_review,
        S.awaiting_assignment,
        S.awaiting_verdict,
        S.failed,
        S.appeal_filed,
        S.appeal_review,
        S.passed,
    )
    cases = {state: case_in(state, cycle, staff) for state in states}
    return cases


def action_posts(cases, cycle, panel):
    """Every workflow URL with a form that would change something if it were accepted."""
    ids = [case.id for case in cases.values()]

    def case_form(state, **data):
        case = cases[state]
        return {"version": case.version, **data}

    return [
        ("/admin/case/action/", {"action": "pass_formal_review", "rowid": ids}),
        ("/admin/case/action/", {"action": "auto_assign", "rowid": ids}),
        ("/admin/case/action/", {"action": "bulk_verdict", "rowid": ids}),
        ("/admin/case/formal-review/", {"ids": ids}),
        (
            f"/admin/case/{cases[S.formal_review].id}/return/",
            case_form(S.formal_review, comment="退件"),
        ),
        (
            f"/admin/case/{cases[S.awaiting_assignment].id}/assign/",
            case_form(S.awaiting_assignment, reviewer_id=[r.id for r in panel[:2]]),
        ),
        ("/admin/case/auto-assign/", {"ids": ids, "signature": ""}),
        (
            f"/admin/case/{cases[S.awaiting_verdict].id}/verdict/",
            case_form(S.awaiting_verdict, decision="passed"),
        ),
        ("/admin/case/bulk-verdict/confirm/", {"ids": ids, "decision": "passed"}),
        ("/admin/case/bulk-verdict/", {"ids": ids, "decision": "passed"}),
        (
            f"/admin/case/{cases[S.failed].id}/undo-verdict/",
            case_form(S.failed, reason="撤銷"),
        ),
        (f"/admin/case/{cases[S.appeal_filed].id}/appeal/accept/", case_form(S.appeal_filed)),
        (
            f"/admin/case/{cases[S.appeal_filed].id}/appeal/reject/",
            case_form(S.appeal_filed, comment="x"),
        ),
        (f"/admin/case/{cases[S.appeal_review].id}/appeal/uphold/", case_form(S.appeal_review)),
        (
            f"/admin/case/{cases[S.appeal_review].id}/appeal/dismiss/",
            case_form(S.appeal_review, comment="x"),
        ),
        (f"/admin/certificates/{cycle.id}/issue/", {"count": "1", "first": "1"}),
        (f"/admin/certificates/{cycle.id}/announce/", {"count": "0"}),
    ]


@pytest.mark.parametrize("role", ["teacher", "reviewer", "county_officer"])
def test_other_roles_cannot_take_any_step(request, login, cycle, every_state, panel, role):
    client = login(request.getfixturevalue(role))
    posts = action_posts(every_state, cycle, panel)
    before = events_count()

    for url, data in posts:
        assert client.post(url, data=data).status_code == 403, url
    for url in (
        f"/admin/certificates/{cycle.id}/",
        f"/admin/certificates/{cycle.id}/issue/",
        "/admin/certificates/",
    ):
        assert client.get(url).status_code == 403, url

    assert events_count() == before
    assert {state: state_of(case) for state, case in every_state.items()} == {
        state: state for state in every_state
    }


def test_anonymous_is_sent_to_login(client, cycle, every_state, panel):
    for url, data in action_posts(every_state, cycle, panel):
        response = client.post(url, data=data)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    assert {state_of(case) for case in every_state.values()} == set(every_state)


# --- the list ---------------------------------------------------------------------------------


def test_case_list_links_each_work_queue(login, staff, cycle):
    waiting = case_in(S.formal_review, cycle, staff)
    assigning = case_in(S.awaiting_assignment, cycle, staff, round_=2)
    client = login(staff)

    text = page(client.get("/admin/case/"))

    links = {
        html.unescape(label).strip(): (html.unescape(url), int(count))
        for url, label, count in re.findall(
            r'<a class="btn btn-sm [^"]*mb-1"\s+href="([^"]+)">([^<]+)'
            r'<span class="badge badge-light">(\d+)</span>',
            text,
        )
    }
    assert links["形式審查"][1] == 1 and links["複審分發委員"][1] == 1
    assert links["初審分發委員"][1] == 0 and links["初審判定"][1] == 0
    assert "申復申請中" in links and "通過可產證" in links and "已發證" in links
    listed = page(client.get(links["形式審查"][0]))
    assert f"/admin/case/details/?id={waiting.id}" in listed
    assert f"/admin/case/details/?id={assigning.id}" not in listed
    # the list now has row checkboxes and the three workflow actions
    for label in ("形式審查通過", "自動分發委員", "批次判定"):
        assert label in text


# --- CSRF -------------------------------------------------------------------------------------


def _token(text):
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', text).group(1)


@pytest.fixture
def csrf_client(app, database, tmp_path):
    """A client of an app with CSRF protection on, sharing the test database."""
    from admin_app import create_app

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


def test_workflow_forms_carry_the_csrf_token(csrf_client, staff, cycle):
    case = case_in(S.formal_review, cycle, staff)
    version = case.version
    client = csrf_client
    login_token = _token(page(client.get("/login")))
    client.post(
        "/login", data={"login": staff.login, "password": PASSWORD, "csrf_token": login_token}
    )

    text = page(client.get(f"/admin/case/details/?id={case.id}"))
    form = re.search(
        r'<form method="post" action="/admin/case/\d+/return/">(.*?)</form>', text, re.S
    )
    assert form and 'name="csrf_token"' in form.group(1)
    without = client.post(
        f"/admin/case/{case.id}/return/", data={"version": version, "comment": "x"}
    )
    assert without.status_code == 400
    assert state_of(case) is S.formal_review

    confirm = page(
        client.post(
            "/admin/case/action/",
            data={"action": "pass_formal_review", "rowid": case.id, "csrf_token": _token(text)},
        )
    )
    assert 'action="/admin/case/formal-review/"' in confirm and 'name="csrf_token"' in confirm
    done = client.post(
        "/admin/case/formal-review/", data={"ids": case.id, "csrf_token": _token(confirm)}
    )
    assert done.status_code == 303
    assert state_of(case) is S.awaiting_assignment


# --- what staff typed survives a refusal ------------------------------------------------------


def textarea(response, element_id):
    """The text inside a textarea of the page, unescaped."""
    match = re.search(
        rf'<textarea[^>]*id="{element_id}"[^>]*>(.*?)</textarea>', page(response), re.S
    )
    assert match, f"no textarea #{element_id} on the page"
    return html.unescape(match.group(1))


def test_verdict_without_a_decision_keeps_the_comment(login, staff, cycle):
    case = case_in(S.awaiting_verdict, cycle, staff)

    response = step(login(staff), case, "verdict", comment="觀察紀錄<須>補充事實。")

    assert flashes(response) == ["請選擇判定結果。"]
    assert textarea(response, "verdict-comment") == "觀察紀錄<須>補充事實。"
    assert state_of(case) is S.awaiting_verdict


def test_verdict_needing_a_comment_keeps_the_chosen_decision(login, staff, cycle):
    case = case_in(S.awaiting_verdict, cycle, staff)

    response = step(login(staff), case, "verdict", decision="failed", comment=" ")

    assert flashes(response) == ["「判定未通過」必須填寫意見。"]
    assert re.search(r'id="verdict-failed"\s+value="failed" required\s+checked', page(response))


def test_stale_return_keeps_the_comment(login, staff, cycle):
    case = case_in(S.formal_review, cycle, staff)
    client = login(staff)
    old_version = fresh(case).version
    workflow.return_for_correction(fresh(case), staff, "請補正。")
    db.session.commit()
    from models.application import submit_application

    submit_application(fresh(case), fresh(case).applicant)
    db.session.commit()

    response = client.post(
        f"/admin/case/{case.id}/return/",
        data={"version": old_version, "comment": "第二頁籤寫的意見"},
        follow_redirects=True,
    )

    assert "已有變動" in flashes(response)[0]
    assert textarea(response, "return-comment") == "第二頁籤寫的意見"


def test_a_form_the_case_no_longer_offers_still_shows_what_was_typed(login, staff, cycle):
    case = case_in(S.formal_review, cycle, staff)
    client = login(staff)
    form = {"version": fresh(case).version, "comment": "第一個頁籤"}
    client.post(f"/admin/case/{case.id}/return/", data=form, follow_redirects=True)

    again = client.post(
        f"/admin/case/{case.id}/return/", data={**form, "comment": "第二個頁籤的意見"}
    )

    assert "已有變動（目前為「形式審查退件」）" in flashes(again)[0]
    assert 'id="return-comment"' not in page(again)
    assert "第二個頁籤的意見" in page(again) and "未送出的內容" in page(again)


@pytest.mark.parametrize(
    ("state", "path", "field", "element"),
    [
        (S.passed, "undo-verdict", "reason", "undo-reason"),
        (S.appeal_filed, "appeal/reject", "comment", "appeal-admit-comment"),
        (S.appeal_review, "appeal/dismiss", "comment", "appeal-result-comment"),
    ],
)
def test_other_refused_steps_keep_the_text(login, staff, cycle, state, path, field, element):
    case = case_in(state, cycle, staff)
    client = login(staff)

    response = client.post(
        f"/admin/case/{case.id}/{path}/",
        data={"version": fresh(case).version - 1, field: "我寫的理由"},
        follow_redirects=True,
    )

    assert "已有變動" in flashes(response)[0]
    assert textarea(response, element) == "我寫的理由"
    assert state_of(case) is state


def test_refused_assignment_keeps_the_ticked_reviewers(login, staff, cycle, panel):
    case = case_in(S.awaiting_assignment, cycle, staff)

    response = step(login(staff), case, "assign", reviewer_id=[panel[0].id])

    assert "每案須分發 2 位審查委員，目前選了 1 位。" in flashes(response)
    assert re.search(
        rf'value="{panel[0].id}"\s+id="reviewer-{panel[0].id}"\s+checked', page(response)
    )
    assert not re.search(rf'id="reviewer-{panel[1].id}"\s+checked', page(response))


@pytest.mark.parametrize(
    ("state", "path", "data", "what"),
    [
        (S.formal_review, "return", {}, "退件意見"),
        (S.awaiting_verdict, "verdict", {"decision": "failed"}, "判定意見"),
        (S.passed, "undo-verdict", {}, "撤銷原因"),
        (S.appeal_filed, "appeal/reject", {}, "意見"),
        (S.appeal_review, "appeal/dismiss", {}, "意見"),
    ],
)
def test_staff_comments_have_a_length_limit(login, staff, cycle, state, path, data, what):
    case = case_in(state, cycle, staff)
    field = "reason" if path == "undo-verdict" else "comment"
    client = login(staff)
    before = events_count()

    response = step(client, case, path, **data, **{field: "長" * 5_001})

    assert flashes(response) == [f"{what}最多 5,000 字，目前有 5,001 字，請精簡後再送出。"]
    assert "長" * 5_001 in page(response)
    assert state_of(case) is state and events_count() == before


def test_bulk_verdict_comment_has_the_same_limit(login, staff, cycle):
    case = case_in(S.awaiting_verdict, cycle, staff)
    client = login(staff)

    response = client.post(
        "/admin/case/bulk-verdict/confirm/",
        data={"ids": [case.id], "decision": "failed", "comment": "長" * 5_001},
    )

    assert "判定意見最多 5,000 字，目前有 5,001 字，請精簡後再送出。" in page(response)
    assert state_of(case) is S.awaiting_verdict
