"""The audit trail: every kind of event has a Chinese name, nobody changes the trail from the
back office (or anywhere else), and staff actions and logins are recorded with who, when and
from which address."""

import ast
import os
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from admin_app.extensions import db
from admin_app.i18n import now_utc
from models import AuditEvent, CaseState, School
from models.audit import EVENT_LABELS, action_label, every_action
from models.operations import TRANSITIONS, record_event

from .conftest import PASSWORD
from .factories import case_in

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE_FOLDERS = ("admin_app", "models", "views", "exports")
CHINESE = re.compile(r"[\u4e00-\u9fff]")
ADDRESS = "203.0.113.44"


def text(response):
    return response.get_data(as_text=True)


def events(action=None):
    db.session.expire_all()
    query = sa.select(AuditEvent).order_by(AuditEvent.id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    return list(db.session.scalars(query))


# --- every kind of event has a name -----------------------------------------------------------


def _constants(node, function):
    """The string constants an argument can be: a literal, a conditional of literals, or a
    local name assigned such values in the same function. None when it cannot be told."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        body, orelse = _constants(node.body, function), _constants(node.orelse, function)
        return body | orelse if body is not None and orelse is not None else None
    if isinstance(node, ast.Name) and function is not None:
        found = set()
        for statement in ast.walk(function):
            if isinstance(statement, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == node.id
                for target in statement.targets
            ):
                values = _constants(statement.value, None)
                if values is None:
                    return None
                found |= values
        return found or None
    return None


def recorded_actions():
    """Every event type passed to `record_event` anywhere in the application's code."""
    found, unreadable = {}, []
    for folder in CODE_FOLDERS:
        for directory, _dirs, names in os.walk(os.path.join(ROOT, folder)):
            for name in names:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as handle:
                    tree = ast.parse(handle.read(), path)
                _collect(tree, os.path.relpath(path, ROOT), found, unreadable)
    return found, unreadable


def _collect(tree, where, found, unreadable):
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    for function in [None, *functions]:
        body = ast.walk(function) if function is not None else ast.iter_child_nodes(tree)
        for node in body:
            if not (isinstance(node, ast.Call) and _called(node) == "record_event"):
                continue
            if function is None:
                continue  # a call at module level would run at import; none is expected
            argument = node.args[1] if len(node.args) > 1 else _keyword(node, "action")
            values = _constants(argument, function) if argument is not None else None
            if values is None:
                unreadable.append(f"{where}:{node.lineno}")
            for value in values or ():
                found.setdefault(value, f"{where}:{node.lineno}")


def _called(call):
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)


def _keyword(call, name):
    return next((keyword.value for keyword in call.keywords if keyword.arg == name), None)


def test_every_event_the_code_records_has_a_chinese_label():
    found, unreadable = recorded_actions()

    assert unreadable == [], "pass record_event a literal event type, so that it can be checked"
    unlabelled = {action: where for action, where in found.items() if action not in EVENT_LABELS}
    assert unlabelled == {}, "add these to models.audit.EVENT_LABELS"
    # the login events the issue names are among them
    assert {"login", "login_failed", "login_locked", "logout"} <= set(found)
    assert {"password_changed", "password_change_failed"} <= set(found)
    assert {"create_record", "update_record", "delete_record"} <= set(found)


def test_every_label_is_used_and_reads_in_chinese():
    found, _unreadable = recorded_actions()

    assert set(EVENT_LABELS) - set(found) == set(), "labels of events nothing records"
    assert set(EVENT_LABELS).isdisjoint(TRANSITIONS)
    for name, label in every_action():
        assert CHINESE.search(label), name
    assert len({label for _name, label in every_action()}) == len(every_action())


def test_recording_an_unnamed_event_is_refused(app):
    with pytest.raises(ValueError, match="no label"):
        record_event(None, "something_new", None)


def test_an_unknown_action_in_old_rows_is_shown_as_recorded():
    assert action_label("retired_action") == "retired_action"
    assert action_label("login_failed") == "登入失敗"
    assert action_label("submit") == "送出審查文件"


# --- nobody changes the trail -----------------------------------------------------------------


@pytest.fixture
def trail(client, teacher):
    """A few events: a login, a failed login, a logout."""
    client.post("/login", data={"login": "teacher1", "password": PASSWORD})
    client.post("/login", data={"login": "teacher1", "password": PASSWORD})
    client.post("/logout")
    client.post("/login", data={"login": "teacher1", "password": "wrong-password-1"})
    return events()


def snapshot():
    return [(e.id, e.action, e.actor_id, e.comment, e.remote_addr, e.created_at) for e in events()]


