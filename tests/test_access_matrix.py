"""Who may reach what: every route of the URL map, requested as every kind of person.

The routes are read from `app.url_map`, so a route added later fails `test_every_route_is_declared`
until a line of `EXPECTED_TABLE` covers it. Every id in a URL names an object of someone else: the
candidate 甄秘密 (the "owner") and what belongs to her case — documents, records, messages, the
review assignment of her committee member, the spreadsheet her county's officer asked for. Each
answer is checked against the table, and no one outside her file may read her name, e-mail,
record text or file names in any answer, while she never reads a reviewer's or a clerk's name.

CSRF protection is on, and every POST carries a valid token, so that the answer is the access
check's and not the token check's (the token check has its own test at the end).
"""

import fnmatch
import re

import pytest
import sqlalchemy as sa
from flask import url_for

from admin_app import jobs
from admin_app.extensions import db
from exports import imports, spreadsheets
from models import (
    AuditEvent,
    Case,
    CaseState,
    County,
    Cycle,
    Document,
    FormEntry,
    FormTemplate,
    Job,
    Notification,
    OutgoingMail,
    ReviewAssignment,
    Role,
    School,
    TrainingRecord,
    User,
)

from .conftest import PASSWORD, make_eligible
from .factories import case_in

ROLES = (
    "anonymous",
    "owner",  # 甄秘密, whose case, documents and messages the URLs name
    "teacher",  # another candidate, with a case of her own
    "reviewer",  # assigned to the owner's case
    "other_reviewer",  # assigned to the other teacher's case only
    "officer",  # 臺北市, the owner's county
    "other_officer",  # 新北市
    "staff",
    "admin",
)

# What each role gets, route by route: `ok` a page or a redirect that is not to the login page,
# `login` the login page, a number that status. Lines are METHOD RULE and then one answer per
# role in the order of ROLES; a rule may end in `*` to cover every route starting so. The first
# line that matches a route decides, so specific lines come before the patterns they narrow.
EXPECTED_TABLE = """
#                                              anon  owner teach rev   rev2  off   off2  staff admin
GET  /static/*                                 ok    ok    ok    ok    ok    ok    ok    ok    ok
GET  /admin/assets/*                           ok    ok    ok    ok    ok    ok    ok    ok    ok
GET  /admin/static/*                           ok    ok    ok    ok    ok    ok    ok    ok    ok
GET  /healthz                                  ok    ok    ok    ok    ok    ok    ok    ok    ok
GET  /favicon.ico                              ok    ok    ok    ok    ok    ok    ok    ok    ok
GET  /login                                    ok    ok    ok    ok    ok    ok    ok    ok    ok
POST /login                                    ok    ok    ok    ok    ok    ok    ok    ok    ok
POST /logout                                   login login login login login login login login login
GET  /password                                 login ok    ok    ok    ok    ok    ok    ok    ok
POST /password                                 login ok    ok    ok    ok    ok    ok    ok    ok

# the portal: pages of one's own case; ids of someone else's are not found
GET  /                                         login ok    ok    ok    ok    ok    ok    ok    ok
GET  /profile                                  login ok    ok    ok    ok    ok    ok    ok    ok
GET  /messages                                 login ok    ok    ok    ok    ok    ok    ok    ok
GET  /messages/<int:message_id>                login ok    404   404   404   404   404   404   404
GET  /apply/document/<int:document_id>         login ok    404   403   403   403   403   403   403
GET  /apply/flow/<int:case_id>                 login ok    404   403   403   403   403   403   403
GET  /apply/comments/<int:case_id>             login ok    404   403   403   403   403   403   403
GET  /apply*                                   login ok    ok    403   403   403   403   403   403
POST /apply*                                   login ok    ok    403   403   403   403   403   403

# reviewers reach a case only through their own assignment
GET  /review/                                  login 403   403   ok    ok    403   403   403   403
GET  /review/<int:assignment_id>               login 403   403   ok    404   403   403   403   403
POST /review/<int:assignment_id>               login 403   403   ok    404   403   403   403   403
GET  /review/<int:assignment_id>/document/*    login 403   403   ok    404   403   403   403   403

# county officers: their own county's spreadsheets; staff are sent on to the back office
GET  /county/                                  login 403   403   403   403   ok    ok    ok    ok
POST /county/exports                           login 403   403   403   403   ok    ok    403   403
GET  /county/jobs/*                            login 403   403   403   403   ok    404   403   403

# the back office; the audit trail, the uploaded documents and the counties are read-only,
# even for staff
GET  /admin/audit/new/                         login 403   403   403   403   403   403   403   403
GET  /admin/audit/edit/                        login 403   403   403   403   403   403   403   403
POST /admin/audit/*                            login 403   403   403   403   403   403   403   403
GET  /admin/document/new/                      login 403   403   403   403   403   403   403   403
GET  /admin/document/edit/                     login 403   403   403   403   403   403   403   403
POST /admin/document/*                         login 403   403   403   403   403   403   403   403
GET  /admin/county/new/                        login 403   403   403   403   403   403   403   403
GET  /admin/county/edit/                       login 403   403   403   403   403   403   403   403
POST /admin/county/*                           login 403   403   403   403   403   403   403   403
# the outgoing mail is written by decisions and the mail worker only; staff may resend it
GET  /admin/mail/new/                          login 403   403   403   403   403   403   403   403
GET  /admin/mail/edit/                         login 403   403   403   403   403   403   403   403
POST /admin/mail/new/                          login 403   403   403   403   403   403   403   403
POST /admin/mail/edit/                         login 403   403   403   403   403   403   403   403
POST /admin/mail/delete/                       login 403   403   403   403   403   403   403   403
POST /admin/mail/ajax/update/                  login 403   403   403   403   403   403   403   403
# Flask-Admin answers 404 for a lookup or a list edit that a view does not offer
GET  /admin/user/ajax/lookup/                  login 403   403   403   403   403   403   ok    ok
GET  /admin/*/ajax/lookup/                     login 403   403   403   403   403   403   404   404
POST /admin/*/ajax/update/                     login 403   403   403   403   403   403   404   404
GET  /admin/*                                  login 403   403   403   403   403   403   ok    ok
POST /admin/*                                  login 403   403   403   403   403   403   ok    ok
"""

