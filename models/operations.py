"""The one place where a case changes state.

Every state change in the product is an `Action` in `TRANSITIONS` and goes through `transition`.
A view, an admin action or a CLI command parses input, checks the user's right, calls one
function here and commits; nothing here commits. A transition is a conditional UPDATE on the
case's state, round and version, so a stale page, a double click or a second member of staff
acting on the same case changes nothing and is told why.
"""

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from flask import has_request_context, request
from sqlalchemy.orm.attributes import set_committed_value

from admin_app.extensions import db
from admin_app.i18n import _, _l, now_utc

from .audit import EVENT_LABELS, AuditEvent
from .bulk import insert_many, on_postgresql, unnested
from .case import Case, CaseState
from .people import Role

log = logging.getLogger(__name__)

S = CaseState
STAFF = frozenset({Role.staff, Role.admin})
APPLICANT = frozenset({Role.applicant})
REVIEWER = frozenset({Role.reviewer})
SYSTEM = frozenset()


class TransitionRefused(Exception):
    """An action that cannot be taken now; the message is for the person who tried."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = str(message)


@dataclass(frozen=True)
class Action:
    """One kind of state change: where it may start, who may take it and where it leads."""

    name: str
    label: str
    sources: tuple  # ((state, round or None for any round), ...)
    target: CaseState
    roles: frozenset
    comment_required: bool = False
    # the round the case is in afterwards; None keeps the round
    next_round: int | None = None
    # whether the comment is shown to the candidate
    comment_public: bool = False

    def starts_from(self, state, round_):
        return any(s is state and (r is None or r == round_) for s, r in self.sources)


TRANSITIONS = {
    action.name: action
    for action in (
        Action("submit", _l("送出審查文件"), ((S.draft, 1), (S.returned, 1)), S.formal_review,
               APPLICANT),
        Action("pass_formal_review", _l("形式審查通過"), ((S.formal_review, 1),),
               S.awaiting_assignment, STAFF),
        Action("return_for_correction", _l("形式審查退件"), ((S.formal_review, 1),), S.returned,
               STAFF, comment_required=True, comment_public=True),
        Action("assign_reviewers", _l("分發委員"), ((S.awaiting_assignment, None),),
               S.under_review, STAFF),
        Action("complete_reviews", _l("委員審查完成"), ((S.under_review, None),),
               S.awaiting_verdict, REVIEWER | STAFF),
        Action("verdict_passed", _l("判定通過"), ((S.awaiting_verdict, None),), S.passed, STAFF,
               comment_public=True),
        Action("verdict_passed_after_revision", _l("判定修正後通過"), ((S.awaiting_verdict, 1),),
               S.passed, STAFF, comment_required=True, comment_public=True),
        Action("verdict_revise_and_review", _l("判定修正後複審"), ((S.awaiting_verdict, 1),),
               S.revision_requested, STAFF, comment_required=True, comment_public=True),
        Action("verdict_failed", _l("判定未通過"), ((S.awaiting_verdict, None),), S.failed,
               STAFF, comment_required=True, comment_public=True),
        Action("undo_verdict", _l("撤銷判定"),
               ((S.passed, None), (S.revision_requested, 1), (S.failed, None)),
               S.awaiting_verdict, STAFF, comment_required=True),
        Action("submit_revision", _l("送出複審資料"), ((S.revision_requested, 1),),
               S.awaiting_assignment, APPLICANT, next_round=2),
        Action("file_appeal", _l("提出申復"), ((S.failed, None),), S.appeal_filed, APPLICANT),
        Action("close_appeal_window", _l("申復期限屆滿"), ((S.failed, None),), S.closed, SYSTEM),
        Action("accept_appeal", _l("申復受理"), ((S.appeal_filed, None),), S.appeal_review,
               STAFF),
        Action("reject_appeal", _l("申復未受理"), ((S.appeal_filed, None),), S.closed, STAFF,
               comment_required=True, comment_public=True),
        Action("uphold_appeal", _l("申復成立"), ((S.appeal_review, None),), S.passed, STAFF,
               comment_public=True),
        Action("dismiss_appeal", _l("申復不成立"), ((S.appeal_review, None),), S.closed, STAFF,
               comment_required=True, comment_public=True),
        Action("issue_certificate", _l("發證"), ((S.passed, None),), S.certified, STAFF),
        Action("announce", _l("公告"), ((S.certified, None),), S.announced, STAFF),
    )
}  # fmt: skip


def actor_may(action, actor):
    """Whether the actor's role may take the action (None is the system itself)."""
    if actor is None:
        return not action.roles or action.roles == SYSTEM
    return actor.role in action.roles


