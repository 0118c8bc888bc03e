"""Notifications, on both databases: one portal message and one e-mail per outcome, delivered
through a real SMTP server on loopback, never lost, never sent twice."""

import asyncio
import email
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from email import policy

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from admin_app import mailer
from admin_app.extensions import db
from admin_app.i18n import now_utc, roc_date, to_taipei
from models import (
    ApplicationItem,
    AuditEvent,
    Case,
    CaseState,
    Decision,
    MailState,
    Notification,
    OutgoingMail,
    ReviewAssignment,
    notify,
    workflow,
)
from models.application import submit_application

from .factories import case_in, reviewers

S = CaseState
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- a real SMTP server on loopback ---------------------------------------------------------


class Collector:
    """An aiosmtpd handler that keeps every accepted message and can refuse recipients."""

    def __init__(self):
        self.messages = []
        self.refusals = {}  # address -> SMTP reply
        self.delay = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refusals:
            return self.refusals[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def to(self, address):
        return [message for recipients, message in self.messages if address in recipients]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def point_mail_at(app, port):
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_SUPPRESS_SEND=False)


class LoopbackServer:
    """Start and stop an SMTP server on one loopback port, as often as a test needs."""

    def __init__(self, port):
        self.port = port
        self.collector = Collector()
        self.controller = None

    def start(self):
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self.collector

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def server_port(app):
    """A free loopback port the app's mail settings point at; nothing listens on it yet."""
    port = free_port()
    point_mail_at(app, port)
    return port


@pytest.fixture
def smtp_server(server_port):
    """A running loopback SMTP server collecting what it receives."""
    server = LoopbackServer(server_port)
    yield server.start()
    server.stop()


@pytest.fixture(autouse=True)
def no_delivery_on_commit(app):
    """Tests deliver explicitly; the ones about delivery after commit turn it back on."""
    app.config["SEND_MAIL_AFTER_COMMIT"] = False


# --- helpers --------------------------------------------------------------------------------


def last_ids():
    """The newest notification and mail ids, to find what one action added."""
    return (
        db.session.scalar(sa.select(sa.func.max(Notification.id))) or 0,
        db.session.scalar(sa.select(sa.func.max(OutgoingMail.id))) or 0,
    )


def added_since(ids):
    db.session.expire_all()
    notifications = db.session.scalars(
        sa.select(Notification).where(Notification.id > ids[0]).order_by(Notification.id)
    ).all()
    mails = db.session.scalars(
        sa.select(OutgoingMail).where(OutgoingMail.id > ids[1]).order_by(OutgoingMail.id)
    ).all()
    return notifications, mails


def deliver(**options):
    report = mailer.deliver_pending(**options)
    db.session.expire_all()
    return report