# roles who may read the owner's personal data somewhere; every other answer must not carry it
ENTITLED = frozenset({"owner", "reviewer", "staff", "admin"})


def parse_table(text):
    """The declared table as [(method, rule pattern, {role: answer})], in order."""
    rows = []
    for line in text.strip().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        method, rule, *answers = line.split()
        assert len(answers) == len(ROLES), line
        rows.append((method, rule, dict(zip(ROLES, answers, strict=True))))
    return rows


EXPECTED = parse_table(EXPECTED_TABLE)


def routes(app):
    """Every (method, rule) of the URL map, HEAD and OPTIONS left out."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, rule))
    return sorted(found, key=lambda pair: (pair[1].rule, pair[0]))


def expectation(method, rule):
    """The first line of the table that covers this route, or None."""
    for line in EXPECTED:
        if line[0] == method and fnmatch.fnmatchcase(rule, line[1]):
            return line
    return None


# --- the people and their objects -----------------------------------------------------------

OWNER_NAME = "甄秘密"
OWNER_EMAIL = "zhen.secret@example.edu.tw"
RECORD_MARKER = "甄秘密的觀察焦點XQ7"
DOCUMENT_NAME = "甄秘密公開授課證明XQ7.pdf"
STAFF_NAME = "承辦人鄔丙丁"
REVIEWER_NAMES = ("委員柯甲乙", "委員龐庚辛")


def person(login, name, role, school=None, county=None):
    user = User(
        login=login,
        name=name,
        email=f"{login}@example.edu.tw",
        role=role,
        school=school,
        county=county or (school.county if school else None),
    )
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.flush()
    return user


def county_named(name):
    return db.session.scalar(sa.select(County).where(County.name == name))


@pytest.fixture
def matrix_app(app, tmp_path):
    """The app with CSRF on and jobs run only when the test says so."""
    app.config.update(
        WTF_CSRF_ENABLED=True, JOBS_IN_PROCESS=False, JOBS_FOLDER=str(tmp_path / "jobs")
    )
    return app


@pytest.fixture
def world(matrix_app, cycle):
    """The owner's case in round 2 under review, another teacher's case, their reviewers,
    the two county officers, staff, an administrator, a spreadsheet and an import job."""
    from models import Position

    taipei = School(name="臺北市立秘密國民小學", county=county_named("臺北市"), code="secret-01")
    new_taipei = School(name="新北市立他校國民小學", county=county_named("新北市"), code="other-02")
    taichung = School(name="臺中市立委員國民中學", county=county_named("臺中市"), code="panel-03")
    db.session.add_all([taipei, new_taipei, taichung])
    db.session.flush()

    owner = person("owner", OWNER_NAME, Role.applicant, taipei)
    owner.email = OWNER_EMAIL
    owner.position = Position.teacher
    teacher = person("teacher", "施他人", Role.applicant, new_taipei)
    teacher.position = Position.teacher
    make_eligible(owner, cycle)
    make_eligible(teacher, cycle)
    staff = person("staff", STAFF_NAME, Role.staff)
    admin = person("admin", "管理員韋", Role.admin)
    reviewer = person("reviewer", REVIEWER_NAMES[0], Role.reviewer, taichung)
    co_reviewer = person("co_reviewer", REVIEWER_NAMES[1], Role.reviewer, taichung)
    other_reviewer = person("other_reviewer", "委員滕壬癸", Role.reviewer, taichung)
    officer = person("officer", "臺北市承辦韓", Role.county_officer, county=taipei.county)
    other_officer = person(
        "other_officer", "新北市承辦蕭", Role.county_officer, county=new_taipei.county
    )
    db.session.commit()

    case = case_in(
        CaseState.under_review, cycle, staff, round_=2, applicant=owner,
        panel=[reviewer, co_reviewer],
    )  # fmt: skip
    other_case = case_in(
        CaseState.under_review, cycle, staff, applicant=teacher, panel=[other_reviewer, reviewer]
    )
    _mark_owner_material(case)

    county_job = spreadsheets.request_export(
        spreadsheets.REPORTS["cases"], cycle, taipei.county, officer
    )
    db.session.commit()
    jobs.run_pending()
    upload = {"dataset": next(iter(imports.DATASETS)), "upload": "x.xlsx", "filename": "名單.xlsx"}
    import_job = jobs.enqueue("import_preview", upload, staff)
    db.session.commit()

    users = {
        "owner": owner,
        "teacher": teacher,
        "reviewer": reviewer,
        "other_reviewer": other_reviewer,
        "officer": officer,
        "other_officer": other_officer,
        "staff": staff,
        "admin": admin,
    }
    return {
        "users": users,
        "case": case,
        "other_case": other_case,
        "document": _owner_document(case),
        "message": db.session.scalar(
            sa.select(Notification)
            .where(Notification.user_id == owner.id)
            .order_by(Notification.id.desc())
            .limit(1)
        ),
        "assignment": db.session.scalar(
            sa.select(ReviewAssignment).where(
                ReviewAssignment.case_id == case.id,
                ReviewAssignment.reviewer_id == reviewer.id,
                ReviewAssignment.round == 2,
            )
        ),
        "county_job": db.session.get(Job, county_job.id),
        "import_job": import_job,
        "cycle": cycle,
        "school": taipei,
    }


def _mark_owner_material(case):
    """Put recognisable text into the owner's record and file name."""
    for entry in db.session.scalars(sa.select(FormEntry).where(FormEntry.case_id == case.id)):
        fields = entry.template_version.fields
        key = next(f["key"] for f in fields if f["type"] in ("text", "textarea"))
        entry.data = {**entry.data, key: RECORD_MARKER}
    for document in db.session.scalars(sa.select(Document).where(Document.case_id == case.id)):
        document.original_name = DOCUMENT_NAME
    db.session.commit()


