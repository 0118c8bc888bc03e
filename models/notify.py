"""What candidates and reviewers are told: one function per kind of message.

Each function renders its kind's subject and body from `views/templates/mail/<kind>.txt`, then
adds to the caller's session the portal message (`Notification`) and the queued e-mail
(`OutgoingMail`) with the same text, both tied to the case and to the audit event that caused
them, so that undoing that decision withdraws them. Nothing here commits or sends:
`admin_app.mailer` delivers the queue after the caller's commit.
"""

import logging
from datetime import timedelta

import jinja2
import sqlalchemy as sa
from flask import current_app

from admin_app.extensions import db
from admin_app.i18n import now_utc, roc_date, roc_datetime, roc_moment

from .bulk import insert_many
from .case import Case, CaseState
from .messages import Notification, OutgoingMail
from .review import Decision, ReviewAssignment

log = logging.getLogger(__name__)

ROUND_NAMES = {1: "初審", 2: "複審"}
# days before a review's deadline its reviewer is reminded (setting REVIEW_REMINDER_DAYS)
REVIEW_REMINDER_DAYS = 3


# --- messages to the candidate --------------------------------------------------------------


def submitted(case, event):
    """Receipt for an application sent to formal review, or a revision sent for 複審."""
    return _tell_applicant(case, event, "submitted")


def returned(case, event):
    """The formal review returned the file: read the comments, fix and resubmit."""
    return _tell_applicant(case, event, "returned")


def passed(case, event, decision, round_):
    """The round's verdict is 通過 or 修正後通過; the number comes with everyone else's."""
    return _tell_applicant(case, event, "passed", decision=decision, round_name=ROUND_NAMES[round_])


def revision_requested(case, event):
    """The 初審 verdict is 修正後複審: revise per the comments and apply for 複審."""
    return _tell_applicant(case, event, "revision_requested")


def failed(case, event, round_):
    """未通過: the comments, the exact last moment to appeal, or apply again next 學年度."""
    return _tell_applicant(case, event, "failed", round_name=ROUND_NAMES[round_])


def appeal_filed(case, event):
    """Receipt for an appeal."""
    return _tell_applicant(case, event, "appeal_filed")


def appeal_accepted(case, event):
    """The appeal is admissible (受理) and will be examined."""
    return _tell_applicant(case, event, "appeal_accepted")


def appeal_not_accepted(case, event):
    """The appeal is not admissible (未受理); the case closes as 未通過."""
    return _tell_applicant(case, event, "appeal_not_accepted")


def appeal_upheld(case, event):
    """申復成立: the result is now 通過."""
    return _tell_applicant(case, event, "appeal_upheld")


def appeal_dismissed(case, event):
    """申復不成立: the result stays 未通過."""
    return _tell_applicant(case, event, "appeal_dismissed")


def certified(case, event):
    """The certificate number is issued."""
    return _tell_applicant(case, event, "certified")


def announced(case, event):
    """The certificate number is publicly announced."""
    return _tell_applicant(case, event, "announced")


def certified_many(cases, event_ids):
    """The certificate-number message to every case of a bulk issue, inserted in bulk."""
    return _tell_applicants(cases, event_ids, "certified")


def announced_many(cases, event_ids):
    """The announcement message to every case of a bulk announcement, inserted in bulk."""
    return _tell_applicants(cases, event_ids, "announced")


def verdict_recorded(case, event, decision, round_):
    """The message for a verdict: 通過, 修正後通過, 修正後複審 or 未通過."""
    if decision in (Decision.passed, Decision.passed_after_revision):
        return passed(case, event, decision, round_)
    if decision is Decision.revise_and_review:
        return revision_requested(case, event)
    return failed(case, event, round_)


# --- messages to reviewers ------------------------------------------------------------------


def reviewer_assigned(assignment, event):
    """A committee member is asked to review a case, with the deadline."""
    return _tell(
        assignment.reviewer,
        "reviewer_assigned",
        assignment.case,
        event,
        assignment=assignment,
        round_name=ROUND_NAMES[assignment.round],
    )


def reviewer_reminder(assignment):
    """A committee member's review is due soon and not yet submitted."""
    return _tell(
        assignment.reviewer,
        "reviewer_reminder",
        assignment.case,
        None,
        assignment=assignment,
        round_name=ROUND_NAMES[assignment.round],
    )