def latest_event(case):
    return db.session.scalar(
        sa.select(AuditEvent)
        .where(AuditEvent.case_id == case.id, AuditEvent.to_state.is_not(None))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def body_of(message):
    """The text of a received message, with the line ends it was written with."""
    return message.get_content().replace("\r\n", "\n")


def cancel_earlier_mail():
    """Take the mails of a factory's earlier steps out of the way."""
    db.session.execute(
        sa.update(OutgoingMail)
        .where(OutgoingMail.state == MailState.pending)
        .values(state=MailState.cancelled)
    )
    db.session.commit()


# --- every outcome: one message and one mail ------------------------------------------------


def _verdict(decision, round_=1):
    """A case awaiting the verdict of `round_`, and the action recording `decision`."""

    def prepare(cycle, staff):
        case = case_in(S.awaiting_verdict, cycle, staff, round_=round_)
        return case, lambda: workflow.record_verdict(case, decision, staff, "請見審查意見。")

    return prepare


def _from(state, action):
    """A case in `state`, and the action `action(case, cycle, staff)`."""

    def prepare(cycle, staff):
        case = case_in(state, cycle, staff)
        return case, lambda: action(case, cycle, staff)

    return prepare


OUTCOMES = {
    "submitted": _from(S.draft, lambda case, _c, _s: submit_application(case, case.applicant)),
    "returned": _from(
        S.formal_review,
        lambda case, cycle, staff: workflow.return_for_correction(case, staff, "核章不清楚。"),
    ),
    "passed": _verdict(Decision.passed),
    "passed_after_revision": _verdict(Decision.passed_after_revision),
    "passed_round_2": _verdict(Decision.passed, round_=2),
    "revision_requested": _verdict(Decision.revise_and_review),
    "failed": _verdict(Decision.failed),
    "failed_round_2": _verdict(Decision.failed, round_=2),
    "appeal_filed": _from(
        S.failed,
        lambda case, cycle, staff: workflow.file_appeal(case, case.applicant, "請重新審查。"),
    ),
    "appeal_accepted": _from(
        S.appeal_filed, lambda case, cycle, staff: workflow.accept_appeal(case, staff)
    ),
    "appeal_not_accepted": _from(
        S.appeal_filed,
        lambda case, cycle, staff: workflow.reject_appeal(case, staff, "逾期提出。"),
    ),
    "appeal_upheld": _from(
        S.appeal_review, lambda case, cycle, staff: workflow.uphold_appeal(case, staff)
    ),
    "appeal_dismissed": _from(
        S.appeal_review,
        lambda case, cycle, staff: workflow.dismiss_appeal(case, staff, "理由不成立。"),
    ),
    "certified": _from(
        S.passed, lambda case, cycle, staff: workflow.issue_certificates(cycle, staff)
    ),
    "announced": _from(
        S.certified, lambda case, cycle, staff: workflow.announce_certificates(cycle, staff)
    ),
}

# (kind, words in the subject, words in the body) once the action is done; {} fields come
# from the case afterwards
EXPECTED = {
    "submitted": ("submitted", ["已收到您的審查文件"], ["形式審查", "流程圖"]),
    "returned": (
        "returned",
        ["形式審查退件"],
        ["登入系統 → 認證專區 → 流程圖 → 查看審查意見", "送出審查文件"],
    ),
    "passed": ("passed", ["初審結果通知：通過"], ["「通過」", "一併核發並公告"]),
    "passed_after_revision": (
        "passed",
        ["初審結果通知：通過"],
        ["「修正後通過」", "「通過」", "查看審查意見", "一併核發並公告"],
    ),
    "passed_round_2": ("passed", ["複審結果通知：通過"], ["複審結果為「通過」"]),
    "revision_requested": (
        "revision_requested",
        ["初審結果通知：修正後複審"],
        [
            "登入系統 → 認證專區 → 流程圖 → 查看審查意見",
            "送出複審資料",
            "縣市教專中心（高雄市）",
        ],
    ),
    "failed": (
        "failed",
        ["初審結果通知：未通過"],
        ["查看審查意見", "10 日內（含例假日）", "{deadline} 23:59（", "116 學年度"],
    ),
    "failed_round_2": ("failed", ["複審結果通知：未通過"], ["{deadline} 23:59（"]),
    "appeal_filed": ("appeal_filed", ["已收到您的申復申請"], ["是否受理"]),
    "appeal_accepted": ("appeal_accepted", ["申復受理通知"], ["已受理"]),
    "appeal_not_accepted": (
        "appeal_not_accepted",
        ["申復未受理通知"],
        ["維持「未通過」", "查看審查意見", "116 學年度"],
    ),
    "appeal_upheld": ("appeal_upheld", ["申復成立"], ["改為「通過」", "一併核發並公告"]),
    "appeal_dismissed": (
        "appeal_dismissed",
        ["申復不成立"],
        ["維持「未通過」", "查看審查意見", "116 學年度"],
    ),
    "certified": ("certified", ["認證證號已核發"], ["{number}", "個人資料"]),
    "announced": ("announced", ["認證證號已公告"], ["{number}", "公告", "個人資料"]),
}


@pytest.mark.real_smtp
@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_every_outcome_tells_the_candidate_once(outcome, cycle, staff, smtp_server):
    case, act = OUTCOMES[outcome](cycle, staff)
    before = last_ids()

    act()
    db.session.commit()
    db.session.refresh(case)

    kind, subject_words, body_words = EXPECTED[outcome]
    notifications, mails = added_since(before)
    assert [n.kind for n in notifications] == [kind]
    assert [m.kind for m in mails] == [kind]
    notification, queued = notifications[0], mails[0]
    event = latest_event(case)
    assert notification.user_id == case.applicant_id
    assert notification.case_id == queued.case_id == case.id
    assert notification.event_id == queued.event_id == event.id
    assert queued.notification_id == notification.id
    assert queued.recipient == case.applicant.email
    assert (queued.subject, queued.body) == (notification.subject, notification.body)
    assert queued.state is MailState.pending

    facts = {
        "deadline": roc_date(case.appeal_deadline) if case.appeal_deadline else "",
        "number": case.certificate_number or "",
    }
    for word in subject_words:
        assert word in queued.subject
    for word in body_words:
        assert word.format(**facts) in queued.body, (word, queued.body)
    assert queued.body.startswith(f"{case.applicant.name} 老師您好：")
    for assignment in case.assignments:
        assert assignment.reviewer.name not in queued.body

    report = deliver(ids=[queued.id])

    assert report.sent == 1
    received = smtp_server.to(case.applicant.email)
    assert len(received) == 1
    assert received[0]["Subject"] == queued.subject
    assert body_of(received[0]).strip() == queued.body.strip()
    assert queued.state is MailState.sent and queued.sent_at is not None


def test_failed_states_the_last_moment_to_appeal(cycle, staff):
    case = case_in(S.awaiting_verdict, cycle, staff)

    workflow.record_verdict(case, Decision.failed, staff, "紀錄不一致。")
    db.session.commit()

    db.session.refresh(case)
    deadline = to_taipei(case.appeal_deadline)
    assert (deadline.hour, deadline.minute, deadline.second) == (23, 59, 59)
    body = db.session.scalar(sa.select(OutgoingMail.body).where(OutgoingMail.kind == "failed"))
    weekday = "一二三四五六日"[deadline.weekday()]
    # the deadline ends at 23:59:59 and is written for people to the minute
    assert f"臺灣時間 民國 {roc_date(deadline)} 23:59（星期{weekday}）" in body


@pytest.mark.real_smtp
def test_each_assigned_reviewer_is_told_once(cycle, staff, smtp_server):
    case = case_in(S.awaiting_assignment, cycle, staff)
    panel = reviewers(2)
    cancel_earlier_mail()
    before = last_ids()

    event = workflow.assign_reviewers(case, panel, staff)
    db.session.commit()

    notifications, mails = added_since(before)
    assert sorted(n.user_id for n in notifications) == sorted(r.id for r in panel)
    assert sorted(m.recipient for m in mails) == sorted(r.email for r in panel)
    assert {n.kind for n in notifications} == {m.kind for m in mails} == {"reviewer_assigned"}
    assert {n.event_id for n in notifications} == {m.event_id for m in mails} == {event.id}
    for queued in mails:
        assert f"案號 {case.id}" in queued.subject
        assert "審查期限" in queued.body and "我的審查案件" in queued.body
        assert case.applicant.name not in queued.body

    assert deliver().sent == 2
    for reviewer in panel:
        assert len(smtp_server.to(reviewer.email)) == 1


def test_a_person_without_email_gets_the_portal_message_only(cycle, staff, caplog):
    case = case_in(S.formal_review, cycle, staff)
    case.applicant.email = ""
    db.session.commit()
    before = last_ids()

    workflow.return_for_correction(case, staff, "請補件。")
    db.session.commit()

    notifications, mails = added_since(before)
    assert [n.kind for n in notifications] == ["returned"]
    assert mails == []
    assert "has no e-mail address" in caplog.text


# --- delivery failures ----------------------------------------------------------------------


@pytest.mark.real_smtp
def test_server_down_then_up_delivers_once(app, cycle, staff, server_port):
    case = case_in(S.awaiting_verdict, cycle, staff)
    cancel_earlier_mail()
    workflow.record_verdict(case, Decision.failed, staff, "紀錄不一致。")
    db.session.commit()
    queued = db.session.scalar(sa.select(OutgoingMail).where(OutgoingMail.kind == "failed"))

    started = now_utc()
    report = deliver()

    assert report.retrying == 1 and report.sent == 0
    db.session.refresh(case)
    assert case.state is S.failed
    assert queued.state is MailState.pending
    assert queued.attempts == 1
    assert "ConnectionRefusedError" in queued.last_error
    assert queued.next_attempt_at >= started + timedelta(minutes=1)

    server = LoopbackServer(server_port)
    collector = server.start()
    try:
        assert deliver().sent == 0  # not due yet
        assert collector.messages == []

        report = deliver(moment=queued.next_attempt_at + timedelta(seconds=1))
        assert report.sent == 1
        assert queued.state is MailState.sent and queued.last_error == ""
        assert deliver(moment=now_utc() + timedelta(hours=2)).sent == 0
        assert len(collector.to(case.applicant.email)) == 1
    finally:
        server.stop()


def test_backoff_doubles_up_to_an_hour():
    assert [mailer.backoff(n).total_seconds() / 60 for n in range(1, 10)] == [
        1, 2, 4, 8, 16, 32, 60, 60, 60,
    ]  # fmt: skip


@pytest.mark.real_smtp
def test_gives_up_after_the_maximum_attempts_and_can_be_resent(app, cycle, staff, server_port):
    app.config["MAIL_MAX_ATTEMPTS"] = 3
    case = case_in(S.formal_review, cycle, staff)
    cancel_earlier_mail()
    workflow.return_for_correction(case, staff, "請補件。")
    db.session.commit()
    queued = db.session.scalar(sa.select(OutgoingMail).where(OutgoingMail.kind == "returned"))

    moment = now_utc()
    for _attempt in range(3):
        deliver(moment=moment)
        moment += timedelta(hours=1, seconds=1)
    assert queued.state is MailState.failed and queued.attempts == 3

    assert mailer.resend([queued.id]) == 1
    db.session.commit()
    db.session.refresh(queued)
    assert queued.state is MailState.pending and queued.attempts == 0

    server = LoopbackServer(free_port())
    point_mail_at(app, server.port)
    collector = server.start()
    try:
        assert deliver().sent == 1
    finally:
        server.stop()
    assert len(collector.to(case.applicant.email)) == 1
    assert queued.state is MailState.sent


@pytest.mark.real_smtp
@pytest.mark.parametrize(
    ("reply", "state"),
    [
        ("550 5.1.1 <{address}>: Recipient address rejected: User unknown", MailState.failed),
        ("450 4.2.1 Mailbox busy, try again later", MailState.pending),
    ],
)
def test_a_refused_recipient(reply, state, cycle, staff, smtp_server):
    case = case_in(S.formal_review, cycle, staff)
    cancel_earlier_mail()
    address = case.applicant.email
    smtp_server.refusals[address] = reply.format(address=address)
    workflow.return_for_correction(case, staff, "請補件。")
    db.session.commit()

    deliver()

    queued = db.session.scalar(sa.select(OutgoingMail).where(OutgoingMail.kind == "returned"))
    assert queued.state is state
    assert queued.attempts == 1
    assert queued.last_error.startswith(f"{address}: {reply[:3]}")
    assert "User unknown" in queued.last_error or "Mailbox busy" in queued.last_error
    assert smtp_server.messages == []
    db.session.refresh(case)
    assert case.state is S.returned


# --- never twice, never lost ----------------------------------------------------------------


def queue_plain_mails(count, case):
    for index in range(count):
        db.session.add(
            OutgoingMail(
                case_id=case.id,
                kind="test",
                recipient=f"person{index}@example.edu.tw",
                subject=f"測試信 {index}",
                body="內容",
            )
        )
    db.session.commit()


@pytest.mark.real_smtp
def test_two_workers_at_once_deliver_each_mail_once(app, cycle, staff, smtp_server, monkeypatch):
    case = case_in(S.draft, cycle, staff)
    cancel_earlier_mail()
    queue_plain_mails(40, case)
    monkeypatch.setattr(mailer, "BATCH_SIZE", 3)
    smtp_server.delay = 0.01
    start = threading.Barrier(2)
    reports, errors = {}, []

    def work(name):
        try:
            with app.app_context():
                start.wait()
                reports[name] = mailer.deliver_pending(worker_id=name)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"worker-{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    recipients = sorted(
        address for sent_to, _message in smtp_server.messages for address in sent_to
    )
    assert recipients == sorted(f"person{index}@example.edu.tw" for index in range(40))
    assert sum(report.sent for report in reports.values()) == 40
    db.session.expire_all()
    rows = db.session.scalars(sa.select(OutgoingMail).where(OutgoingMail.kind == "test")).all()
    assert {row.state for row in rows} == {MailState.sent}
    # which worker claims how many depends on scheduling; each mail went out once either way
    assert {row.claimed_by for row in rows} <= {"worker-1", "worker-2"}


