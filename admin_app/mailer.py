"""Delivering the outgoing mail queue: the one wrapper around Flask-Mail.

A decision queues its e-mail as an `OutgoingMail` row in the decision's own transaction
(`models.notify`). Delivery happens afterwards, in two places:

- right after the commit of the web request that queued it, one quick attempt (`init_app`,
  `SEND_MAIL_AFTER_COMMIT`); every error is logged and swallowed, so a mail server that is
  down, slow or refusing never blocks or breaks a request;
- a worker process, `flask --app admin_app send-mail --loop`, that sends what is due, retries
  failures with back-off and recovers mails of a worker that died.

A mail is never sent twice by two processes: it is claimed (`pending` -> `sending`) and the
claim committed before the SMTP conversation, and marked `sent` in a commit of its own right
after it. Only a worker that dies between the SMTP server's acceptance and that commit leaves a
mail that is sent again once its claim is stale; the Message-ID is the same both times, so mail
clients can tell.
"""

import logging
import os
import smtplib
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr

import sqlalchemy as sa
from flask import current_app
from flask_mail import BadHeaderError, Connection, Message
from sqlalchemy import event
from sqlalchemy.orm import Session

from .extensions import db, mail
from .i18n import now_utc

log = logging.getLogger(__name__)

# defaults of the settings this module reads (admin_app/config.py may override them)
MAX_ATTEMPTS = 8
AFTER_COMMIT_TIMEOUT = 3
AFTER_COMMIT_LIMIT = 20
# a `sending` claim older than this belongs to a worker that died
STALE_CLAIM = timedelta(minutes=10)
# mails claimed at once; a claim is given up (returned to pending) after half of STALE_CLAIM
BATCH_SIZE = 20
MAX_BACKOFF = timedelta(hours=1)

# ids of mails flushed in the current transaction, and of those committed
_FLUSHED = "outgoing_mail_flushed"
_COMMITTED = "outgoing_mail_committed"


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    recovered: int = 0

    @property
    def handled(self):
        """Mails tried in the pass."""
        return self.sent + self.retrying + self.failed

    def __str__(self):
        return (
            f"sent {self.sent}, retrying {self.retrying}, failed {self.failed}, "
            f"recovered {self.recovered}"
        )


class _ServerUnreachable(Exception):
    """The SMTP server could not be reached; the pass stops and the rest waits."""


def init_app(app):
    """Make one delivery attempt for the mails a request queued, after its commit."""

    @app.after_request
    def deliver_after_commit(response):
        ids = db.session.info.pop(_COMMITTED, None)
        if not ids or not current_app.config["SEND_MAIL_AFTER_COMMIT"]:
            return response
        # a bulk action's thousands of mails are the worker's job, not this request's
        limit = current_app.config.get("MAIL_AFTER_COMMIT_LIMIT", AFTER_COMMIT_LIMIT)
        timeout = current_app.config.get("MAIL_AFTER_COMMIT_TIMEOUT", AFTER_COMMIT_TIMEOUT)
        try:
            deliver_pending(
                ids=sorted(ids)[:limit], timeout=timeout, time_budget=timeout, recover=False
            )
        except Exception:
            log.exception("mail delivery after commit failed; the worker will retry")
        return response


@event.listens_for(Session, "after_flush")
def _remember_queued_mail(session, flush_context):
    from models import OutgoingMail

    ids = [item.id for item in session.new if isinstance(item, OutgoingMail)]
    if ids:
        session.info.setdefault(_FLUSHED, set()).update(ids)


@event.listens_for(Session, "after_commit")
def _mail_committed(session):
    ids = session.info.pop(_FLUSHED, None)
    if ids:
        session.info.setdefault(_COMMITTED, set()).update(ids)


@event.listens_for(Session, "after_rollback")
def _mail_rolled_back(session):
    session.info.pop(_FLUSHED, None)