def _owner_document(case):
    return db.session.scalars(
        sa.select(Document).where(Document.case_id == case.id).order_by(Document.id)
    ).first()


# --- building the requests ------------------------------------------------------------------

TOKEN = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
STATIC_FILES = {
    "static": "site.css",
    "staff_assets.static": "admin.css",
    "admin.static": "admin/js/helpers.js",
}
ITEMS = {"portal.record": "pre_conference"}


def url_values(world, rule):
    """Values for the rule's variables: ids of objects that belong to the owner's file."""
    endpoint = rule.endpoint
    jobs_by_blueprint = {
        "county_centre": world["county_job"],
        "spreadsheet_exports": world["county_job"],
        "spreadsheet_imports": world["import_job"],
    }
    known = {
        "case_id": world["case"].id,
        "document_id": world["document"].id,
        "message_id": world["message"].id,
        "assignment_id": world["assignment"].id,
        "cycle_id": world["cycle"].id,
        "step": "accept",
        "item": ITEMS.get(endpoint, "public_teaching"),
        "dataset_key": next(iter(imports.DATASETS)),
        "export_type": "csv",
        "filename": STATIC_FILES.get(endpoint),
    }
    values = {}
    for name in rule.arguments:
        if name == "job_id":
            values[name] = jobs_by_blueprint[endpoint.split(".")[0]].id
        else:
            assert known.get(name) is not None, f"no value for <{name}> of {rule.rule}"
            values[name] = known[name]
    return values


