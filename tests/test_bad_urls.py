"""Numbers in URLs and forms too large for the database name nothing: 404, never an error page."""

import pytest

from .pages import text

HUGE = [str(2**31), str(2**63), "99999999999999999999"]


@pytest.mark.parametrize("number", HUGE)
def test_a_huge_id_is_not_found(login, teacher, reviewer, county_officer, staff, number):
    pages = {
        teacher: [f"/apply/document/{number}"],
        reviewer: [f"/review/{number}", f"/review/{number}/document/1"],
        county_officer: [f"/county/jobs/{number}/download"],
        staff: [
            f"/admin/case/details/?id={number}",
            f"/admin/document/download/{number}/",
            f"/admin/exports/jobs/{number}",
        ],
    }

    for user, urls in pages.items():
        client = login(user)
        for url in urls:
            response = client.get(url)
            assert response.status_code in (302, 404), (url, response.status_code)
            assert "系統發生錯誤" not in text(response), url


@pytest.mark.parametrize("number", HUGE)
def test_a_huge_page_number_is_an_answer(login, staff, number):
    client = login(staff)

    for url in (f"/admin/case/?page={number}", f"/admin/audit/?page={number}"):
        response = client.get(url)
        assert response.status_code in (200, 404), (url, response.status_code)
        assert "系統發生錯誤" not in text(response), url


@pytest.mark.parametrize("number", HUGE)
def test_a_huge_cycle_in_an_export_request_changes_nothing(login, county_officer, staff, number):
    answers = [
        login(county_officer).post("/county/exports", data={"cycle_id": number}),
        login(staff).post("/admin/exports/start", data={"cycle_id": number}),
    ]

    for response in answers:
        assert response.status_code < 500, response.status_code
        assert "系統發生錯誤" not in text(response)