def worker_name():
    """This process and thread, as recorded in `claimed_by`."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[-80:]


def deliver_pending(
    limit=None,
    worker_id=None,
    *,
    ids=None,
    moment=None,
    timeout=None,
    time_budget=None,
    recover=True,
    stop=None,
):
    """Send the mails that are due, each at most once; returns a DeliveryReport.

    `ids` restricts the pass to those mails, `limit` to that many, `moment` is "now" for what
    is due, `timeout` the SMTP timeout in seconds (default MAIL_TIMEOUT). The pass ends early,
    giving the mails it has not tried back to the queue, when the server cannot be reached,
    the `stop` event is set, or more than `time_budget` seconds have passed.
    """
    worker_id = worker_id or worker_name()
    moment = moment or now_utc()
    timeout = timeout if timeout is not None else current_app.config["MAIL_TIMEOUT"]
    report = DeliveryReport()
    started = time.monotonic()

    def should_stop():
        return (stop is not None and stop.is_set()) or (
            time_budget is not None and time.monotonic() - started > time_budget
        )

    with Session(db.engine) as session:
        if recover:
            report.recovered = recover_stale_claims(session, moment)
        sender = _Sender(timeout)
        try:
            _send_due(session, sender, worker_id, moment, ids, limit, report, should_stop)
        finally:
            sender.close()
            session.rollback()

    if report.handled or report.recovered:
        log.info("mail delivery by %s: %s", worker_id, report)
    return report


def _send_due(session, sender, worker_id, moment, ids, limit, report, should_stop):
    """Claim and send batch after batch until nothing is due or the pass must end."""
    while limit is None or report.handled < limit:
        size = BATCH_SIZE if limit is None else min(BATCH_SIZE, limit - report.handled)
        batch = _claim(session, worker_id, moment, ids, size)
        if not batch:
            return
        claimed_at = now_utc()

        for index, mail_row in enumerate(batch):
            # a claim held too long would be taken for a dead worker's and sent again
            if should_stop() or now_utc() - claimed_at > STALE_CLAIM / 2:
                _release(session, worker_id, batch[index:])
                return
            try:
                _deliver_one(session, worker_id, sender, mail_row, report)
            except _ServerUnreachable:
                _release(session, worker_id, batch[index + 1 :])
                return


def resend(mail_ids):
    """Put failed mails back in the queue with their attempts reset; returns how many."""
    from models import MailState, OutgoingMail

    result = db.session.execute(
        sa.update(OutgoingMail)
        .where(OutgoingMail.id.in_(list(mail_ids)), OutgoingMail.state == MailState.failed)
        .values(
            state=MailState.pending,
            attempts=0,
            next_attempt_at=now_utc(),
            claimed_at=None,
            claimed_by=None,
        )
        .execution_options(synchronize_session=False)
    )
    log.info("%s failed mails queued again", result.rowcount)
    return result.rowcount


def recover_stale_claims(session, moment=None):
    """Return to the queue the mails a worker claimed and never finished (it died)."""
    from models import MailState, OutgoingMail

    moment = moment or now_utc()
    # a mail that keeps killing its worker must not keep coming back
    exhausted = OutgoingMail.attempts + 1 >= _max_attempts()
    result = session.execute(
        sa.update(OutgoingMail)
        .where(
            OutgoingMail.state == MailState.sending,
            OutgoingMail.claimed_at < moment - STALE_CLAIM,
        )
        .values(
            state=sa.case((exhausted, MailState.failed.value), else_=MailState.pending.value),
            attempts=OutgoingMail.attempts + 1,
            last_error="寄送程序中斷，重新排入佇列",
            next_attempt_at=moment,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if result.rowcount:
        log.warning("%s mails of a stopped worker returned to the queue", result.rowcount)
    return result.rowcount


def backoff(attempts):
    """How long to wait after the n-th failed attempt: 1, 2, 4, 8 ... minutes, at most 1 hour."""
    return min(timedelta(minutes=2 ** min(attempts - 1, 10)), MAX_BACKOFF)


# --- claiming -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    id: int
    recipient: str
    subject: str
    body: str
    attempts: int


def _claim(session, worker_id, moment, ids, size):
    """Claim up to `size` due mails for this worker and commit the claim; returns them."""
    from models import MailState, OutgoingMail

    due = (
        sa.select(OutgoingMail.id)
        .where(OutgoingMail.state == MailState.pending, OutgoingMail.next_attempt_at <= moment)
        .order_by(OutgoingMail.next_attempt_at, OutgoingMail.id)
        .limit(size)
    )
    if ids is not None:
        due = due.where(OutgoingMail.id.in_(ids))
    claim = {"state": MailState.sending, "claimed_by": worker_id, "claimed_at": now_utc()}

    if session.get_bind().dialect.name == "postgresql":
        # rows another worker is claiming right now are skipped, not waited for
        claimed = session.scalars(due.with_for_update(skip_locked=True)).all()
        if claimed:
            session.execute(
                sa.update(OutgoingMail)
                .where(OutgoingMail.id.in_(claimed))
                .values(**claim)
                .execution_options(synchronize_session=False)
            )
    else:
        # SQLite has no row locks: each row is taken by a conditional UPDATE that only one
        # writer can win
        claimed = []
        for mail_id in session.scalars(due).all():
            won = session.execute(
                sa.update(OutgoingMail)
                .where(OutgoingMail.id == mail_id, OutgoingMail.state == MailState.pending)
                .values(**claim)
                .execution_options(synchronize_session=False)
            ).rowcount
            if won == 1:
                claimed.append(mail_id)

    rows = []
    if claimed:
        rows = session.execute(
            sa.select(
                OutgoingMail.id,
                OutgoingMail.recipient,
                OutgoingMail.subject,
                OutgoingMail.body,
                OutgoingMail.attempts,
            )
            .where(OutgoingMail.id.in_(claimed))
            .order_by(OutgoingMail.id)
        ).all()
    session.commit()
    return [_Claimed(*row) for row in rows]


def _release(session, worker_id, mails):
    """Give claimed mails that were not attempted back to the queue as they were."""
    from models import MailState

    if mails:
        _finish(session, worker_id, [claimed.id for claimed in mails], state=MailState.pending)


def _finish(session, worker_id, mail_ids, **values):
    """Record the outcome of this worker's claim on some mails, in a commit of its own."""
    from models import MailState, OutgoingMail

    result = session.execute(
        sa.update(OutgoingMail)
        .where(
            OutgoingMail.id.in_(mail_ids),
            OutgoingMail.state == MailState.sending,
            OutgoingMail.claimed_by == worker_id,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if result.rowcount != len(mail_ids):
        log.warning("mails %s were no longer claimed by %s", mail_ids, worker_id)


# --- sending --------------------------------------------------------------------------------


def _deliver_one(session, worker_id, sender, mail_row, report):
    """Send one claimed mail and record the outcome; raise _ServerUnreachable to stop."""
    from models import MailState

    try:
        sender.send(_message(mail_row))
    except Exception as error:
        _record_failure(session, worker_id, mail_row, error, report)
        if isinstance(error, _ServerUnreachable):
            raise
        return

    done = {"state": MailState.sent, "sent_at": now_utc(), "last_error": ""}
    _finish(session, worker_id, [mail_row.id], **done)
    report.sent += 1


def _record_failure(session, worker_id, mail_row, error, report):
    """Fail the mail for good, or put it back in the queue for a later attempt."""
    from models import MailState

    reason = _describe(error)
    attempts = mail_row.attempts + 1
    outcome = {"attempts": attempts, "last_error": reason}
    if _is_permanent(error) or attempts >= _max_attempts():
        _finish(session, worker_id, [mail_row.id], state=MailState.failed, **outcome)
        report.failed += 1
        log.warning("mail %s failed after %s attempts: %s", mail_row.id, attempts, reason)
        return

    outcome["next_attempt_at"] = now_utc() + backoff(attempts)
    _finish(session, worker_id, [mail_row.id], state=MailState.pending, **outcome)
    report.retrying += 1
    log.warning("mail %s not sent (attempt %s): %s", mail_row.id, attempts, reason)


def _message(mail_row):
    """The Flask-Mail message of a queued mail, with a Message-ID stable across retries."""
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = Message(
        subject=mail_row.subject,
        recipients=[mail_row.recipient],
        body=mail_row.body,
        sender=sender,
        charset="utf-8",
    )
    message.msgId = f"<outgoing-mail-{mail_row.id}@{domain}>"
    return message


def _max_attempts():
    return current_app.config.get("MAIL_MAX_ATTEMPTS", MAX_ATTEMPTS)


def _is_permanent(error):
    """Whether the server refused this mail for good (5xx), as opposed to for now."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _message in error.recipients.values())
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500
    return isinstance(error, BadHeaderError | ValueError)


def _describe(error):
    """The reason for a failure, as staff will read it next to the mail."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{recipient}: {code} {_text(message)}"
            for recipient, (code, message) in error.recipients.items()
        )
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_text(error.smtp_error)}"
    cause = error.__cause__ if isinstance(error, _ServerUnreachable) else error
    return f"{type(cause).__name__}: {cause}"[:1000]