def test_a_rolled_back_transition_leaves_no_message(cycle, staff):
    case = case_in(S.awaiting_verdict, cycle, staff)
    before = last_ids()

    workflow.record_verdict(case, Decision.failed, staff, "紀錄不一致。")
    db.session.flush()
    db.session.rollback()

    assert added_since(before) == ([], [])
    assert db.session.get(Case, case.id).state is S.awaiting_verdict
    assert not db.session.info.get(mailer._FLUSHED)


def test_a_refused_case_in_a_bulk_verdict_gets_no_message(cycle, staff):
    ready = case_in(S.awaiting_verdict, cycle, staff)
    not_ready = case_in(S.under_review, cycle, staff)
    before = last_ids()

    result = workflow.record_verdicts([ready, not_ready], Decision.passed, staff)
    db.session.commit()

    assert result.done == [ready] and len(result.refused) == 1
    notifications, mails = added_since(before)
    assert [(n.case_id, n.kind) for n in notifications] == [(ready.id, "passed")]
    assert [(m.case_id, m.kind) for m in mails] == [(ready.id, "passed")]


@pytest.mark.real_smtp
def test_undo_cancels_the_pending_mail(cycle, staff, smtp_server):
    case = case_in(S.awaiting_verdict, cycle, staff)
    cancel_earlier_mail()
    event = workflow.record_verdict(case, Decision.failed, staff, "紀錄不一致。")
    db.session.commit()

    workflow.undo_verdict(case, staff, "誤植判定結果")
    db.session.commit()

    db.session.expire_all()
    queued = db.session.scalar(sa.select(OutgoingMail).where(OutgoingMail.event_id == event.id))
    notification = db.session.scalar(
        sa.select(Notification).where(Notification.event_id == event.id)
    )
    assert queued.kind == "failed" and queued.state is MailState.cancelled
    assert notification.withdrawn_at is not None
    assert deliver().sent == 0
    assert smtp_server.messages == []


