"""Reference data every installation needs, and demo data for a newcomer to log in with."""

import io
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from pypdf import PdfWriter
from werkzeug.datastructures import FileStorage, MultiDict

from .extensions import db
from .i18n import TAIPEI, academic_year_of, now_utc

DEMO_PASSWORD = "demo1234"  # noqa: S105 - printed for newcomers, demo data only


def load_reference_data():
    """The 22 counties and the shipped record templates, each added once."""
    from models import COUNTY_NAMES, County

    existing = set(db.session.scalars(sa.select(County.name)))
    for order, name in enumerate(COUNTY_NAMES, start=1):
        if name not in existing:
            db.session.add(County(name=name, sort_order=order))
    db.session.flush()
    load_templates()


def load_templates():
    """Add each shipped template whose code is not in the database yet; returns how many."""
    from models import FormTemplate, FormTemplateVersion, RecordKind
    from models.seed_templates import SEED_TEMPLATES

    existing = set(db.session.scalars(sa.select(FormTemplate.code)))
    added = 0
    for order, seed in enumerate(SEED_TEMPLATES):
        if seed["code"] in existing:
            continue
        template = FormTemplate(
            code=seed["code"],
            kind=RecordKind(seed["kind"]),
            name=seed["name"],
            description=seed.get("description", ""),
            sort_order=order,
        )
        template.versions.append(FormTemplateVersion(version=1, fields=seed["fields"]))
        db.session.add(template)
        added += 1
    db.session.flush()
    return added