@pytest.mark.parametrize("role", ["staff", "admin_user"])
def test_back_office_refuses_every_write_to_the_trail(request, login, trail, role):
    client = login(request.getfixturevalue(role))
    target = trail[0].id
    before = snapshot()

    answers = {
        "create": client.post("/admin/audit/new/", data={"action": "login", "comment": "假造"}),
        "edit form": client.get(f"/admin/audit/edit/?id={target}"),
        "edit": client.post(f"/admin/audit/edit/?id={target}", data={"comment": "竄改"}),
        "delete": client.post("/admin/audit/delete/", data={"id": target}),
        "bulk delete": client.post(
            "/admin/audit/action/", data={"action": "delete", "rowid": [target]}
        ),
        "list edit": client.post(
            "/admin/audit/ajax/update/", data={"list_form_pk": target, "comment": "竄改"}
        ),
    }

    assert {name: response.status_code for name, response in answers.items()} == dict.fromkeys(
        answers, 403
    )
    assert snapshot() == before


def test_the_trail_page_offers_no_way_to_change_it(login, staff, trail):
    page = text(login(staff).get("/admin/audit/"))

    assert "登入失敗" in page and "登出" in page
    for address in ("/admin/audit/new", "/admin/audit/edit", "/admin/audit/delete"):
        assert address not in page
    assert 'name="action"' not in page and "action_form" not in page

    details = text(login(staff).get(f"/admin/audit/details/?id={trail[0].id}"))
    assert "/admin/audit/edit" not in details and "/admin/audit/delete" not in details


def test_the_trail_cannot_be_changed_through_the_database_session(app, trail):
    event = trail[0]

    event.comment = "竄改"
    with pytest.raises(ValueError, match="may not be changed"):
        db.session.flush()
    db.session.rollback()

    db.session.delete(db.session.get(AuditEvent, event.id))
    with pytest.raises(ValueError, match="may not be changed"):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(AuditEvent, event.id).comment == ""


# --- who, when and from where -----------------------------------------------------------------


def assert_recorded(event, actor, address=ADDRESS):
    assert event.actor_id == (actor.id if actor is not None else None)
    assert event.remote_addr == address
    assert now_utc() - timedelta(minutes=1) < event.created_at <= now_utc()


def test_logins_logouts_and_password_changes_are_recorded(client, teacher):
    here = {"REMOTE_ADDR": ADDRESS}
    client.post("/login", data={"login": "teacher1", "password": "wrong"}, environ_base=here)
    client.post("/login", data={"login": "teacher1", "password": PASSWORD}, environ_base=here)
    change = {"current_password": "wrong-one-1", "new_password": "x", "confirm_password": "x"}
    client.post("/password", data=change, environ_base=here)
    change = {"current_password": PASSWORD, "new_password": "a-new-secret-9"}
    client.post("/password", data={**change, "confirm_password": change["new_password"]},
                environ_base=here)  # fmt: skip
    client.post("/logout", environ_base=here)

    recorded = events()
    assert [e.action for e in recorded] == [
        "login_failed",
        "login",
        "password_change_failed",
        "password_changed",
        "logout",
    ]
    assert recorded[0].comment == "teacher1"
    assert_recorded(recorded[0], None)
    for event in recorded[1:]:
        assert_recorded(event, teacher)


def test_a_staff_decision_is_recorded_with_the_address(login, client, cycle, staff):
    case = case_in(CaseState.formal_review, cycle, staff)
    login(staff)

    client.post(
        f"/admin/case/{case.id}/return/",
        data={"comment": "請補件。", "version": case.version},
        environ_base={"REMOTE_ADDR": ADDRESS},
    )

    [event] = events("return_for_correction")
    assert_recorded(event, staff)
    assert event.case_id == case.id and event.comment == "請補件。"


def test_back_office_edits_are_recorded(login, client, staff):
    login(staff)
    here = {"REMOTE_ADDR": ADDRESS}
    county_id = db.session.scalar(sa.text("SELECT id FROM county ORDER BY sort_order LIMIT 1"))

    client.post(
        "/admin/school/new/",
        data={"name": "稽核國民小學", "code": "audit-01", "county": county_id},
        environ_base=here,
    )
    school = db.session.scalar(sa.select(School).where(School.code == "audit-01"))
    assert school is not None
    client.post(
        f"/admin/school/edit/?id={school.id}",
        data={"name": "稽核實驗國民小學", "code": "audit-01", "county": county_id},
        environ_base=here,
    )
    client.post("/admin/school/delete/", data={"id": school.id}, environ_base=here)

    recorded = [e for e in events() if e.action.endswith("_record")]
    assert [e.action for e in recorded] == ["create_record", "update_record", "delete_record"]
    assert recorded[0].comment == f"學校：臺北市 稽核國民小學（#{school.id}）"
    assert recorded[1].comment == f"學校：臺北市 稽核實驗國民小學（#{school.id}）"
    assert recorded[2].comment == f"學校：臺北市 稽核實驗國民小學（#{school.id}）"
    for event in recorded:
        assert_recorded(event, staff)
    page = text(client.get("/admin/audit/"))
    assert "新增資料" in page and "修改資料" in page and "刪除資料" in page


def test_a_refused_delete_leaves_no_event(login, client, staff, teacher):
    login(staff)

    response = client.post("/admin/school/delete/", data={"id": teacher.school_id})

    assert response.status_code == 302
    assert events("delete_record") == []
    assert db.session.get(School, teacher.school_id) is not None
