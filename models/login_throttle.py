"""Failed logins counted per account and per address, in a table every app process shares.

A login attempt takes a slot of its account's and of its address's counter *before* the password
is checked, each with one atomic upsert, so parallel guesses sent to several app processes
cannot slip past the limit. A correct password gives the slots back (the account's counter is
cleared); a wrong one keeps them, and when a counter reaches its limit within the window the key
is locked: every attempt is refused until the lock ends, a correct password included. Attempts
during a lock are not counted, so someone who keeps trying does not extend it. A counter whose
window and lock have both ended starts again from nothing; such rows are pruned on every failure.

The account key is the login name as typed, whether or not such an account exists, so that the
answer never tells which accounts exist.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from admin_app.extensions import db
from admin_app.i18n import now_utc

from .types import UTCDateTime

log = logging.getLogger(__name__)

ACCOUNT = "account"
ADDRESS = "address"
SUBJECT_LENGTH = 100


class LoginThrottle(db.Model):
    """One counter of failed logins: for a login name or for a client address."""

    __tablename__ = "login_throttle"

    id = sa.Column(sa.Integer, primary_key=True)
    scope = sa.Column(sa.String(10), nullable=False)
    # the login name as typed, or the client's IP address
    subject = sa.Column(sa.String(SUBJECT_LENGTH), nullable=False)
    window_start = sa.Column(UTCDateTime, nullable=False)
    # failed attempts in the window, plus attempts whose password is being checked right now
    failures = sa.Column(sa.Integer, nullable=False, default=0)
    locked_until = sa.Column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("scope", "subject", name="uq_login_throttle_key"),
        sa.CheckConstraint("scope IN ('account', 'address')", name="known_scope"),
        sa.CheckConstraint("failures >= 0", name="failures_not_negative"),
        sa.Index("ix_login_throttle_window", "window_start"),
    )


@dataclass
class LoginAttempt:
    """The slots one attempt holds; `locked` attempts must be refused unchecked."""

    login: str
    address: str | None
    locked: bool = False
    keys: list = field(default_factory=list)

    def succeeded(self):
        """Clear the account's counter and give the address's slot back."""
        for scope, subject in self.keys:
            if scope == ACCOUNT:
                db.session.execute(sa.delete(LoginThrottle).where(*_key(scope, subject)))
            else:
                _give_back(scope, subject)

    def failed(self):
        """Keep the slots; lock a key whose counter has reached its limit; prune old rows."""
        now = now_utc()
        for scope, subject in self.keys:
            locked = db.session.execute(
                sa.update(LoginThrottle)
                .where(
                    *_key(scope, subject),
                    LoginThrottle.failures >= _limit(scope),
                    _not_locked(now),
                )
                .values(locked_until=now + _minutes("LOGIN_LOCK_MINUTES"))
                .execution_options(synchronize_session=False)
            ).rowcount
            if locked:
                log.warning("login locked for %s %s after repeated failures", scope, subject)
        prune(now)


def begin_attempt(login, address):
    """Take this attempt's slots before the password is checked; the caller commits at once."""
    attempt = LoginAttempt(login=login, address=address)
    keys = [(ADDRESS, address)] if address else []
    keys.append((ACCOUNT, login))

    for scope, subject in keys:
        subject = subject[:SUBJECT_LENGTH]
        count = _take_slot(scope, subject)
        if count is None or count > _limit(scope):
            # locked, or a burst of parallel attempts has already used every slot
            if count is not None:
                _give_back(scope, subject)
            for taken in attempt.keys:
                _give_back(*taken)
            attempt.keys = []
            attempt.locked = True
            return attempt
        attempt.keys.append((scope, subject))
    return attempt


def prune(now=None):
    """Remove counters whose window and lock have both ended."""
    now = now or now_utc()
    db.session.execute(
        sa.delete(LoginThrottle)
        .where(
            LoginThrottle.window_start <= now - _minutes("LOGIN_WINDOW_MINUTES"),
            _not_locked(now),
        )
        .execution_options(synchronize_session=False)
    )


def _take_slot(scope, subject):
    """Count one attempt atomically; None while the key is locked, else the new count."""
    table = LoginThrottle.__table__
    now = now_utc()
    # a counter starts again once its window, or the lock that ended it, is over
    restart = sa.or_(
        table.c.window_start <= now - _minutes("LOGIN_WINDOW_MINUTES"),
        table.c.locked_until <= now,
    )
    statement = _insert_for_dialect()(table).values(
        scope=scope, subject=subject, window_start=now, failures=1, locked_until=None
    )
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.scope, table.c.subject],
        set_={
            "failures": sa.case((restart, 1), else_=table.c.failures + 1),
            "window_start": sa.case(
                (restart, sa.literal(now, UTCDateTime())), else_=table.c.window_start
            ),
            "locked_until": sa.case((restart, sa.null()), else_=table.c.locked_until),
        },
        where=sa.or_(table.c.locked_until.is_(None), table.c.locked_until <= now),
    ).returning(table.c.failures)
    return db.session.execute(statement).scalar()


def _give_back(scope, subject):
    db.session.execute(
        sa.update(LoginThrottle)
        .where(*_key(scope, subject), LoginThrottle.failures > 0)
        .values(failures=LoginThrottle.failures - 1)
        .execution_options(synchronize_session=False)
    )


def _insert_for_dialect():
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _key(scope, subject):
    return LoginThrottle.scope == scope, LoginThrottle.subject == subject


def _not_locked(now):
    return sa.or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now)


def _limit(scope):
    name = "LOGIN_ACCOUNT_FAILURES" if scope == ACCOUNT else "LOGIN_ADDRESS_FAILURES"
    return current_app.config[name]


def _minutes(name):
    return timedelta(minutes=current_app.config[name])