def can_take(case, action_name, actor):
    """Guard used by views, templates and admin actions alike."""
    action = TRANSITIONS[action_name]
    if not action.starts_from(case.state, case.round):
        return False
    if actor is not None and actor.role is Role.applicant and not case.belongs_to(actor):
        return False
    return actor_may(action, actor) or (actor is None and action.roles == SYSTEM)


def transition(case, action_name, actor, *, comment="", values=None):
    """Move the case along one action, audited, or raise TransitionRefused and change nothing.

    `values` are further columns of the case set in the same UPDATE (e.g. submitted_at).
    Returns the audit event written.
    """
    action = TRANSITIONS[action_name]
    comment = (comment or "").strip()

    _check(case, action, actor, comment)

    from_state, from_round = case.state, case.round
    moment = now_utc()
    changes = {
        "state": action.target,
        "round": action.next_round or from_round,
        "version": Case.version + 1,
        "state_changed_at": moment,
        "updated_at": moment,
        **(values or {}),
    }
    result = db.session.execute(
        sa.update(Case)
        .where(
            Case.id == case.id,
            Case.state == from_state,
            Case.round == from_round,
            Case.version == case.version,
        )
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.expire(case)
        raise TransitionRefused(_("此案件剛由他人處理或頁面已過期，請重新整理後再試。"))
    db.session.expire(case)

    event = AuditEvent(
        created_at=moment,
        actor_id=actor.id if actor is not None else None,
        case_id=case.id,
        action=action.name,
        from_state=from_state,
        to_state=action.target,
        round=from_round,
        comment=comment,
        comment_public=action.comment_public and bool(comment),
        remote_addr=_remote_addr(),
    )
    db.session.add(event)
    db.session.flush()

    log.info(
        "case %s: %s by %s (%s round %s -> %s)",
        case.id,
        action.name,
        actor.login if actor is not None else "system",
        from_state.value,
        from_round,
        action.target.value,
    )
    return event


def transition_many(cases, action_name, actor, *, values=None):
    """Move many cases along one action with a few set-based statements, all or none.

    The bulk form of `transition` for the certificate steps: each case is checked, updated by
    the same conditional UPDATE (one statement for all on PostgreSQL, see `models.bulk`) and
    gets its own audit event (inserted with the others); if any case no longer matches what was
    read, TransitionRefused is raised and the caller must roll back. `values` maps a case id to
    further columns of that case (every case the same columns). The case objects show their new
    state afterwards. Returns the audit events' ids in the order of `cases`.
    """
    action = TRANSITIONS[action_name]
    if not cases:
        return []
    for case in cases:
        _check(case, action, actor, "")

    moment = now_utc()
    values = values or {}
    extra = sorted(values[cases[0].id]) if values else []
    changed = _update_many(cases, action, moment, values, extra)
    if changed != len(cases):
        raise TransitionRefused(_("此案件剛由他人處理或頁面已過期，請重新整理後再試。"))

    address = _remote_addr()
    event_rows = [
        {
            "created_at": moment,
            "actor_id": actor.id if actor is not None else None,
            "case_id": case.id,
            "action": action.name,
            "from_state": case.state,
            "to_state": action.target,
            "round": case.round,
            "comment": "",
            "comment_public": False,
            "remote_addr": address,
        }
        for case in cases
    ]
    event_of_case = dict(
        insert_many(
            AuditEvent.__table__,
            event_rows,
            returning=(AuditEvent.__table__.c.case_id, AuditEvent.__table__.c.id),
        )
    )
    event_ids = [event_of_case[case.id] for case in cases]

    # one line for the lot: each case's own record is its audit event
    log.info(
        "%s cases (ids %s to %s): %s by %s -> %s",
        len(cases),
        min(case.id for case in cases),
        max(case.id for case in cases),
        action.name,
        actor.login if actor is not None else "system",
        action.target.value,
    )
    for case in cases:
        # the UPDATE matched this very version, so its outcome is known without reading it back
        outcome = {
            "state": action.target,
            "round": action.next_round or case.round,
            "version": case.version + 1,
            "state_changed_at": moment,
            "updated_at": moment,
            **values.get(case.id, {}),
        }
        for name, value in outcome.items():
            set_committed_value(case, name, value)
    return event_ids


def _update_many(cases, action, moment, values, extra):
    """The conditional UPDATE of `transition`, for many cases at once; how many rows it changed.

    Each case must still be in the state, round and version it was read in. `extra` names the
    further columns that `values` gives for every case.
    """
    table = Case.__table__
    # the bound names differ from the columns', which SQLAlchemy keeps for the SET clause
    rows = [
        {
            "b_id": case.id,
            "b_state": case.state,
            "b_round": case.round,
            "b_version": case.version,
            "b_next_round": action.next_round or case.round,
            **{f"v_{name}": values[case.id][name] for name in extra},
        }
        for case in cases
    ]
    kinds = {
        "b_id": table.c.id.type,
        "b_state": table.c.state.type,
        "b_round": table.c.round.type,
        "b_version": table.c.version.type,
        "b_next_round": table.c.round.type,
        **{f"v_{name}": table.c[name].type for name in extra},
    }
    if on_postgresql():
        # one statement: the rows as arrays, unpacked on the server (models.bulk)
        columns = {name: (kind, [row[name] for row in rows]) for name, kind in kinds.items()}
        given = unnested(columns).c
        parameters = None
    else:
        given = {name: sa.bindparam(name, type_=kind) for name, kind in kinds.items()}
        parameters = rows
    statement = (
        sa.update(table)
        .where(
            table.c.id == given["b_id"],
            table.c.state == given["b_state"],
            table.c.round == given["b_round"],
            table.c.version == given["b_version"],
        )
        .values(
            state=action.target,
            round=given["b_next_round"],
            version=table.c.version + 1,
            state_changed_at=moment,
            updated_at=moment,
            **{name: given[f"v_{name}"] for name in extra},
        )
    )
    return db.session.execute(statement, parameters).rowcount


def _check(case, action, actor, comment):
    """Refuse, with the reason, an action that does not apply to the case as it now stands."""
    if not action.starts_from(case.state, case.round):
        raise TransitionRefused(
            _(
                "此案件目前為「%(status)s」，無法執行「%(action)s」。請重新整理頁面。",
                status=case.status_label,
                action=action.label,
            )
        )
    if not actor_may(action, actor):
        raise TransitionRefused(_("您沒有執行「%(action)s」的權限。", action=action.label))
    if actor is not None and actor.role is Role.applicant and not case.belongs_to(actor):
        raise TransitionRefused(_("您沒有執行「%(action)s」的權限。", action=action.label))
    if action.comment_required and not comment:
        raise TransitionRefused(_("「%(action)s」必須填寫意見。", action=action.label))


def record_event(case, action, actor, *, comment="", comment_public=False):
    """Audit something done that is not a state change (an upload, a login, an edit)."""
    if action not in EVENT_LABELS:
        # XXX: the people who read the trail need a name for every kind of event
        raise ValueError(f"audit action {action!r} has no label in models.audit.EVENT_LABELS")
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        case_id=case.id if case is not None else None,
        action=action,
        round=case.round if case is not None else None,
        comment=comment,
        comment_public=comment_public,
        remote_addr=_remote_addr(),
    )
    db.session.add(event)
    return event


def _remote_addr():
    return request.remote_addr if has_request_context() else None