@pytest.mark.real_smtp
def test_a_stale_claim_is_recovered_and_a_live_one_left_alone(cycle, staff, smtp_server):
    case = case_in(S.draft, cycle, staff)
    cancel_earlier_mail()
    queue_plain_mails(3, case)
    stale, live, doomed = db.session.scalars(
        sa.select(OutgoingMail).where(OutgoingMail.kind == "test").order_by(OutgoingMail.id)
    ).all()
    for mail, worker, minutes in ((stale, "crashed", 11), (live, "busy", 1), (doomed, "dead", 30)):
        mail.state, mail.claimed_by = MailState.sending, worker
        mail.claimed_at = now_utc() - timedelta(minutes=minutes)
    doomed.attempts = mailer.MAX_ATTEMPTS - 1
    db.session.commit()

    report = deliver()

    assert report.recovered == 2 and report.sent == 1
    assert stale.state is MailState.sent and stale.attempts == 1
    assert live.state is MailState.sending and live.claimed_by == "busy"
    assert doomed.state is MailState.failed and doomed.attempts == mailer.MAX_ATTEMPTS
    assert [sent_to for sent_to, _message in smtp_server.messages] == [[stale.recipient]]


def test_an_unmarked_test_cannot_open_smtp(app, cycle, staff, server_port):
    with pytest.raises(AssertionError, match="tried to open an SMTP connection"):
        smtplib.SMTP("127.0.0.1", server_port)

    # through the mailer the refusal is recorded on the mail, which stays unsent
    case = case_in(S.formal_review, cycle, staff)
    cancel_earlier_mail()
    workflow.return_for_correction(case, staff, "請補件。")
    db.session.commit()
    deliver()
    queued = db.session.scalar(sa.select(OutgoingMail).where(OutgoingMail.kind == "returned"))
    assert queued.state is MailState.pending
    assert "tried to open an SMTP connection" in queued.last_error


