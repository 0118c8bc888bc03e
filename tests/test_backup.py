"""Backup and restore on both databases: every row and every file comes back exactly, the
restored system keeps working, and a restore that would lose data or trust a bad archive is
refused."""

import io
import json
import os
import tarfile
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from admin_app import backup, create_app
from admin_app.extensions import db
from admin_app.i18n import now_utc
from models import AuditEvent, Case, CaseState, Job, JobState, User, workflow

from .conftest import PASSWORD, PG_URL
from .factories import case_in, reviewers

S = CaseState
STATES = [
    (S.draft, 1),
    (S.formal_review, 1),
    (S.returned, 1),
    (S.under_review, 1),
    (S.awaiting_verdict, 2),
    (S.failed, 1),
    (S.announced, 1),
]


@pytest.fixture
def populated(app, cycle, staff, tmp_path):
    """Cases in several states (each with three uploaded PDFs) and a finished export job."""
    app.config["JOBS_FOLDER"] = str(tmp_path / "jobs")
    panel = reviewers(cycle.reviewers_per_case)
    cases = {
        (state, round_): case_in(state, cycle, staff, round_=round_, panel=panel)
        for state, round_ in STATES
    }
    os.makedirs(app.config["JOBS_FOLDER"])
    with open(os.path.join(app.config["JOBS_FOLDER"], "1-result.xlsx"), "wb") as handle:
        handle.write(b"PK\x03\x04 a workbook")
    db.session.add(
        Job(
            kind="export",
            parameters={"county": None, "學年度": 115},
            state=JobState.done,
            result_path="1-result.xlsx",
            result_name="案件清單.xlsx",
            summary=None,
            created_by=staff,
            finished_at=now_utc(),
        )
    )
    db.session.commit()
    return cases


@pytest.fixture
def fresh(database, tmp_path):
    """An app on an empty database (no tables) of the same backend, with empty folders."""
    schema = None
    if "TEST_SCHEMA" in database:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        pg_schema(f"CREATE SCHEMA {schema}")
        settings = {
            "SQLALCHEMY_DATABASE_URI": PG_URL,
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": f"-csearch_path={schema}"}},
        }
    else:
        settings = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'restored.db'}"}
    target = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": "test-secret",
            "UPLOAD_FOLDER": str(tmp_path / "restored-uploads"),
            "JOBS_FOLDER": str(tmp_path / "restored-jobs"),
            "MAIL_SUPPRESS_SEND": True,
            "SERVER_NAME": "localhost",
            **settings,
        }
    )
    yield target
    with target.app_context():
        db.session.remove()
        db.engine.dispose()
    if schema is not None:
        pg_schema(f"DROP SCHEMA {schema} CASCADE")


def pg_schema(statement):
    """Create or drop a schema; a connection left open by mistake fails the test, not hangs it."""
    engine = sa.create_engine(PG_URL, connect_args={"options": "-clock_timeout=10s"})
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def run(app, *args):
    """Run a CLI command against the given app (its own app context, its own database)."""
    db.session.commit()
    with app.app_context():
        result = app.test_cli_runner().invoke(args=list(args))
        db.session.remove()
    return result


def make_backup(app, folder):
    result = run(app, "backup", str(folder))
    assert result.exit_code == 0, result.output
    [name] = os.listdir(folder)
    assert name.startswith("certification-backup-") and name.endswith(".tar.gz")
    return os.path.join(folder, name)