def admin_row_ids(world):
    """For the back office's list views: the id of a row of the owner's, by model."""
    case = world["case"]
    return {
        Case: case.id,
        Document: world["document"].id,
        User: world["users"]["owner"].id,
        School: world["school"].id,
        County: world["school"].county_id,
        TrainingRecord: db.session.scalar(
            sa.select(TrainingRecord.id).where(TrainingRecord.user_id == case.applicant_id)
        ),
        Cycle: world["cycle"].id,
        FormTemplate: db.session.scalar(sa.select(FormTemplate.id).limit(1)),
        AuditEvent: db.session.scalar(
            sa.select(AuditEvent.id).where(AuditEvent.case_id == case.id).limit(1)
        ),
        OutgoingMail: db.session.scalar(
            sa.select(OutgoingMail.id).where(OutgoingMail.case_id == case.id).limit(1)
        ),
    }


def query_args(app, world, method, rule):
    """Query arguments a Flask-Admin page needs to show one row (`?id=`) or a lookup."""
    view_name, _dot, page = rule.endpoint.partition(".")
    model_views = {
        view.endpoint: view.model for view in app.extensions["admin"][0]._views
        if hasattr(view, "model")
    }  # fmt: skip
    if view_name not in model_views:
        return {}
    if page in ("details_view", "edit_view") and method == "GET":
        return {"id": admin_row_ids(world)[model_views[view_name]]}
    if page == "ajax_lookup":
        return {"name": "school", "query": "秘密"}
    return {}


def form_data(world, rule):
    """What a POST carries besides its token: enough for the view to act, when it needs it."""
    if rule.endpoint == "reviewer.assignment":
        return {"action": "draft"}
    if rule.endpoint == "county_centre.start_export":
        return {"cycle_id": world["cycle"].id, "report": "cases"}
    return {}


def send(app, client, method, path, **kwargs):
    """One request in an app context of its own, as in a server: nothing cached in `g` (the
    logged-in user, the CSRF token) or in the database session carries over from the last."""
    with app.app_context():
        return client.open(path, method=method, **kwargs)


def log_in(app, user):
    """A test client logged in as the user (None: anonymous) and a CSRF token of its session."""
    client = app.test_client()
    page = send(app, client, "GET", "/login").get_data(as_text=True)
    token = TOKEN.search(page).group(1)
    if user is None:
        return client, token

    fields = {"login": user.login, "password": PASSWORD, "csrf_token": token}
    response = send(app, client, "POST", "/login", data=fields)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client, token


def answer_of(response):
    """The table's word for a response."""
    if response.status_code in (301, 302, 303, 307, 308):
        location = response.headers.get("Location", "")
        return "login" if location.split("?")[0].endswith("/login") else "ok"
    if 200 <= response.status_code < 300:
        return "ok"
    return str(response.status_code)


