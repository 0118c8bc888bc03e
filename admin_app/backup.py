"""Backup and restore: one tar.gz archive holding the database, the uploads and job results.

`flask --app admin_app backup DEST_DIR` writes `certification-backup-<UTC time>-<random>.tar.gz`;
`flask --app admin_app restore ARCHIVE [--yes]` brings it back. The archive, format version 1:

    manifest.json               what the archive holds (always the first member, see below)
    database.sqlite             from SQLite: a copy made with sqlite3's online backup API
    tables/<table>.jsonl        from PostgreSQL: every row of every table, parents first
    uploads/<xx>/<32 hex>.pdf   the uploaded PDFs under their stored names
    jobs/<name>                 result files of background jobs still referenced by a job row

manifest.json holds: `format` ("certification-backup"), `version` (1; restore refuses any
other), `created_at` (ISO 8601, UTC), `dialect` (the database it was taken from), `database`
("database.sqlite" or "tables"), `alembic_revision` (list of the schema's migration revisions,
empty when the schema was not made by migrations), `tables` (in dependency order, each with
`name`, `columns` and `rows`), `uploads` and `jobs` (file counts).

A tables/*.jsonl file has one JSON object per row, keyed by column name. Timestamps are ISO 8601
with their offset (always UTC, "+00:00"); dates and times ISO 8601; decimals strings ("18.0"), so
that nothing is lost to floating point; enums their stored value; JSON columns as they are;
NULL is null (restored as SQL NULL, in JSON columns too). The PostgreSQL export is logical and
database-independent, so no pg_dump of the server's exact version is needed, and any archive can
be restored into either database.

Consistency: the database is read first (PostgreSQL: one read-only REPEATABLE READ transaction;
SQLite: the online backup is a snapshot), then the files. An upload is written before its row
is committed and never removed afterwards, so every document row in the archive has its file.

Restore refuses unless every table of the target is empty, or `--yes` is given (then their rows
are deleted first); it refuses an archive whose tables or columns differ from this version of
the system, or whose migration revision differs from the target's. A target without tables
gets its schema first (migrations up to the archive's revision, or the models' tables if the
archive has none). Rows go back in dependency order in one transaction, PostgreSQL sequences are
set past the highest id, files are written, and after the commit the sha256 of every document is
checked against its restored file. Upload files already in the target folder are left alone.
"""

import base64
import contextlib
import datetime as dt
import decimal
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app

from . import jobs, storage
from .extensions import db
from .i18n import _, now_utc

log = logging.getLogger(__name__)

FORMAT = "certification-backup"
VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite"
BATCH = 1000

UPLOAD_MEMBER = re.compile(r"uploads/([0-9a-f]{2}/[0-9a-f]{32}\.pdf)")
JOB_MEMBER = re.compile(r"jobs/([A-Za-z0-9][A-Za-z0-9_.-]{0,200})")
TABLE_MEMBER = re.compile(r"tables/([A-Za-z0-9_]+)\.jsonl")

ALEMBIC_VERSION = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), primary_key=True),
)