def table_rows(app):
    """Every row of every table, ordered by primary key."""
    with app.app_context():
        with db.engine.connect() as connection:
            rows = {
                table.name: [
                    tuple(row)
                    for row in connection.execute(
                        sa.select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for table in db.metadata.sorted_tables
            }
        db.session.remove()
    return rows


def folder_files(folder):
    """{relative path: bytes} of every file under a folder."""
    found = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = handle.read()
    return found


def test_backup_then_restore_into_an_empty_database(app, populated, fresh, tmp_path):
    archive = make_backup(app, tmp_path / "backups")
    before = table_rows(app)
    uploads = folder_files(app.config["UPLOAD_FOLDER"])
    assert len(uploads) == 3 * len(STATES)
    assert sum(len(rows) for rows in before.values()) > 100

    result = run(fresh, "restore", archive)

    assert result.exit_code == 0, result.output
    assert "所有文件的檔案都已核對 sha256，內容一致。" in result.output
    after = table_rows(fresh)
    for table, rows in before.items():
        assert after[table] == rows, table
    assert folder_files(fresh.config["UPLOAD_FOLDER"]) == uploads
    assert folder_files(fresh.config["JOBS_FOLDER"]) == {"1-result.xlsx": b"PK\x03\x04 a workbook"}


def test_the_restored_system_works(app, populated, fresh, staff, tmp_path):
    archive = make_backup(app, tmp_path / "backups")
    # XXX: read everything from the source first: a source object touched while the target's
    # app context is pushed would load itself through the target's engine
    draft_id = populated[(S.draft, 1)].id
    waiting_id = populated[(S.formal_review, 1)].id
    applicant_login = populated[(S.draft, 1)].applicant.login
    staff_id = staff.id
    last_event = db.session.scalar(sa.select(sa.func.max(AuditEvent.id)))
    assert run(fresh, "restore", archive).exit_code == 0

    with fresh.app_context():
        client = fresh.test_client()
        response = client.post("/login", data={"login": applicant_login, "password": PASSWORD})
        assert response.status_code == 302
        assert client.get("/apply").status_code == 200
        assert client.post("/apply/submit").status_code == 302

        db.session.expire_all()
        assert db.session.get(Case, draft_id).state is S.formal_review
        workflow.pass_formal_review(
            [db.session.get(Case, waiting_id)], db.session.get(User, staff_id)
        )
        db.session.commit()

        db.session.expire_all()
        assert db.session.get(Case, waiting_id).state is S.awaiting_assignment
        new_ids = list(
            db.session.scalars(
                sa.select(AuditEvent.id).where(AuditEvent.id > last_event).order_by(AuditEvent.id)
            )
        )
        db.session.remove()
    # login, submit and the formal review, each with a fresh id after the restored ones
    assert len(new_ids) == 3 and new_ids[0] == last_event + 1


def test_restore_refuses_a_database_with_data(app, populated, tmp_path):
    archive = make_backup(app, tmp_path / "backups")
    before = table_rows(app)

    result = run(app, "restore", archive)

    assert result.exit_code != 0
    assert "目標資料庫已有資料" in result.output and "--yes" in result.output
    assert table_rows(app) == before


def test_restore_with_yes_replaces_what_changed_since(app, populated, staff, tmp_path):
    archive = make_backup(app, tmp_path / "backups")
    before = table_rows(app)
    uploads = folder_files(app.config["UPLOAD_FOLDER"])
    case = populated[(S.formal_review, 1)]
    workflow.pass_formal_review([case], staff)
    db.session.commit()
    assert table_rows(app) != before

    result = run(app, "restore", archive, "--yes")

    assert result.exit_code == 0, result.output
    assert table_rows(app) == before
    assert folder_files(app.config["UPLOAD_FOLDER"]) == uploads


def rewrite_archive(source, target, change):
    """Copy an archive member by member, letting `change(name, content)` alter the content."""
    with tarfile.open(source, "r:gz") as old, tarfile.open(target, "w:gz") as new:
        for member in old.getmembers():
            content = old.extractfile(member).read()
            content = change(member.name, content)
            member.size = len(content)
            new.addfile(member, io.BytesIO(content))
    return target


def test_a_changed_upload_is_reported_after_restore(app, populated, fresh, tmp_path):
    archive = make_backup(app, tmp_path / "backups")
    altered = []

    def corrupt_one(name, content):
        if name.startswith("uploads/") and not altered:
            altered.append(name)
            return content + b"\n% tampered"
        return content

    tampered = rewrite_archive(archive, tmp_path / "tampered.tar.gz", corrupt_one)

    result = run(fresh, "restore", str(tampered))

    assert result.exit_code != 0
    stored_name = altered[0].removeprefix("uploads/")
    assert stored_name in result.output and "sha256 不符" in result.output


def test_archives_of_another_format_version_are_refused(app, populated, fresh, tmp_path):
    archive = make_backup(app, tmp_path / "backups")

    def future(name, content):
        if name == "manifest.json":
            manifest = json.loads(content)
            manifest["version"] = backup.VERSION + 1
            return json.dumps(manifest).encode()
        return content

    result = run(fresh, "restore", str(rewrite_archive(archive, tmp_path / "v2.tar.gz", future)))

    assert result.exit_code != 0
    assert f"本系統只能還原版本 {backup.VERSION}" in result.output


def test_archives_with_other_columns_are_refused(app, populated, fresh, tmp_path):
    archive = make_backup(app, tmp_path / "backups")

    def drop_column(name, content):
        if name == "manifest.json":
            manifest = json.loads(content)
            for table in manifest["tables"]:
                if table["name"] == "case":
                    table["columns"].remove("appeal_deadline")
            return json.dumps(manifest).encode()
        return content

    result = run(
        fresh, "restore", str(rewrite_archive(archive, tmp_path / "old.tar.gz", drop_column))
    )

    assert result.exit_code != 0
    assert "資料表結構與本系統版本不同（case）" in result.output


def test_a_file_that_is_not_a_backup_is_refused(app, fresh, tmp_path):
    path = tmp_path / "other.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        content = b"hello"
        info = tarfile.TarInfo("readme.txt")
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))

    result = run(fresh, "restore", str(path))

    assert result.exit_code != 0 and "找不到 manifest.json" in result.output


def test_manifest_describes_the_archive(app, populated, tmp_path):
    archive = make_backup(app, tmp_path / "backups")

    with tarfile.open(archive, "r:gz") as opened:
        names = opened.getnames()
        manifest = json.load(opened.extractfile("manifest.json"))

    assert names[0] == "manifest.json"
    assert manifest["format"] == "certification-backup" and manifest["version"] == backup.VERSION
    assert manifest["uploads"] == 3 * len(STATES) and manifest["jobs"] == 1
    assert [table["name"] for table in manifest["tables"]] == [
        table.name for table in db.metadata.sorted_tables
    ]
    if db.engine.dialect.name == "sqlite":
        assert "database.sqlite" in names
    else:
        assert {f"tables/{table.name}.jsonl" for table in db.metadata.sorted_tables} <= set(names)
        case_rows = [
            json.loads(line) for line in opened_lines(archive, "tables/case.jsonl") if line.strip()
        ]
        assert case_rows[0]["created_at"].endswith("+00:00")
        cycle = json.loads(opened_lines(archive, "tables/cycle.jsonl")[0])
        assert isinstance(cycle["required_hours"], str)
        assert Decimal(cycle["required_hours"]) == 18
    assert oct(os.stat(archive).st_mode & 0o777) == "0o600"


def opened_lines(archive, name):
    with tarfile.open(archive, "r:gz") as opened:
        return opened.extractfile(name).read().decode("utf-8").splitlines()
