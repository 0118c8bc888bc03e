"""The portal inbox (訊息): a person's own messages, reading them, and the unread badge."""

import importlib.util
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from admin_app.extensions import db
from admin_app.i18n import now_utc, roc_datetime
from models import CaseState, Notification, workflow

from .factories import case_in
from .test_portal import text


def note(user, subject, body="內容", case=None, minutes_ago=0, read=False, withdrawn=False):
    """A message in a person's inbox, made directly as models.notify would make it."""
    moment = now_utc() - timedelta(minutes=minutes_ago)
    notification = Notification(
        user_id=user.id,
        case_id=case.id if case is not None else None,
        kind="test",
        subject=subject,
        body=body,
        created_at=moment,
        read_at=moment if read else None,
        withdrawn_at=moment if withdrawn else None,
    )
    db.session.add(notification)
    db.session.commit()
    return notification


def subjects(page):
    return re.findall(r'<a class="message-subject" href="/messages/\d+">(.*?)</a>', page)


def badge(page):
    match = re.search(r'<a class="inbox-link" href="/messages">訊息(.*?)</a>', page, re.S)
    assert match, "no inbox link in the header"
    number = re.search(r'<span class="badge">(\d+)', match.group(1))
    return int(number.group(1)) if number else 0


def read_at(notification):
    db.session.expire_all()
    return db.session.get(Notification, notification.id).read_at


@pytest.fixture
def own_case(teacher, cycle, staff):
    return case_in(CaseState.formal_review, cycle, staff, applicant=teacher)


def test_inbox_lists_own_standing_messages_newest_first(login, teacher, other_teacher, own_case):
    db.session.execute(sa.delete(Notification))  # the submission receipt: start from nothing
    db.session.commit()
    oldest = note(teacher, "最早的通知", minutes_ago=300, read=True)
    newest = note(teacher, "最新的通知", "第一行\n<b>第二行</b>", case=own_case, minutes_ago=1)
    note(teacher, "中間的通知", minutes_ago=60)
    note(teacher, "已撤回的通知", minutes_ago=30, withdrawn=True)
    note(other_teacher, "別人的通知", minutes_ago=2)

    page = text(login(teacher).get("/messages"))

    assert subjects(page) == ["最新的通知", "中間的通知", "最早的通知"]
    assert f"<time>{roc_datetime(newest.created_at)}</time>" in page
    assert f"<time>{roc_datetime(oldest.created_at)}</time>" in page
    assert "第一行\n&lt;b&gt;第二行&lt;/b&gt;" in page and "<b>第二行</b>" not in page
    block = page.split(f'id="message-{newest.id}"')[1].split("</li>")[0]
    assert f'href="/apply/flow/{own_case.id}"' in block and "查看流程圖" in block
    assert "已撤回的通知" not in page and "別人的通知" not in page
    assert page.count(">未讀</span>") == 2


def test_opening_a_message_marks_it_read(login, teacher):
    first = note(teacher, "第一則", "親愛的老師：\n請查看。", minutes_ago=5)
    note(teacher, "第二則")
    client = login(teacher)
    assert badge(text(client.get("/messages"))) == 2

    response = client.get(f"/messages/{first.id}")

    assert response.status_code == 200
    page = text(response)
    assert "第一則" in page and "親愛的老師：\n請查看。" in page
    assert badge(page) == 1
    marked = read_at(first)
    assert marked is not None
    client.get(f"/messages/{first.id}")
    assert read_at(first) == marked
    listing = text(client.get("/messages"))
    assert listing.count(">未讀</span>") == 1 and badge(listing) == 1


def test_another_persons_or_a_withdrawn_message_is_not_found(login, teacher, other_teacher):
    theirs = note(other_teacher, "別人的通知")
    withdrawn = note(teacher, "已撤回", withdrawn=True)
    client = login(teacher)

    assert client.get(f"/messages/{theirs.id}").status_code == 404
    assert client.get(f"/messages/{withdrawn.id}").status_code == 404
    assert client.get("/messages/999999").status_code == 404
    assert read_at(theirs) is None and read_at(withdrawn) is None


