"""The foundation: schema on both databases, login, and Traditional Chinese form messages."""

from admin_app.extensions import db
from models import Case, CaseState
from models.application import item_statuses, open_case, submit_application


def test_required_field_error_reads_in_traditional_chinese(client):
    response = client.post("/login", data={"login": "", "password": ""})
    page = response.get_data(as_text=True)

    assert "此欄位是必需的" in page or "此欄位為必填" in page
    assert "该字段" not in page and "必填字段" not in page


def test_submission_locks_the_case(teacher, cycle, filled_case):
    assert all(status.filled for status in item_statuses(filled_case))

    submit_application(filled_case, teacher)
    db.session.commit()

    assert db.session.get(Case, filled_case.id).state is CaseState.formal_review
    assert db.session.get(Case, filled_case.id).status_label == "形式審查"


def test_open_case_is_idempotent(teacher, cycle):
    first = open_case(teacher, cycle)
    db.session.commit()
    assert open_case(teacher, cycle).id == first.id