def request_every_route(app, world, role):
    """Request every route as the role; yield (method, rule, response)."""
    client, token = log_in(app, world["users"].get(role))
    ordered = sorted(routes(app), key=lambda pair: pair[1].rule == "/logout")
    for method, rule in ordered:
        with app.test_request_context():
            path = url_for(rule.endpoint, **url_values(world, rule))
        args = query_args(app, world, method, rule)
        data = None if method == "GET" else {**form_data(world, rule), "csrf_token": token}
        yield method, rule, send(app, client, method, path, query_string=args, data=data)


def secrets_of_owner():
    return (OWNER_NAME, OWNER_EMAIL, RECORD_MARKER, DOCUMENT_NAME)


# --- the tests ------------------------------------------------------------------------------


def test_every_route_is_declared(app):
    undeclared = [f"{method} {rule.rule}" for method, rule in routes(app)
                  if expectation(method, rule.rule) is None]  # fmt: skip
    unused = [
        f"{method} {pattern}"
        for method, pattern, _answers in EXPECTED
        if not any(m == method and fnmatch.fnmatchcase(r.rule, pattern) for m, r in routes(app))
    ]

    assert undeclared == [], "add these routes to EXPECTED_TABLE"
    assert unused == [], "these lines of EXPECTED_TABLE match no route"


def test_each_role_gets_the_declared_answer_and_nothing_of_others(matrix_app, world):
    # one world for all roles: each role's requests leave it as the next role expects it
    wrong, leaks = [], []
    for role in ROLES:
        for method, rule, response in request_every_route(matrix_app, world, role):
            where = f"{role}: {method} {rule.rule}"
            line = expectation(method, rule.rule)
            if line is None:
                wrong.append(f"{where}: not in EXPECTED_TABLE")
                continue
            expected, got = line[2][role], answer_of(response)
            if got != expected:
                wrong.append(f"{where}: expected {expected}, got {got} ({response.status_code})")
            leaks += leaks_in(world, role, where, response)

    assert wrong == []
    assert leaks == []


def leaks_in(world, role, where, response):
    """What the response shows that the role may not read."""
    if not response.mimetype.startswith(("text/", "application/json")):
        return []
    body = response.get_data(as_text=True)
    hidden = []
    if role not in ENTITLED:
        hidden += secrets_of_owner()
    if role == "owner":
        # the candidate never reads who reviewed her file or who decided on it
        hidden += [STAFF_NAME, *REVIEWER_NAMES]
    if role == "reviewer":
        # nor does a reviewer read the other reviewer's name or the clerk's
        hidden += [STAFF_NAME, REVIEWER_NAMES[1]]
    return [f"{where} shows {secret}" for secret in hidden if secret in body]


# --- CSRF: a state-changing request without its token --------------------------------------

CSRF_REFUSED = "表單已過期或來源不明，請重新整理頁面後再送出一次。"


def acting_role(method, rule):
    """The first role the table lets through the route, so that only the token is missing."""
    answers = expectation(method, rule)[2]
    allowed = [role for role in ROLES if answers[role] == "ok"]
    return allowed[0] if allowed else "owner"


def fingerprint():
    """The number of rows of every table and every case's version: any write changes it."""
    db.session.expire_all()
    counts = {
        table.name: db.session.scalar(sa.select(sa.func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }
    versions = dict(db.session.execute(sa.select(Case.id, Case.version)).all())
    return counts, versions


def test_every_post_without_a_csrf_token_is_refused(matrix_app, world):
    clients = {}
    accepted = []
    for method, rule in routes(matrix_app):
        if method == "GET":
            continue
        role = acting_role(method, rule.rule)
        if role not in clients:
            clients[role] = log_in(matrix_app, world["users"].get(role))[0]
        with matrix_app.test_request_context():
            path = url_for(rule.endpoint, **url_values(world, rule))
        before = fingerprint()

        response = send(
            matrix_app,
            clients[role],
            method,
            path,
            query_string=query_args(matrix_app, world, method, rule),
            data=form_data(world, rule),
        )

        refused = response.status_code == 400 and CSRF_REFUSED in response.get_data(as_text=True)
        if not refused or fingerprint() != before:
            accepted.append(f"{role}: {method} {rule.rule} ({response.status_code})")

    assert accepted == []
    # the logout without a token did not log anyone out
    assert send(matrix_app, clients["owner"], "GET", "/profile").status_code == 200
