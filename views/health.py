"""`GET /healthz` for load balancers: can this process reach the database and the upload folder?

The answer is JSON and says only "ok" or what is wrong, never why: the cause goes to the log.
The page needs no login, touches no session (so it sets no cookie) and runs one `SELECT 1`.

The database is asked on an engine of its own, not the app's pool: the app's pool has no connect
timeout and may wait for a free connection when every one is busy, and a health check that hangs
would tie up a worker per poll. This engine opens a fresh connection each time (nothing idle is
kept open, and a database restart is noticed at once), bounded by `HEALTHZ_TIMEOUT` seconds for
the connection and again for the statement.
"""

import logging
import os
import tempfile

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)

# the default of the setting this module reads (admin_app/config.py may override it)
HEALTHZ_TIMEOUT = 2
ENGINE_KEY = "healthz_engine"


@blueprint.route("/healthz")
def healthz():
    """Report the database and the upload folder as "ok", or answer 503."""
    database = "ok" if _database_answers() else "unavailable"
    uploads = "ok" if _uploads_writable() else "unwritable"
    healthy = database == "ok" and uploads == "ok"

    body = {"status": "ok" if healthy else "error", "database": database, "uploads": uploads}
    response = jsonify(body)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def _database_answers():
    """Whether a fresh connection runs `SELECT 1` within the timeout."""
    try:
        with _engine().connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as error:
        # the message can hold the server's address; it is for the log, never the answer
        log.warning("health check: database unavailable: %s", error)
        return False
    return True


def _uploads_writable():
    """Whether a small file can be created in, and removed from, the upload folder."""
    folder = current_app.config["UPLOAD_FOLDER"]
    try:
        # `.part` is the suffix of unfinished files, which the backup leaves out silently
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".healthz-", suffix=".part") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as error:
        log.warning("health check: upload folder %s is not writable: %s", folder, error)
        return False
    return True


def _engine():
    """This process's health-check engine, made at the first check (so after any fork)."""
    engine = current_app.extensions.get(ENGINE_KEY)
    if engine is None:
        engine = _make_engine(current_app.config)
        current_app.extensions[ENGINE_KEY] = engine
    return engine


def _make_engine(config):
    """An engine on the app's database with bounded connect and statement times."""
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    timeout = config.get("HEALTHZ_TIMEOUT", HEALTHZ_TIMEOUT)
    options = config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
    connect_args = dict(options.get("connect_args") or {})

    if url.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = max(2, int(timeout))
        connect_args["options"] = _with_statement_timeout(url, connect_args, timeout)
    elif url.get_backend_name() == "sqlite":
        connect_args["timeout"] = timeout
    return sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)


def _with_statement_timeout(url, connect_args, timeout):
    """The libpq `options` the app connects with, plus a statement timeout.

    An explicit `options` replaces PGOPTIONS and the URL's own, so all three are carried over.
    """
    existing = (
        connect_args.get("options") or url.query.get("options") or os.environ.get("PGOPTIONS", "")
    )
    if isinstance(existing, tuple):
        existing = " ".join(existing)
    return f"{existing} -c statement_timeout={int(timeout * 1000)}".strip()