# --- delivery right after a request's commit ------------------------------------------------


@pytest.fixture
def verdict_page(app, staff):
    """A page that records a verdict and commits, as a back-office action does."""

    def record(case_id):
        from flask import request

        case = db.session.get(Case, case_id)
        workflow.record_verdict(case, Decision(request.form["decision"]), staff, "請見意見。")
        db.session.commit()
        return "ok"

    app.add_url_rule("/test-verdict/<int:case_id>", "test_verdict", record, methods=["POST"])
    app.config["SEND_MAIL_AFTER_COMMIT"] = True
    return app.test_client()


@pytest.mark.real_smtp
def test_a_request_sends_its_mail_right_after_commit(verdict_page, cycle, staff, smtp_server):
    case = case_in(S.awaiting_verdict, cycle, staff)
    cancel_earlier_mail()
    db.session.info.pop(mailer._COMMITTED, None)

    response = verdict_page.post(f"/test-verdict/{case.id}", data={"decision": "passed"})

    assert response.status_code == 200
    assert len(smtp_server.to(case.applicant.email)) == 1
    db.session.expire_all()
    queued = db.session.scalar(sa.select(OutgoingMail).where(OutgoingMail.kind == "passed"))
    assert queued.state is MailState.sent


@pytest.mark.real_smtp
@pytest.mark.parametrize("trouble", ["down", "slow", "refusing"])
def test_mail_trouble_never_breaks_the_request(
    trouble, app, verdict_page, cycle, staff, server_port
):
    case = case_in(S.awaiting_verdict, cycle, staff)
    cancel_earlier_mail()
    db.session.info.pop(mailer._COMMITTED, None)
    app.config["MAIL_AFTER_COMMIT_TIMEOUT"] = 1
    server = LoopbackServer(server_port)
    if trouble != "down":
        collector = server.start()
        if trouble == "slow":
            collector.delay = 3
        else:
            collector.refusals[case.applicant.email] = "550 5.7.1 Relaying denied"

    try:
        started = time.monotonic()
        response = verdict_page.post(f"/test-verdict/{case.id}", data={"decision": "failed"})
        elapsed = time.monotonic() - started
    finally:
        server.stop()

    assert response.status_code == 200
    assert elapsed < 2.5
    db.session.expire_all()
    assert db.session.get(Case, case.id).state is S.failed
    queued = db.session.scalar(sa.select(OutgoingMail).where(OutgoingMail.kind == "failed"))
    assert queued.attempts == 1 and queued.last_error
    expected = MailState.failed if trouble == "refusing" else MailState.pending
    assert queued.state is expected


