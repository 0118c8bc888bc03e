"""Fixtures: the app on SQLite and on PostgreSQL, a client, accounts of every role, cases.

Every test that uses `app` runs twice, once per database. PostgreSQL tests use a schema of
their own inside the `test` database, so that several test runs on one machine never meet.
Set TEST_DATABASE_URL to point elsewhere; outside CI a missing server skips those tests.
"""

import os
import smtplib
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import g, request_started

from admin_app import create_app
from admin_app.extensions import db
from admin_app.i18n import now_utc

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "correct-horse-42"


def pytest_configure(config):
    config.addinivalue_line("markers", "real_smtp: the test starts its own SMTP server")


@pytest.fixture(autouse=True)
def no_accidental_smtp(request, monkeypatch):
    """Any SMTP connection a test did not ask for fails the test."""
    if request.node.get_closest_marker("real_smtp"):
        return

    def refuse(*args, **kwargs):
        raise AssertionError("this test tried to open an SMTP connection")

    monkeypatch.setattr(smtplib.SMTP, "connect", refuse)


def _postgres_schema():
    """Create a private schema in the test database and return its URL and a cleanup."""
    engine = sa.create_engine(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    except sa.exc.OperationalError as error:
        engine.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {error}")

    def drop():
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()

    return schema, drop


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(request, tmp_path_factory):
    """A database URL per backend, with the schema created once for the session."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.db"
        yield {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"}
        return

    schema, drop = _postgres_schema()
    yield {
        "SQLALCHEMY_DATABASE_URI": PG_URL,
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": True,
            "connect_args": {"options": f"-csearch_path={schema}"},
        },
        "TEST_SCHEMA": schema,
    }
    drop()


@pytest.fixture(scope="session")
def _schema_ready(database):
    """Create the tables once per backend."""
    app = create_app({"TESTING": True, **database})
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return True


@pytest.fixture
def app(database, _schema_ready, tmp_path):
    """The application with empty tables, reference data loaded, uploads in a temp folder."""
    app = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": "test-secret",
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            "MAIL_SUPPRESS_SEND": True,
            "SEND_MAIL_AFTER_COMMIT": False,
            "SERVER_NAME": "localhost",
            **database,
        }
    )

    def forget_the_last_login(sender, **extra):
        # requests made on the test's own thread reuse its app context (Flask does not push a
        # new one), so the user loaded by one request would otherwise answer for the next one,
        # whatever that request's cookie says; production gives every request a fresh context
        g.pop("_login_user", None)

    request_started.connect(forget_the_last_login, app, weak=False)
    with app.app_context():
        _empty_tables()
        from admin_app import demo

        demo.load_reference_data()
        db.session.commit()
        yield app
        db.session.rollback()
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


def _empty_tables():
    tables = list(reversed(db.metadata.sorted_tables))
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in tables)
            connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(table.delete())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_school(app):
    from models import County, School

    def make(name="測試國民中學", county="臺北市"):
        county_row = db.session.scalar(sa.select(County).where(County.name == county))
        school = School(name=name, county=county_row, code=uuid.uuid4().hex[:10])
        db.session.add(school)
        db.session.flush()
        return school

    return make


@pytest.fixture
def make_user(make_school):
    """Factory: make_user("t1", role=Role.applicant, school=..., eligible=True)."""
    from models import Position, Role, User

    def make(login, role=None, school=None, county=None, name=None, eligible=False, cycle=None):
        role = role or Role.applicant
        user = User(
            login=login,
            name=name or f"測試{login}",
            email=f"{login}@example.edu.tw",
            role=role,
            position=Position.teacher if role is Role.applicant else None,
            school=school,
            county=county,
        )
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.flush()
        if eligible:
            make_eligible(user, cycle)
        return user

    return make


def make_eligible(user, cycle=None):
    """Give a person 18 advanced hours in the cycle's range and a 初階 certificate."""
    from datetime import date

    from models import CertificateHeld, CertificateLevel, TrainingRecord

    year = cycle.hours_to_year if cycle is not None else 113
    db.session.add(
        TrainingRecord(
            user=user,
            course="進階培訓",
            hours=18,
            completed_on=date(year + 1912, 3, 1),
            academic_year=year,
        )
    )
    db.session.add(
        CertificateHeld(
            user=user,
            level=CertificateLevel.basic,
            number=f"初階-{user.id}",
            issued_on=date(2020, 1, 1),
        )
    )
    db.session.flush()


@pytest.fixture
def cycle(app):
    """An intake cycle for 學年度 115 whose window is open now."""
    from models import Cycle

    cycle = Cycle(
        academic_year=115,
        name="115 學年度進階專業回饋人才認證",
        opens_at=now_utc() - timedelta(days=10),
        closes_at=now_utc() + timedelta(days=10),
        required_hours=18,
        hours_from_year=113,
        hours_to_year=114,
    )
    db.session.add(cycle)
    db.session.commit()
    return cycle


@pytest.fixture
def school(make_school):
    return make_school()


@pytest.fixture
def teacher(make_user, school, cycle):
    user = make_user("teacher1", school=school, eligible=True, cycle=cycle)
    db.session.commit()
    return user


@pytest.fixture
def other_teacher(make_user, make_school, cycle):
    user = make_user(
        "teacher2", school=make_school("另一所國小", "新北市"), eligible=True, cycle=cycle
    )
    db.session.commit()
    return user


@pytest.fixture
def staff(make_user):
    from models import Role

    user = make_user("staff1", role=Role.staff)
    db.session.commit()
    return user


@pytest.fixture
def admin_user(make_user):
    from models import Role

    user = make_user("admin1", role=Role.admin)
    db.session.commit()
    return user


@pytest.fixture
def reviewer(make_user, make_school):
    from models import Role

    school = make_school("委員服務學校", "臺中市")
    user = make_user("reviewer1", role=Role.reviewer, school=school, county=school.county)
    db.session.commit()
    return user


@pytest.fixture
def county_officer(make_user):
    from models import County, Role

    county = db.session.scalar(sa.select(County).where(County.name == "臺北市"))
    user = make_user("officer1", role=Role.county_officer, county=county)
    db.session.commit()
    return user


@pytest.fixture
def login(client):
    """login(user): log the test client in as that user through the real login page."""

    def do_login(user, password=PASSWORD):
        client.post("/logout")
        response = client.post("/login", data={"login": user.login, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return client

    return do_login


@pytest.fixture
def filled_case(teacher, cycle):
    """The teacher's case with all six items filled, still a draft."""
    from admin_app.demo import fill_application
    from models.application import open_case

    case = open_case(teacher, cycle)
    fill_application(case, teacher)
    db.session.commit()
    return case


@pytest.fixture
def submitted_case(filled_case, teacher):
    from models.application import submit_application

    submit_application(filled_case, teacher)
    db.session.commit()
    return filled_case