def queue_reviewer_reminders(days, moment=None):
    """Remind, once each, reviewers whose open review is due within `days`; returns how many.

    Only assignments of the round the case is under review in count. `reminded_at` is set by a
    conditional UPDATE, so two workers running this at once still remind each reviewer once.
    """
    moment = moment or now_utc()
    candidates = db.session.scalars(
        sa.select(ReviewAssignment)
        .join(Case, Case.id == ReviewAssignment.case_id)
        .where(
            ReviewAssignment.submitted_at.is_(None),
            ReviewAssignment.reminded_at.is_(None),
            ReviewAssignment.due_at.is_not(None),
            ReviewAssignment.due_at <= moment + timedelta(days=days),
            ReviewAssignment.round == Case.round,
            Case.state == CaseState.under_review,
        )
        .order_by(ReviewAssignment.id)
    ).all()

    reminded = 0
    for assignment in candidates:
        claimed = db.session.execute(
            sa.update(ReviewAssignment)
            .where(
                ReviewAssignment.id == assignment.id,
                ReviewAssignment.reminded_at.is_(None),
                ReviewAssignment.submitted_at.is_(None),
            )
            .values(reminded_at=moment)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            continue
        reviewer_reminder(assignment)
        reminded += 1
        log.info(
            "case %s: review reminder queued for %s", assignment.case_id, assignment.reviewer_id
        )
    return reminded


# --- rendering and queueing -----------------------------------------------------------------


def render(kind, **context):
    """The subject (one line) and plain-text body of a kind of message.

    `mail/<kind>.txt` holds a `subject` and a `body` block; the body is then framed by
    `mail/_layout.txt` (greeting and signature).
    """
    templates = _templates()
    template = templates.get_template(f"mail/{kind}.txt")
    blocks = template.new_context(context)
    subject = "".join(template.blocks["subject"](blocks))
    body = "".join(template.blocks["body"](blocks))
    framed = templates.get_template("mail/_layout.txt").render(context, body=body.strip())
    return " ".join(subject.split()), framed.strip() + "\n"


def _tell_applicant(case, event, kind, **context):
    return _tell(case.applicant, kind, case, event, **context)


def _tell(user, kind, case, event, **context):
    """Render a message and add it to the user's inbox and to the mail queue."""
    subject, body = render(kind, user=user, case=case, cycle=case.cycle, **context)
    event_id = event.id if event is not None else None

    notification = Notification(
        user_id=user.id, case_id=case.id, event_id=event_id, kind=kind, subject=subject, body=body
    )
    db.session.add(notification)
    if not user.email:
        log.warning("user %s has no e-mail address: %s message kept in the portal", user.id, kind)
        return notification

    db.session.add(
        OutgoingMail(
            notification=notification,
            case_id=case.id,
            event_id=event_id,
            kind=kind,
            recipient=user.email,
            subject=subject,
            body=body,
        )
    )
    return notification


def _tell_applicants(cases, event_ids, kind):
    """`_tell` for many candidates at once: each message rendered, then two bulk INSERTs.

    Each case gets one message in a bulk step, so the case id pairs a message with its row.

    The e-mails are left to the mail worker (a bulk step's thousands of mails are never sent
    from the request), so they are not added to the session's after-commit delivery.
    """
    moment = now_utc()
    messages = []
    for case, event_id in zip(cases, event_ids, strict=True):
        user = case.applicant
        subject, body = render(kind, user=user, case=case, cycle=case.cycle)
        messages.append((case, user, event_id, subject, body))
    if not messages:
        return 0

    table = Notification.__table__
    notification_of_case = dict(
        insert_many(
            table,
            [
                {
                    "user_id": user.id,
                    "case_id": case.id,
                    "event_id": event_id,
                    "kind": kind,
                    "subject": subject,
                    "body": body,
                    "created_at": moment,
                }
                for case, user, event_id, subject, body in messages
            ],
            returning=(table.c.case_id, table.c.id),
        )
    )
    mails = [
        {
            "notification_id": notification_of_case[case.id],
            "case_id": case.id,
            "event_id": event_id,
            "kind": kind,
            "recipient": user.email,
            "subject": subject,
            "body": body,
            "created_at": moment,
            "next_attempt_at": moment,
        }
        for case, user, event_id, subject, body in messages
        if user.email
    ]
    for user_id in sorted({user.id for _case, user, *_rest in messages if not user.email}):
        log.warning("user %s has no e-mail address: %s message kept in the portal", user_id, kind)
    insert_many(OutgoingMail.__table__, mails)
    return len(messages)


def _templates():
    """The Jinja environment of message templates, built once per application.

    Plain text needs no HTML escaping, and an undefined name is an error rather than a blank
    in a letter to a candidate.
    """
    environment = current_app.extensions.get("notify_templates")
    if environment is None:
        environment = jinja2.Environment(
            loader=current_app.jinja_loader,
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 (plain-text mail, never shown as HTML)
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=current_app.debug,
        )
        environment.filters.update(
            roc_date=roc_date, roc_datetime=roc_datetime, roc_moment=mail_moment
        )
        current_app.extensions["notify_templates"] = environment
    return environment


def mail_moment(value):
    """A deadline as letters write it: 民國 115/06/10 23:59（星期三）."""
    return f"民國 {roc_moment(value)}"