def test_badge_costs_one_count_query_and_only_for_logged_in_people(app, client, login, teacher):
    note(teacher, "未讀一")
    note(teacher, "未讀二")
    note(teacher, "已讀", read=True)
    statements = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if "notification" in statement.lower():
            statements.append(statement)

    anonymous = client.get("/login")
    client_logged_in = login(teacher)
    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        page = text(client_logged_in.get("/apply"))
        on_apply = list(statements)
        client.post("/logout")
        statements.clear()
        client.get("/login")
        on_login = list(statements)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)

    assert badge(page) == 2
    assert len(on_apply) == 1 and "count(" in on_apply[0].lower()
    assert on_login == []
    assert 'class="inbox-link"' not in text(anonymous)


def test_no_badge_when_everything_is_read(login, teacher):
    note(teacher, "已讀", read=True)

    page = text(login(teacher).get("/apply"))

    assert badge(page) == 0 and 'class="badge"' not in page


def test_empty_inbox_and_pages(login, teacher):
    client = login(teacher)
    assert "目前沒有訊息。" in text(client.get("/messages"))

    for index in range(31):
        note(teacher, f"通知{index:02d}", minutes_ago=index)
    first = text(client.get("/messages"))
    second = text(client.get("/messages?page=2"))

    assert len(subjects(first)) == 30 and subjects(second) == ["通知30"]
    assert 'href="/messages?page=2"' in first and "第 1 / 2 頁" in first


def test_a_reviewer_reads_their_messages_too(login, reviewer, teacher, cycle, staff):
    case = case_in(CaseState.under_review, cycle, staff, applicant=teacher)
    message = note(reviewer, "審查通知", case=case)
    client = login(reviewer)

    page = text(client.get("/messages"))

    assert "審查通知" in page and badge(page) == 1
    assert f'href="/apply/flow/{case.id}"' not in page
    assert 'href="/review/"' in page
    assert client.get(f"/messages/{message.id}").status_code == 200


@pytest.mark.parametrize("url", ["/messages", "/messages/1"])
def test_anonymous_visitors_are_sent_to_login(client, url):
    response = client.get(url)

    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- end to end, through models.notify ------------------------------------------------------

needs_notify = pytest.mark.skipif(
    importlib.util.find_spec("models.notify") is None, reason="models.notify not written yet"
)


@needs_notify
def test_a_returned_case_reaches_the_teachers_inbox(login, teacher, cycle, staff):
    case = case_in(CaseState.returned, cycle, staff, applicant=teacher)
    client = login(teacher)

    page = text(client.get("/messages"))

    assert "形式審查退件" in subjects(page)[0]
    block = page.split('<li class="message')[1].split("</li>")[0]
    assert f'href="/apply/flow/{case.id}"' in block
    assert badge(page) >= 1


@needs_notify
def test_an_undone_verdict_leaves_the_inbox(login, teacher, cycle, staff):
    case = case_in(CaseState.failed, cycle, staff, applicant=teacher)
    failed = db.session.scalars(
        sa.select(Notification).where(
            Notification.user_id == teacher.id, Notification.kind == "failed"
        )
    ).one()
    client = login(teacher)
    assert failed.subject in subjects(text(client.get("/messages")))

    workflow.undo_verdict(case, staff, "誤植判定")
    db.session.commit()

    assert failed.subject not in subjects(text(client.get("/messages")))
    assert client.get(f"/messages/{failed.id}").status_code == 404


def test_the_database_outage_page_renders_without_counting(login, teacher, monkeypatch):
    client = login(teacher)

    def down(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(db.session, "scalar", down)
    response = client.get("/apply")

    assert response.status_code == 503
    page = text(response)
    assert "資料庫暫時無法連線" in page and "Traceback" not in page