class BackupRefused(Exception):
    """A backup or restore that cannot go ahead; the message is for the operator."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = str(message)


@dataclass
class BackupReport:
    """What a backup wrote."""

    path: str
    tables: int
    rows: int
    uploads: int
    jobs: int


@dataclass
class RestoreReport:
    """What a restore brought back, and any document whose file is missing or differs."""

    tables: int = 0
    rows: int = 0
    uploads: int = 0
    jobs: int = 0
    # (document id, stored name, "missing" or "changed")
    problems: list = field(default_factory=list)


# --- writing an archive ---------------------------------------------------------------------


def backup(dest_dir):
    """Write one archive of the database, the uploads and the job results into dest_dir."""
    os.makedirs(dest_dir, exist_ok=True)
    stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(dest_dir, f"certification-backup-{stamp}-{uuid.uuid4().hex[:6]}.tar.gz")

    with tempfile.TemporaryDirectory(prefix="backup-") as work:
        if db.engine.dialect.name == "sqlite":
            manifest, members = _dump_sqlite(work)
        else:
            manifest, members = _dump_tables(work)
        uploads = list(_upload_files())
        jobs = list(_job_files())
        manifest.update(uploads=len(uploads), jobs=len(jobs))
        _write_archive(path, manifest, members, uploads, jobs)

    rows = sum(table["rows"] for table in manifest["tables"])
    log.info(
        "backup written to %s: %s tables, %s rows, %s uploads, %s job files",
        path,
        len(manifest["tables"]),
        rows,
        len(uploads),
        len(jobs),
    )
    return BackupReport(path, len(manifest["tables"]), rows, len(uploads), len(jobs))


def _manifest(dialect, database, revision, tables):
    return {
        "format": FORMAT,
        "version": VERSION,
        "created_at": now_utc().isoformat(),
        "dialect": dialect,
        "database": database,
        "alembic_revision": revision,
        "tables": tables,
    }


def _dump_sqlite(work):
    """Copy the SQLite database with the online backup API; readers and writers may go on."""
    copy_path = os.path.join(work, SQLITE_MEMBER)
    source = db.engine.raw_connection()
    try:
        target = sqlite3.connect(copy_path)
        try:
            source.driver_connection.backup(target)
        finally:
            target.close()
    finally:
        source.close()

    engine = sa.create_engine(f"sqlite:///{copy_path}")
    try:
        with engine.connect() as connection:
            revision = _alembic_revision(connection)
            inspector = sa.inspect(connection)
            present = set(inspector.get_table_names())
            tables = []
            # the columns the copy really has, so that restore can tell an older schema
            for table in db.metadata.sorted_tables:
                if table.name not in present:
                    continue
                columns = [column["name"] for column in inspector.get_columns(table.name)]
                count = connection.scalar(sa.select(sa.func.count()).select_from(table))
                tables.append({"name": table.name, "columns": columns, "rows": count})
    finally:
        engine.dispose()
    return _manifest("sqlite", SQLITE_MEMBER, revision, tables), [(copy_path, SQLITE_MEMBER)]


def _dump_tables(work):
    """Export every table as JSON lines from one consistent, read-only snapshot."""
    members, tables = [], []
    with db.engine.connect() as connection:
        connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            connection.execute(sa.text("SET TRANSACTION READ ONLY"))
            revision = _alembic_revision(connection)
            for table in db.metadata.sorted_tables:
                file_path = os.path.join(work, f"{table.name}.jsonl")
                count = _dump_table(connection, table, file_path)
                tables.append(_table_entry(table, count))
                members.append((file_path, f"tables/{table.name}.jsonl"))
    return _manifest(db.engine.dialect.name, "tables", revision, tables), members


def _dump_table(connection, table, file_path):
    encoders = {column.name: _encoder(column) for column in table.columns}
    query = sa.select(table).order_by(*table.primary_key.columns)
    count = 0
    with open(file_path, "w", encoding="utf-8") as handle:
        result = connection.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for row in result.mappings():
            line = {name: encode(row[name]) for name, encode in encoders.items()}
            handle.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    return count


def _table_entry(table, rows):
    return {"name": table.name, "columns": [column.name for column in table.columns], "rows": rows}


def _alembic_revision(connection):
    if not sa.inspect(connection).has_table(ALEMBIC_VERSION.name):
        return []
    return sorted(connection.scalars(sa.select(ALEMBIC_VERSION.c.version_num)))


def _upload_files():
    """(path, member name) of every stored upload; unfinished `.part` files are left out."""
    root = current_app.config["UPLOAD_FOLDER"]
    for folder, directories, files in os.walk(root):
        directories.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            member = f"uploads/{relative}"
            if UPLOAD_MEMBER.fullmatch(member) and not os.path.islink(path):
                yield path, member
            elif not name.endswith(".part"):
                log.warning("backup skips a file that is not a stored upload: %s", path)


def _job_files():
    """(path, member name) of the result files that job rows still point to."""
    from models import Job

    names = set(db.session.scalars(sa.select(Job.result_path).where(Job.result_path.is_not(None))))
    folder = jobs.jobs_folder()
    for name in sorted(names):
        path = os.path.join(folder, name)
        member = f"jobs/{name}"
        if JOB_MEMBER.fullmatch(member) and os.path.isfile(path) and not os.path.islink(path):
            yield path, member


def _write_archive(path, manifest, members, uploads, jobs):
    """Write the archive under a temporary name, readable by its owner only, then rename it."""
    partial = path + ".part"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            with tarfile.open(fileobj=handle, mode="w:gz", compresslevel=6) as archive:
                content = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
                info = tarfile.TarInfo(MANIFEST)
                info.size = len(content)
                info.mtime = int(now_utc().timestamp())
                info.mode = 0o600
                archive.addfile(info, io.BytesIO(content))
                for file_path, member in [*members, *uploads, *jobs]:
                    _add_file(archive, file_path, member)
                    _forget_members(archive)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        _remove(partial)
        raise


def _add_file(archive, file_path, member):
    info = archive.gettarinfo(file_path, arcname=member)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with open(file_path, "rb") as handle:
        archive.addfile(info, handle)


def _forget_members(archive):
    # XXX: tarfile keeps the header of every member it has written or read; with 600,000
    # uploads that is hundreds of megabytes, and this module never looks a member up again
    archive.members = []


# --- restoring an archive -------------------------------------------------------------------


def restore(archive_path, wipe=False):
    """Restore an archive into this installation's database and folders; see the module text."""
    report = RestoreReport()
    # this process's own session must hold no locks that the wipe would wait for
    db.session.remove()
    with tarfile.open(archive_path, mode="r|gz") as archive:
        first = archive.next()
        if first is None or first.name != MANIFEST:
            raise BackupRefused(_("這不是本系統的備份檔（找不到 manifest.json）。"))
        manifest = _read_manifest(archive, first)
        tables = _tables_of(manifest)
        _prepare_target(manifest, wipe)

        with db.engine.begin() as connection:
            if wipe:
                _wipe(connection)
            _restore_members(archive, connection, manifest, tables, report)
            if connection.dialect.name == "postgresql":
                _reset_sequences(connection, tables)
            _set_revision(connection, manifest["alembic_revision"])

    db.session.remove()
    report.problems = verify_documents()
    log.info(
        "restored %s: %s tables, %s rows, %s uploads, %s job files, %s document problems",
        archive_path,
        report.tables,
        report.rows,
        report.uploads,
        report.jobs,
        len(report.problems),
    )
    return report