def demo_pdf(title="demo"):
    """A small real PDF, for demo uploads and tests."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": title})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _school(name, county_name, code):
    from models import County, School

    school = db.session.scalar(sa.select(School).where(School.code == code))
    if school is None:
        county = db.session.scalar(sa.select(County).where(County.name == county_name))
        school = School(code=code, name=name, county=county)
        db.session.add(school)
    return school


def _user(login, name, role, **values):
    from models import User

    user = db.session.scalar(sa.select(User).where(User.login == login))
    if user is None:
        user = User(login=login, name=name, role=role, email=f"{login}@example.edu.tw", **values)
        user.set_password(DEMO_PASSWORD)
        db.session.add(user)
    return user


def demo_cycle():
    """A cycle for the current 學年度, open from a month ago until two months from now."""
    from models import Cycle

    today = now_utc().astimezone(TAIPEI).date()
    year = academic_year_of(today)
    cycle = db.session.scalar(sa.select(Cycle).where(Cycle.academic_year == year))
    if cycle is None:
        opens = datetime.combine(today - timedelta(days=30), datetime.min.time(), tzinfo=TAIPEI)
        closes = datetime.combine(today + timedelta(days=60), datetime.max.time(), tzinfo=TAIPEI)
        cycle = Cycle(
            academic_year=year,
            name=f"{year} 學年度進階專業回饋人才認證",
            opens_at=opens,
            closes_at=closes.replace(microsecond=0),
            required_hours=18,
            hours_from_year=year - 2,
            hours_to_year=year - 1,
        )
        db.session.add(cycle)
        db.session.flush()
    return cycle


def _training(user, year, hours, course):
    from models import TrainingRecord

    completed = date(year + 1912, 3, 15)
    if not any(record.course == course for record in user.training_records):
        user.training_records.append(
            TrainingRecord(course=course, hours=hours, completed_on=completed, academic_year=year)
        )


def _basic_certificate(user, number):
    from models import CertificateHeld, CertificateLevel

    if not user.holds(CertificateLevel.basic):
        user.certificates.append(
            CertificateHeld(
                level=CertificateLevel.basic, number=number, issued_on=date(2022, 6, 30)
            )
        )


def fill_application(case, user):
    """Upload the three PDFs and fill the three records of a case with demo content."""
    from models import ApplicationItem, FormTemplate, RecordKind
    from models.application import attach_document, save_record

    for item in (
        ApplicationItem.public_teaching,
        ApplicationItem.community,
        ApplicationItem.checklist,
    ):
        upload = FileStorage(io.BytesIO(demo_pdf(str(item.label))), filename=f"{item.label}.pdf")
        attach_document(case, item, upload, user)

    for item in (
        ApplicationItem.pre_conference,
        ApplicationItem.observation,
        ApplicationItem.post_conference,
    ):
        template = db.session.scalar(
            sa.select(FormTemplate)
            .where(FormTemplate.kind == RecordKind(item.value))
            .order_by(FormTemplate.sort_order)
            .limit(1)
        )
        version = template.current_version
        entry, errors = save_record(case, item, version, demo_formdata(version.fields), user)
        if errors:
            raise RuntimeError(f"demo record for {item.value} does not validate: {errors}")


def demo_formdata(fields):
    """Form data that fills every field of a template with plausible demo values."""
    values = MultiDict()
    for field in fields:
        _fill_field(values, field["key"], field)
    return values


def _fill_field(values, name, field):
    kind = field["type"]
    if kind == "heading":
        return
    if kind == "table":
        rows = field.get("rows")
        if rows:
            for row in rows:
                for column in field["columns"]:
                    _fill_field(values, f"{name}-{row['key']}-{column['key']}", column)
        else:
            count = max(1, field.get("min_rows", 1))
            values.add(f"{name}-rows", str(count))
            for index in range(count):
                for column in field["columns"]:
                    _fill_field(values, f"{name}-{index}-{column['key']}", column)
        return
    sample = {
        "text": "示範內容",
        "textarea": "示範內容：學生分組討論，教師巡視並給予回饋。",
        "date": now_utc().astimezone(TAIPEI).date().isoformat(),
        "time": "10:00",
        "number": str(field.get("min", 1) or 1),
    }
    if kind in ("choice", "multichoice"):
        values.add(name, field["options"][0])
    else:
        values.add(name, sample[kind])


RETURN_COMMENT = "公開授課實施證明未核章，請補蓋學校章後重新上傳。"
REVISION_COMMENT = "請依委員意見修正觀察紀錄的事實摘要。"


def advance_to(case, state, staff, panel, round_=1):
    """Drive a filled draft case to `state` (in `round_`) through the real operations."""
    from models import CaseState, Decision, workflow
    from models.application import submit_application

    applicant = case.applicant
    cycle = case.cycle
    wanted = cycle.reviewers_per_case
    if state is CaseState.draft:
        return case

    submit_application(case, applicant)
    if state is CaseState.formal_review:
        return case
    if state is CaseState.returned:
        workflow.return_for_correction(
            case, staff, "公開授課實施證明未核章，請補蓋學校章後重新上傳。"
        )
        return case

    workflow.pass_formal_review([case], staff)
    if round_ == 2:
        workflow.assign_reviewers(case, panel[:wanted], staff)
        _review_all(case, Decision.revise_and_review)
        workflow.record_verdict(
            case, Decision.revise_and_review, staff, "請依委員意見修正觀察紀錄。"
        )
        submit_application(case, applicant)
    if state is CaseState.awaiting_assignment:
        return case

    workflow.assign_reviewers(case, panel[:wanted], staff)
    if state is CaseState.under_review:
        return case

    # the reviews agree with the verdict the case is brought to
    if state is CaseState.revision_requested:
        _review_all(case, Decision.revise_and_review)
    elif state in (
        CaseState.awaiting_verdict,
        CaseState.passed,
        CaseState.certified,
        CaseState.announced,
    ):
        _review_all(case, Decision.passed)
    else:
        _review_all(case, Decision.failed)
    if state is CaseState.awaiting_verdict:
        return case
    if state is CaseState.revision_requested:
        workflow.record_verdict(
            case, Decision.revise_and_review, staff, "請修正觀察紀錄的事實摘要。"
        )
        return case
    if state in (CaseState.passed, CaseState.certified, CaseState.announced):
        workflow.record_verdict(case, Decision.passed, staff)
        if state is not CaseState.passed:
            workflow.issue_certificates(cycle, staff)
        if state is CaseState.announced:
            workflow.announce_certificates(cycle, staff)
        return case

    workflow.record_verdict(case, Decision.failed, staff, "觀察紀錄與會談紀錄內容不一致。")
    if state is CaseState.failed:
        return case
    if state is CaseState.closed:
        # this case's window ran out yesterday; other failed cases keep theirs
        case.appeal_deadline = now_utc() - timedelta(days=1)
        db.session.flush()
        workflow.close_expired_appeal_windows(now_utc())
        return case

    workflow.file_appeal(case, applicant, "觀察紀錄已依規定填寫，請重新審查。")
    if state is CaseState.appeal_filed:
        return case
    workflow.accept_appeal(case, staff)
    if state is CaseState.appeal_review:
        return case
    raise ValueError(f"cannot drive a case to {state}")


# what demo reviewers write of the two records they find wanting, and overall, by recommendation
WANTING = {
    "revise_and_review": (
        {
            "observation": "事實摘要多為評價語句，請改寫為觀察到的具體教學行為與學生反應。",
            "post_conference": "專業成長計畫的成長指標與觀察結果未對應，請補充說明。",
        },
        "觀察紀錄與回饋會談的內容需再具體，請依各項意見修正後申請複審。",
    ),
    "failed": (
        {
            "observation": "觀察紀錄與觀察前會談約定的觀察焦點不一致，無法據以回饋。",
            "post_conference": "回饋會談紀錄未依觀察紀錄提出優點與待精進之處。",
        },
        "觀察紀錄與會談紀錄內容不一致，尚未達到進階專業回饋人才的標準。",
    ),
}


def _review_all(case, recommendation):
    """Every reviewer assigned in the current round submits a review matching the recommendation.

    A review recommending 通過 finds every item 符合; any other marks the observation and
    post-conference records 待改進, with comments that say why.
    """
    from models import ApplicationItem, workflow

    wanting, overall = WANTING.get(recommendation.value, ({}, "整體表現良好。"))
    results = {}
    for item in ApplicationItem:
        if item.value in wanting:
            results[item.value] = {"result": "improve", "comment": wanting[item.value]}
        else:
            results[item.value] = {"result": "meets", "comment": "內容完整。"}
    for assignment in list(case.assignments):
        if assignment.round == case.round and assignment.submitted_at is None:
            workflow.save_review(
                assignment, assignment.reviewer, results, overall, recommendation, True
            )


# named demo applicants and the state their case is brought to, in an order in which bulk
# certificate issuing only touches the cases meant for it
DEMO_CASES = (
    ("teacher_announced", "張雅婷", "臺北市", "announced", 1),
    ("teacher_certified", "黃建宏", "新北市", "certified", 2),
    ("teacher_passed", "吳佩珊", "桃園市", "passed", 1),
    ("teacher_returned", "周俊傑", "臺北市", "returned", 1),
    ("teacher_assign", "徐淑芬", "臺中市", "awaiting_assignment", 1),
    ("teacher_review", "孫家豪", "臺南市", "under_review", 1),
    ("teacher_review2", "馬曉君", "高雄市", "under_review", 2),
    ("teacher_verdict", "朱冠宇", "新竹市", "awaiting_verdict", 1),
    ("teacher_revision", "胡雅雯", "臺北市", "revision_requested", 1),
    ("teacher_failed", "郭志明", "彰化縣", "failed", 1),
    ("teacher_appeal", "何佳蓉", "屏東縣", "appeal_filed", 1),
    ("teacher_appeal_review", "高明哲", "宜蘭縣", "appeal_review", 1),
    ("teacher_closed", "羅美惠", "花蓮縣", "closed", 1),
)


def _demo_reviewers():
    from models import Role

    made = []
    for index, county in enumerate(("臺中市", "高雄市", "新竹縣", "嘉義市"), start=1):
        school = _school(f"{county}立示範委員學校", county, f"REV-{index:03d}")
        db.session.flush()
        made.append(
            _user(
                f"reviewer{index}",
                f"審查委員{index}",
                Role.reviewer,
                school=school,
                county=school.county,
            )
        )
    db.session.flush()
    return made


def _cases_in_every_state(cycle, panel):
    """One demo applicant per state, each case driven there by the real operations."""
    from models import CaseState, Position, Role, User
    from models.application import open_case

    staff = db.session.scalar(sa.select(User).where(User.login == "staff"))
    for order, (login, name, county, state, round_) in enumerate(DEMO_CASES, start=1):
        if db.session.scalar(sa.select(User).where(User.login == login)) is not None:
            continue
        school = _school(f"{county}立示範學校{order}", county, f"DEMO-{order:03d}")
        db.session.flush()
        person = _user(login, name, Role.applicant, position=Position.teacher, school=school)
        db.session.flush()
        _basic_certificate(person, f"初階回饋字第{cycle.academic_year - 3}{100 + order:05d}號")
        _training(person, cycle.hours_from_year, 10, "進階專業回饋人才培訓（一）")
        _training(person, cycle.hours_to_year, 8, "進階專業回饋人才培訓（二）")
        db.session.flush()
        case = open_case(person, cycle)
        db.session.flush()
        fill_application(case, person)
        advance_to(case, CaseState(state), staff, panel, round_)
        db.session.flush()


def load_demo():
    """Demo cycle, schools and accounts; returns (login, description) pairs to print."""
    from models import CaseState, Position, Role
    from models.application import find_case, open_case, submit_application

    cycle = demo_cycle()
    year = cycle.academic_year
    taipei = _school("臺北市立示範國民中學", "臺北市", "TPE-001")
    newtaipei = _school("新北市立示範國民小學", "新北市", "NTPC-001")
    taichung = _school("臺中市立示範高級中學", "臺中市", "TXG-001")
    kaohsiung = _school("高雄市立示範國民中學", "高雄市", "KHH-001")
    db.session.flush()

    _user("admin", "系統管理員", Role.admin)
    _user("staff", "認證中心承辦人", Role.staff)
    from models import County

    tpe = db.session.scalar(sa.select(County).where(County.name == "臺北市"))
    _user("county_tpe", "臺北市教專中心", Role.county_officer, county=tpe)

    eligible = _user(
        "teacher_new", "王小明", Role.applicant, position=Position.teacher, school=taipei
    )
    short = _user(
        "teacher_short", "李小華", Role.applicant, position=Position.teacher, school=newtaipei
    )
    ready = _user(
        "teacher_ready", "陳美玲", Role.applicant, position=Position.teacher, school=taichung
    )
    sent = _user(
        "teacher_sent", "林志強", Role.applicant, position=Position.principal, school=kaohsiung
    )
    db.session.flush()

    for number, person in enumerate((eligible, ready, sent), start=1):
        _basic_certificate(person, f"初階回饋字第{year - 3}{number:05d}號")
        _training(person, year - 2, 9, "進階專業回饋人才培訓（一）")
        _training(person, year - 1, 9, "進階專業回饋人才培訓（二）")
    _training(short, year - 1, 12, "進階專業回饋人才培訓（一）")
    db.session.flush()

    for person, submit in ((ready, False), (sent, True)):
        case = find_case(person, cycle) or open_case(person, cycle)
        if case.state is CaseState.draft and not case.documents:
            fill_application(case, person)
        if submit and case.state is CaseState.draft:
            submit_application(case, person)
    db.session.flush()

    panel = _demo_reviewers()
    _cases_in_every_state(cycle, panel)
    db.session.flush()

    return [
        ("admin", "系統管理員（後台）"),
        ("staff", "認證中心承辦人（後台 /admin）"),
        ("county_tpe", "臺北市教專中心"),
        ("teacher_new", "教師，符合資格、尚未填寫"),
        ("teacher_short", "教師，不符合資格（時數不足、無初階證書）"),
        ("teacher_ready", "教師，資料已備齊、可送出"),
        ("teacher_sent", "校長，已送出、形式審查中"),
        ("teacher_returned", "教師，形式審查退件，可修正後重送"),
        ("teacher_revision", "教師，初審結果為修正後複審"),
        ("teacher_failed", "教師，未通過，可提出申復"),
        ("teacher_certified", "教師，已發證（個人資料可見證號）"),
        ("teacher_passed", "教師，通過可產證（後台「發證與公告」可核發證號）"),
        ("teacher_announced", "教師，已公告"),
        ("teacher_assign", "教師，其餘各狀態的帳號見 README 的示範帳號表"),
        ("reviewer1", "審查委員，有待審案件"),
        ("reviewer2", "審查委員，有待審案件"),
        ("reviewer3", "審查委員"),
        ("reviewer4", "審查委員"),
    ]