def _text(message):
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


class _Connection(Connection):
    """Flask-Mail's connection with a timeout, which Flask-Mail itself does not set."""

    def __init__(self, state, timeout):
        super().__init__(state)
        self.timeout = timeout

    def configure_host(self):
        state = self.mail
        smtp = smtplib.SMTP_SSL if state.use_ssl else smtplib.SMTP
        host = smtp(state.server, state.port, timeout=self.timeout)
        if state.use_tls:
            host.starttls()
        if state.username and state.password:
            host.login(state.username, state.password)
        return host


class _Sender:
    """One SMTP connection for a delivery pass, opened on the first mail and reopened if lost."""

    def __init__(self, timeout):
        # read the settings now rather than from init_app, so that they can change at runtime
        self.state = mail.init_mail(current_app.config, current_app.debug, current_app.testing)
        self.timeout = timeout
        self.connection = None

    def send(self, message):
        if self.connection is None:
            connection = _Connection(self.state, self.timeout)
            try:
                connection.host = None if self.state.suppress else connection.configure_host()
            except (OSError, smtplib.SMTPException) as error:
                raise _ServerUnreachable(str(error)) from error
            self.connection = connection
        try:
            self.connection.send(message)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError):
            raise
        except Exception:
            self.close()
            raise

    def close(self):
        if self.connection is not None and self.connection.host is not None:
            try:
                self.connection.host.quit()
            except (OSError, smtplib.SMTPException):
                self.connection.host.close()
        self.connection = None