def _read_manifest(archive, member):
    try:
        manifest = json.load(archive.extractfile(member))
    except (ValueError, UnicodeDecodeError) as error:
        raise BackupRefused(_("備份檔的 manifest.json 無法讀取。")) from error
    if manifest.get("format") != FORMAT:
        raise BackupRefused(_("這不是本系統的備份檔。"))
    if manifest.get("version") != VERSION:
        raise BackupRefused(
            _(
                "備份檔格式版本為 %(found)s，本系統只能還原版本 %(expected)s。",
                found=manifest.get("version"),
                expected=VERSION,
            )
        )
    return manifest


def _tables_of(manifest):
    """The model tables in dependency order, after checking that the archive has the same ones."""
    ours = {table.name: table for table in db.metadata.sorted_tables}
    theirs = {entry["name"]: entry["columns"] for entry in manifest["tables"]}
    differences = sorted(set(ours) ^ set(theirs))
    differences += sorted(
        name
        for name in set(ours) & set(theirs)
        if set(theirs[name]) != {column.name for column in ours[name].columns}
    )
    if differences:
        raise BackupRefused(
            _(
                "備份檔的資料表結構與本系統版本不同（%(tables)s），無法還原。",
                tables="、".join(differences),
            )
        )
    return db.metadata.sorted_tables