# --- reviewer reminders ---------------------------------------------------------------------


def test_reviewers_are_reminded_once_before_the_deadline(app, cycle, staff):
    case = case_in(S.under_review, cycle, staff)
    done_case = case_in(S.under_review, cycle, staff)
    moved_on = case_in(S.awaiting_verdict, cycle, staff)
    soon = now_utc() + timedelta(days=2)
    db.session.execute(sa.update(ReviewAssignment).values(due_at=soon))
    first_of_done = done_case.assignments[0]
    db.session.commit()
    review_all_but_one(done_case, keep=first_of_done)
    db.session.commit()
    before = last_ids()

    assert notify.queue_reviewer_reminders(3, moment=soon - timedelta(days=5)) == 0
    result = app.test_cli_runner().invoke(args=["remind-reviewers"])
    assert "已排入 3 封" in result.output, result.output
    assert notify.queue_reviewer_reminders(3) == 0

    notifications, mails = added_since(before)
    reminded = {(n.case_id, n.user_id) for n in notifications}
    assert reminded == {(case.id, a.reviewer_id) for a in case.assignments} | {
        (done_case.id, first_of_done.reviewer_id)
    }
    assert moved_on.id not in {n.case_id for n in notifications}
    assert {m.kind for m in mails} == {"reviewer_reminder"}
    assert all("審查期限提醒" in m.subject for m in mails)


def review_all_but_one(case, keep):
    """Every reviewer of the case but one submits a complete review."""
    results = {item.value: {"result": "meets", "comment": ""} for item in ApplicationItem}
    for assignment in case.assignments:
        if assignment.id != keep.id:
            workflow.save_review(
                assignment, assignment.reviewer, results, "整體表現良好。", Decision.passed, True
            )


# --- the commands ---------------------------------------------------------------------------


@pytest.mark.real_smtp
def test_send_mail_command_sends_what_is_due(app, cycle, staff, smtp_server):
    case = case_in(S.formal_review, cycle, staff)
    cancel_earlier_mail()
    workflow.return_for_correction(case, staff, "請補件。")
    db.session.commit()

    result = app.test_cli_runner().invoke(args=["send-mail"])

    assert result.exit_code == 0, result.output
    assert "寄出 1 封" in result.output
    assert len(smtp_server.to(case.applicant.email)) == 1


@pytest.mark.real_smtp
def test_the_mail_worker_stops_cleanly_on_sigterm(
    app, database, cycle, staff, smtp_server, tmp_path
):
    case = case_in(S.formal_review, cycle, staff)
    cancel_earlier_mail()
    workflow.return_for_correction(case, staff, "請補件。")
    db.session.commit()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if "TEST_SCHEMA" in database:
        url += f"?options=-csearch_path%3D{database['TEST_SCHEMA']}"
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(app.config["MAIL_PORT"]),
    }

    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "admin_app", "send-mail", "--loop",
         "--interval", "1"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not smtp_server.messages and time.monotonic() < deadline:
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()

    assert worker.returncode == 0, output
    assert "寄信程序已結束" in output
    assert len(smtp_server.to(case.applicant.email)) == 1


def test_opening_and_filling_a_draft_sends_nothing(cycle, staff):
    before = last_ids()

    case_in(S.draft, cycle, staff)

    assert added_since(before) == ([], [])
