"""The back office's 寄件紀錄, the case page's 通知與郵件, and 通知範本預覽."""

import pytest
import sqlalchemy as sa

from admin_app.extensions import db
from admin_app.i18n import now_utc
from models import AuditEvent, CaseState, MailState, Notification, OutgoingMail, ReviewAssignment
from views.admin.mail import KIND_LABELS, message_kinds

from .factories import case_in, counted_statements


def _mail(case, subject, state, attempts=0, last_error=""):
    """An outgoing mail of `case` in `state`, committed."""
    mail = OutgoingMail(
        case_id=case.id,
        kind="failed",
        recipient=case.applicant.email or "someone@example.edu.tw",
        subject=subject,
        body=f"{subject}的內文",
        state=state,
        attempts=attempts,
        last_error=last_error,
        sent_at=now_utc() if state is MailState.sent else None,
    )
    db.session.add(mail)
    db.session.commit()
    return mail


def _count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.fixture
def mail_case(cycle, staff):
    return case_in(CaseState.awaiting_verdict, cycle, staff)


def test_mail_list_shows_mails_to_staff_only(login, staff, teacher, reviewer, mail_case):
    _mail(mail_case, "退信測試主旨", MailState.failed, attempts=5, last_error="550 查無此信箱")

    page = login(staff).get("/admin/mail/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "退信測試主旨" in text
    assert "寄送失敗" in text
    assert "550 查無此信箱" in text
    assert f"#{mail_case.id}" in text
    assert "重新寄送" in text

    for outsider in (teacher, reviewer):
        assert login(outsider).get("/admin/mail/").status_code == 403
    assert login(staff).get("/admin/mail/new/").status_code == 403


def test_mail_list_filters_by_state_and_case(login, staff, mail_case, cycle):
    _mail(mail_case, "失敗的那一封", MailState.failed, attempts=5)
    _mail(mail_case, "已寄出的那一封", MailState.sent, attempts=1)
    client = login(staff)

    failed_only = client.get("/admin/mail/?flt0_0=failed").get_data(as_text=True)
    assert "失敗的那一封" in failed_only
    assert "已寄出的那一封" not in failed_only

    other = case_in(CaseState.awaiting_verdict, cycle, staff)
    _mail(other, "別案的郵件", MailState.pending)
    this_case = client.get(f"/admin/mail/?flt0_1={mail_case.id}").get_data(as_text=True)
    assert "失敗的那一封" in this_case
    assert "別案的郵件" not in this_case


def test_mail_details_show_the_body(login, staff, mail_case):
    mail = _mail(mail_case, "看內文", MailState.sent, attempts=1)
    text = login(staff).get(f"/admin/mail/details/?id={mail.id}").get_data(as_text=True)
    assert "看內文的內文" in text
    assert 'name="id"' not in text  # a sent mail has no resend button


def test_resend_action_requeues_failed_mail_only_and_audits_it(login, staff, mail_case):
    failed = _mail(mail_case, "失敗", MailState.failed, attempts=5, last_error="逾時")
    sent = _mail(mail_case, "已寄出", MailState.sent, attempts=1)
    failed_id, sent_id = failed.id, sent.id
    client = login(staff)
    events_before = _count(AuditEvent)

    response = client.post(
        "/admin/mail/action/",
        data={"action": "resend", "rowid": [str(failed_id), str(sent_id)]},
        follow_redirects=True,
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "已將 1 封郵件重新排入寄送佇列" in text
    assert "1 封不是寄送失敗的郵件" in text

    db.session.expire_all()
    failed, sent = db.session.get(OutgoingMail, failed_id), db.session.get(OutgoingMail, sent_id)
    assert failed.state is MailState.pending
    assert failed.attempts == 0
    assert sent.state is MailState.sent
    assert sent.attempts == 1
    events = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "resend_mail")
    ).all()
    assert len(events) == 1
    assert f"#{failed_id}" in events[0].comment
    assert f"#{sent_id}" not in events[0].comment
    assert _count(AuditEvent) == events_before + 1