def _prepare_target(manifest, wipe):
    """Create the schema of a database without tables; refuse one holding data unless wiping."""
    inspector = sa.inspect(db.engine)
    present = set(inspector.get_table_names())
    wanted = {table.name for table in db.metadata.sorted_tables}

    if not present & wanted:
        _create_schema(manifest["alembic_revision"])
        return
    missing = wanted - present
    if missing:
        raise BackupRefused(
            _(
                "目標資料庫缺少資料表（%(tables)s），請先執行 init-db 或使用空的資料庫。",
                tables="、".join(sorted(missing)),
            )
        )

    with db.engine.connect() as connection:
        revision = _alembic_revision(connection)
        holding = [
            table.name
            for table in db.metadata.sorted_tables
            if connection.scalar(sa.select(sa.exists().select_from(table)))
        ]
    theirs = manifest["alembic_revision"]
    if revision and theirs and revision != theirs:
        raise BackupRefused(
            _(
                "備份檔的資料庫版本（%(theirs)s）與目標資料庫（%(ours)s）不同，無法還原。",
                theirs="、".join(theirs),
                ours="、".join(revision),
            )
        )
    if holding and not wipe:
        raise BackupRefused(
            _(
                "目標資料庫已有資料（%(tables)s）。確定要清除後還原，請加上 --yes。",
                tables="、".join(holding),
            )
        )


def _create_schema(revision):
    if revision:
        from flask_migrate import upgrade

        for head in revision:
            upgrade(revision=head)
    else:
        db.metadata.create_all(db.engine)


def _wipe(connection):
    tables = list(reversed(db.metadata.sorted_tables))
    if connection.dialect.name == "postgresql":
        quote = connection.dialect.identifier_preparer.quote
        names = ", ".join(quote(table.name) for table in tables)
        connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY"))
    else:
        for table in tables:
            connection.execute(table.delete())
    log.warning("restore: every row of the target database deleted")


def _restore_members(archive, connection, manifest, tables, report):
    """Walk the archive once, in its order: the database first, then the files."""
    by_name = {table.name: table for table in tables}
    upload_root = current_app.config["UPLOAD_FOLDER"]
    jobs_root = jobs.jobs_folder()

    while (member := archive.next()) is not None:
        if member.name == SQLITE_MEMBER and member.isfile():
            _restore_sqlite_copy(archive, member, connection, tables, report)
        elif (match := TABLE_MEMBER.fullmatch(member.name)) and member.isfile():
            if match.group(1) not in by_name:
                raise BackupRefused(_("備份檔含有未知的資料表：%(name)s。", name=match.group(1)))
            rows = _json_rows(archive.extractfile(member), by_name[match.group(1)])
            report.rows += _insert_rows(connection, by_name[match.group(1)], rows)
            report.tables += 1
        elif (match := UPLOAD_MEMBER.fullmatch(member.name)) and member.isfile():
            _write_file(archive.extractfile(member), os.path.join(upload_root, match.group(1)))
            report.uploads += 1
        elif (match := JOB_MEMBER.fullmatch(member.name)) and member.isfile():
            _write_file(archive.extractfile(member), os.path.join(jobs_root, match.group(1)))
            report.jobs += 1
        else:
            log.warning("restore skips an unexpected archive member: %s", member.name)
        _forget_members(archive)


def _restore_sqlite_copy(archive, member, connection, tables, report):
    """Read every table of an SQLite copy and insert its rows, parents first."""
    with tempfile.TemporaryDirectory(prefix="restore-") as work:
        copy_path = os.path.join(work, SQLITE_MEMBER)
        _write_file(archive.extractfile(member), copy_path)
        engine = sa.create_engine(f"sqlite:///{copy_path}")
        try:
            with engine.connect() as source:
                for table in tables:
                    query = sa.select(table).order_by(*table.primary_key.columns)
                    result = source.execution_options(yield_per=BATCH).execute(query)
                    report.rows += _insert_rows(connection, table, result.mappings())
                    report.tables += 1
        finally:
            engine.dispose()


def _json_rows(handle, table):
    decoders = {column.name: _decoder(column) for column in table.columns}
    for line in handle:
        if line.strip():
            values = json.loads(line)
            yield {name: decode(values.get(name)) for name, decode in decoders.items()}


def _insert_rows(connection, table, rows):
    """Insert rows in batches through a copy of the table that stores None as SQL NULL."""
    target = _insertable(table)
    count, batch = 0, []
    for row in rows:
        batch.append(dict(row))
        if len(batch) >= BATCH:
            connection.execute(target.insert(), batch)
            count += len(batch)
            batch = []
    if batch:
        connection.execute(target.insert(), batch)
        count += len(batch)
    return count


def _insertable(table):
    columns = []
    for column in table.columns:
        type_ = column.type
        if isinstance(type_, sa.JSON):
            type_ = sa.JSON(none_as_null=True)
        columns.append(sa.column(column.name, type_))
    return sa.table(table.name, *columns)


def _reset_sequences(connection, tables):
    """Move every id sequence past the highest restored id, so new rows never collide."""
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, sa.Integer):
            continue
        key = keys[0]
        quoted = connection.dialect.identifier_preparer.quote(table.name)
        connection.execute(
            sa.select(
                sa.func.setval(
                    sa.func.pg_get_serial_sequence(quoted, key.name),
                    sa.func.coalesce(sa.func.max(key), 1),
                    sa.func.max(key).is_not(None),
                )
            ).select_from(table)
        )


def _set_revision(connection, revision):
    if not revision:
        return
    ALEMBIC_VERSION.create(connection, checkfirst=True)
    connection.execute(ALEMBIC_VERSION.delete())
    connection.execute(ALEMBIC_VERSION.insert(), [{"version_num": head} for head in revision])


def _write_file(source, path):
    """Copy an archive member to path through a temporary name."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".part"
    try:
        with open(partial, "wb") as handle:
            shutil.copyfileobj(source, handle, 1024 * 1024)
        os.replace(partial, path)
    except BaseException:
        _remove(partial)
        raise


def _remove(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


# --- checking the restored files ------------------------------------------------------------


def verify_documents():
    """(document id, stored name, "missing" or "changed") for every document whose file is off."""
    from models import Document

    problems = []
    query = sa.select(Document.id, Document.stored_name, Document.sha256).order_by(Document.id)
    for document_id, stored_name, expected in db.session.execute(query):
        path = storage.path_of(stored_name)
        if not os.path.isfile(path):
            problems.append((document_id, stored_name, "missing"))
        elif _sha256(path) != expected:
            problems.append((document_id, stored_name, "changed"))
    db.session.rollback()
    for document_id, stored_name, problem in problems:
        log.error("document %s (%s) after restore: %s", document_id, stored_name, problem)
    return problems


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- row encoding ---------------------------------------------------------------------------


def _kind(column):
    type_ = column.type
    if isinstance(type_, sa.types.TypeDecorator):
        type_ = type_.impl_instance
    for kind, classes in (
        ("json", sa.JSON),
        ("enum", sa.Enum),
        ("datetime", sa.DateTime),
        ("date", sa.Date),
        ("time", sa.Time),
        ("float", sa.Float),
        ("decimal", sa.Numeric),
        ("binary", sa.LargeBinary),
    ):
        if isinstance(type_, classes):
            return kind
    return "plain"


def _encoder(column):
    kind = _kind(column)

    def encode(value):
        if value is None or kind in ("json", "plain", "float"):
            return value
        if kind == "enum":
            return value.value if hasattr(value, "value") else value
        if kind in ("datetime", "date", "time"):
            return value.isoformat()
        if kind == "decimal":
            return str(value)
        return base64.b64encode(value).decode("ascii")

    return encode


def _decoder(column):
    kind = _kind(column)
    parse = {
        "datetime": dt.datetime.fromisoformat,
        "date": dt.date.fromisoformat,
        "time": dt.time.fromisoformat,
        "decimal": decimal.Decimal,
        "binary": base64.b64decode,
    }.get(kind)

    def decode(value):
        if value is None or parse is None:
            return value
        return parse(value)

    return decode