def test_resend_button_on_a_failed_mail(login, staff, mail_case):
    failed = _mail(mail_case, "單封失敗", MailState.failed, attempts=5)
    failed_id = failed.id
    client = login(staff)
    assert 'name="id"' in client.get(f"/admin/mail/details/?id={failed_id}").get_data(as_text=True)

    response = client.post("/admin/mail/resend/", data={"id": failed_id}, follow_redirects=True)
    assert "已將 1 封郵件重新排入寄送佇列" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(OutgoingMail, failed_id).state is MailState.pending


def test_case_page_shows_the_case_messages_and_mails(login, staff, mail_case):
    _mail(mail_case, "案件頁上的郵件", MailState.failed, attempts=5, last_error="拒收")
    notifications = db.session.scalars(
        sa.select(Notification).where(Notification.case_id == mail_case.id)
    ).all()
    assert notifications, "a case in awaiting_verdict has been told something"

    text = login(staff).get(f"/admin/case/details/?id={mail_case.id}").get_data(as_text=True)
    assert "通知與郵件" in text
    assert "案件頁上的郵件" in text
    assert "拒收" in text
    for notification in notifications:
        assert notification.subject in text
    assert "未讀" in text
    assert f"flt0_1={mail_case.id}" in text


def test_preview_renders_every_kind_and_writes_nothing(login, staff, mail_case):
    client = login(staff)
    kinds = message_kinds()
    assert set(KIND_LABELS) <= set(kinds)
    counts = [_count(model) for model in (Notification, OutgoingMail, AuditEvent)]

    for kind in kinds:
        response = client.get(f"/admin/notify-preview/?kind={kind}&case_id={mail_case.id}")
        text = response.get_data(as_text=True)
        assert response.status_code == 200, kind
        assert "preview-error" not in text, (kind, text[-2000:])
        assert "preview-subject" in text, kind
        assert mail_case.cycle.name in text, kind

    assert [_count(model) for model in (Notification, OutgoingMail, AuditEvent)] == counts


def test_preview_says_what_the_case_does_not_have_yet(login, staff, mail_case):
    text = (
        login(staff)
        .get(f"/admin/notify-preview/?kind=certified&case_id={mail_case.id}")
        .get_data(as_text=True)
    )
    assert "preview-subject" in text
    assert "尚未核發證號" in text


def test_preview_of_a_reviewer_kind_without_assignment(login, staff, cycle):
    case = case_in(CaseState.formal_review, cycle, staff)
    text = (
        login(staff)
        .get(f"/admin/notify-preview/?kind=reviewer_assigned&case_id={case.id}")
        .get_data(as_text=True)
    )
    assert "尚未指派審查委員" in text


@pytest.mark.parametrize("case_id", ["999999", "abc"])
def test_preview_with_a_bad_case_number(login, staff, case_id):
    text = (
        login(staff)
        .get(f"/admin/notify-preview/?kind=submitted&case_id={case_id}")
        .get_data(as_text=True)
    )
    assert ("找不到案號" in text) or ("請輸入案號" in text)
    assert "preview-subject" not in text


def test_preview_is_staff_only(login, teacher):
    assert login(teacher).get("/admin/notify-preview/").status_code == 403


def test_case_page_and_mail_list_statements_do_not_grow_with_mails(login, staff, mail_case):
    client = login(staff)
    reviewer_id = db.session.scalar(
        sa.select(ReviewAssignment.reviewer_id).where(ReviewAssignment.case_id == mail_case.id)
    )

    def statements(url):
        db.session.expire_all()
        with counted_statements() as seen:
            assert client.get(url).status_code == 200
        return len(seen)

    urls = [f"/admin/case/details/?id={mail_case.id}", "/admin/mail/"]
    few = [statements(url) for url in urls]
    for number in range(20):
        _mail(mail_case, f"第 {number} 封", MailState.failed, attempts=5, last_error="拒收")
        db.session.add(
            Notification(
                user_id=reviewer_id if number % 2 else mail_case.applicant_id,
                case_id=mail_case.id,
                kind="reviewer_reminder" if number % 2 else "failed",
                subject=f"通知 {number}",
                body="內文",
            )
        )
    db.session.commit()
    assert [statements(url) for url in urls] == few
