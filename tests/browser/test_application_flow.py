"""A real browser walks a case from the eligibility check to the announced certificate.

Each test starts from the demo data (see admin_app/demo.py) and follows one stretch of the
process the way people do it: clicking links and buttons, filling forms, uploading PDFs.
"""

import io
import re

from pypdf import PdfWriter

from admin_app.i18n import TAIPEI, now_utc

try:
    from playwright.sync_api import expect
except ImportError:  # the chromium fixture skips the tests, or fails them in CI
    expect = None

RED = re.compile(r"rgb\((1[5-9]\d|2\d\d), (\d|[1-9]\d), (\d|[1-9]\d)\)")


def small_pdf(title):
    """A valid one-page PDF, as a scanner would produce."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": title})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def fill_record_form(page):
    """Fill every input of the record form on the page with plausible values."""
    form = page.locator("form.record-form")
    today = now_utc().astimezone(TAIPEI).date().isoformat()
    for field in form.locator("input[type=text], textarea").all():
        if not field.input_value():
            field.fill("學生分組討論，教師巡視並給予回饋。")
    for field in form.locator("input[type=number]").all():
        field.fill(field.get_attribute("min") or "1")
    for field in form.locator("input[type=date]").all():
        field.fill(today)
    for field in form.locator("input[type=time]").all():
        field.fill("10:00")
    for select in form.locator("select").all():
        values = [
            value
            for value in select.locator("option").evaluate_all(
                "options => options.map(o => o.value)"
            )
            if value
        ]
        select.select_option(values[0])
    seen = set()
    for choice in form.locator("input[type=radio], input[type=checkbox]").all():
        name = choice.get_attribute("name")
        if name not in seen:
            seen.add(name)
            choice.check()


def item_row(page, item):
    return page.locator(f"#item-{item}")


def test_teacher_applies_and_submits(person):
    """Eligibility, six items with real uploads and records, 確定/取消, then 形式審查."""
    short = person("teacher_short")
    with short.on("申請資格檢核（不符合）") as page:
        short.goto("/apply")
        reasons = page.locator("li.unmet")
        expect(reasons, "every unmet rule is listed").to_have_count(2)
        expect(reasons.first).to_contain_text("12")
        for reason in reasons.all():
            expect(reason).to_be_visible()
            color = reason.evaluate("el => getComputedStyle(el).color")
            assert RED.match(color), f"unmet rule shown in {color}, not red"
        short.snap("eligibility-unmet")

    teacher = person("teacher_new")
    with teacher.on("首頁") as page:
        teacher.snap("home")
        page.click("a.menu-link:has-text('進階專業回饋人才認證')")

    with teacher.on("申請資格檢核") as page:
        expect(page.locator("p.eligible")).to_be_visible()
        teacher.snap("eligibility-met")
        page.click("button:has-text('開始申請')")

    with teacher.on("申請項目") as page:
        expect(page.locator("ol.items > li")).to_have_count(6)
        expect(page.locator("#item-public_teaching.next"), "first item is next").to_have_count(1)
        teacher.snap("items-empty")

    uploads = {"public_teaching": "公開授課", "community": "社群參與", "checklist": "檢核表"}
    for item, title in uploads.items():
        with teacher.on(f"上傳 {title}") as page:
            teacher.goto("/apply")
            item_row(page, item).locator("a.item-edit").click()
            expect(page.locator("span.req").first, "required mark shown").to_be_visible()
            name = f"{title}-蓋章版.pdf"
            page.set_input_files(
                "#file", {"name": name, "mimeType": "application/pdf", "buffer": small_pdf(item)}
            )
            page.click("form.upload-form button[type=submit]")
            expect(page.locator(".flash-success"), "upload confirmed").to_be_visible()
            expect(page.locator(f"p.file a:has-text('{name}')")).to_be_visible()
            if item == "public_teaching":
                teacher.snap("upload")

    records = {
        "pre_conference": "觀察前會談",
        "observation": "觀察紀錄",
        "post_conference": "觀察後會談",
    }
    for item, title in records.items():
        with teacher.on(f"{title}紀錄表") as page:
            teacher.goto("/apply")
            item_row(page, item).locator("a.item-edit").click()
            expect(page.locator("form.record-form span.req").first).to_be_visible()
            fill_record_form(page)
            teacher.snap(f"record-{item}")
            page.click("form.record-form button[type=submit]")
            assert page.url.endswith("/apply"), "saved records go back to the items"
            expect(page.locator(".flash-success")).to_be_visible()

    with teacher.on("申請項目（已完成）") as page:
        expect(page.locator("ol.items > li.filled")).to_have_count(6)
        teacher.snap("items-filled")
        page.click("section.submit-card a:has-text('送出審查文件')")

    with teacher.on("送出審查文件（取消）") as page:
        expect(page.locator(".warning-box")).to_be_visible()
        teacher.snap("submit-confirm")
        page.click("form.form-actions a:has-text('取消')")
        assert page.url.endswith("/apply")
        expect(page.locator("section.submit-card"), "still a draft").to_be_visible()
        page.click("section.submit-card a:has-text('送出審查文件')")

    with teacher.on("送出審查文件（確定）") as page:
        page.click("form.form-actions button:has-text('確定')")
        expect(page.locator(".flash-success")).to_contain_text("已送出")
        assert page.url.endswith("/apply/flow"), "after 確定 the flow chart is shown"

    with teacher.on("流程圖") as page:
        current = page.locator(".step.current")
        expect(current).to_have_count(1)
        expect(current).to_contain_text("形式審查")
        expect(page.locator("span.status").first).to_contain_text("形式審查")
        teacher.snap("flow-formal-review")

    with teacher.on("觀察紀錄表（僅供檢視）") as page:
        teacher.goto("/apply")
        item_row(page, "observation").locator("a.item-view").click()
        expect(page.locator(".record-readonly .notice")).to_contain_text("僅供檢視")
        expect(page.locator("form.record-form"), "no form once submitted").to_have_count(0)
        teacher.snap("record-readonly")


def open_in_back_office(staff, applicant):
    """From the back office's case list, open the case of the named applicant."""
    page = staff.page
    staff.goto("/admin/case/")
    page.click(f"td.col-applicant a:has-text('{applicant}')")
    expect(page.locator("h1, h2").first).to_be_visible()
    return page


def submit_confirmed(someone, label="送出審查文件"):
    """The candidate's submit button, then 確定 on the confirmation page."""
    page = someone.page
    someone.goto("/apply")
    page.click(f"section.submit-card a:has-text('{label}')")
    page.click("form.form-actions button:has-text('確定')")
    expect(page.locator(".flash-success")).to_be_visible()


def test_staff_return_and_teacher_resubmits(person):
    """Staff return a file with comments; the candidate reads them, fixes the file, resubmits."""
    comment = "公開授課實施證明缺少學校核章，請補蓋章後重新上傳。"
    staff = person("staff")
    with staff.on("後台案件列表") as page:
        staff.goto("/admin/case/")
        page.click("a.dropdown-toggle:has-text('新增過濾器')")
        page.click(".field-filters a.filter:has-text('狀態')")
        page.click("div.filter-val a.select2-choice")
        page.locator(".select2-drop-active .select2-result-label").filter(
            has_text=re.compile("^形式審查$")
        ).click()
        page.click("#filter_form button:has-text('套用')")
        expect(page).to_have_url(re.compile(r"flt\d+_\d+=formal_review"))
        page.wait_for_load_state()
        states = {text.strip() for text in page.locator("td.col-status_label").all_inner_texts()}
        assert states == {"形式審查"}, f"the filter keeps only cases in 形式審查: {states}"
        staff.snap("case-list-filtered", phone=False)
        page.click("td.col-applicant a:has-text('林志強')")

    with staff.on("後台案件（形式審查）") as page:
        expect(page.locator("#formal-review")).to_be_visible()
        staff.snap("case-formal-review", phone=False)
        page.fill("#return-comment", comment)
        page.click("#formal-review button:has-text('退件（形式審查）')")
        expect(page.locator(".alert-success, .alert-info").first).to_be_visible()
        expect(page.locator("#formal-review")).to_have_count(0)

    teacher = person("teacher_sent")
    with teacher.on("申請項目（退件）") as page:
        teacher.goto("/apply")
        expect(page.locator("span.status")).to_have_text("形式審查退件")
        expect(page.locator(".comments-card")).to_contain_text(comment)
        teacher.snap("returned")
        page.click("a:has-text('查看所有審查意見')")

    with teacher.on("審查意見") as page:
        expect(page.locator("main")).to_contain_text(comment)
        teacher.snap("comments-returned")

    with teacher.on("重新上傳公開授課實施證明") as page:
        teacher.goto("/apply")
        item_row(page, "public_teaching").locator("a.item-edit").click()
        page.set_input_files(
            "#file",
            {
                "name": "公開授課-已核章.pdf",
                "mimeType": "application/pdf",
                "buffer": small_pdf("x"),
            },
        )
        page.click("form.upload-form button[type=submit]")
        expect(page.locator("p.file a")).to_have_text("公開授課-已核章.pdf")

    with teacher.on("送出審查文件") as page:
        submit_confirmed(teacher)
        expect(page.locator(".step.current")).to_contain_text("形式審查")
        teacher.snap("resubmitted-flow")


def assign_two_reviewers(staff, applicant, reviewers):
    """Open the case in the back office and assign the two named reviewers."""
    page = open_in_back_office(staff, applicant)
    section = page.locator("#assign")
    expect(section).to_be_visible()
    for name in reviewers:
        section.locator("tr", has_text=name).locator("input[type=checkbox]").check()
    section.locator("button:has-text('分發')").click()
    expect(page.locator(".alert-success").first).to_be_visible()
    expect(page.locator("#assign"), "assigned: the step is done").to_have_count(0)


def review(reviewer, applicant, recommendation, snap=None):
    """A reviewer opens the open assignment of the applicant's case and submits a review."""
    page = reviewer.page
    reviewer.goto("/review/")
    if snap:
        reviewer.snap("assignments")
    page.locator(".assignment-card:not(.submitted)", has_text=applicant).locator("a").click()
    form = page.locator("form.review-form")
    for fieldset in form.locator("fieldset.review-item").all():
        fieldset.locator("input[value=meets]").check()
    form.locator("#overall_comment").fill("觀察紀錄具體，建議補充學生學習證據。")
    form.locator(f"input[name=recommendation][value={recommendation}]").check()
    if snap:
        reviewer.snap(snap)
    form.locator("input[name=confirm]").check()
    form.locator("button:has-text('送出審查意見')").click()
    expect(page.locator(".flash-success")).to_be_visible()


def record_verdict(staff, applicant, decision, comment=""):
    """Staff open the case and record the verdict of the round."""
    page = open_in_back_office(staff, applicant)
    expect(page.locator("#verdict")).to_be_visible()
    page.check(f"#verdict-{decision}")
    if comment:
        page.fill("#verdict-comment", comment)
    page.click("#verdict button:has-text('送出判定')")
    expect(page.locator(".alert-success").first).to_be_visible()
    return page


def test_two_rounds_of_review_to_announced_certificate(person, mailbox, live_app):
    """Formal review, two reviewers, 修正後複審, revision, round 2, certificate, announcement."""
    applicant = "陳美玲"
    reviewers = ("審查委員3", "審查委員4")
    revision_comment = "請補充觀察紀錄 A-3 的具體事證後申請複審。"

    teacher = person("teacher_ready")
    with teacher.on("送出審查文件"):
        submit_confirmed(teacher)

    staff = person("staff")
    with staff.on("後台案件（形式審查通過）") as page:
        open_in_back_office(staff, applicant)
        page.click("#formal-review button:has-text('形式審查通過')")
        expect(page.locator("h1")).to_contain_text("請確認")
        staff.snap("formal-review-confirm", phone=False)
        page.click("form button:has-text('確定')")
        expect(page.locator(".alert-success").first).to_be_visible()

    with staff.on("後台案件（初審分發委員）"):
        assign_two_reviewers(staff, applicant, reviewers)
        staff.snap("assigned", phone=False)

    first, second = person("reviewer3"), person("reviewer4")
    with first.on("審查委員 3 初審"):
        review(first, applicant, "revise_and_review", snap="review-form")
    with second.on("審查委員 4 初審"):
        review(second, applicant, "revise_and_review")

    with staff.on("後台案件（初審判定）"):
        record_verdict(staff, applicant, "revise_and_review", revision_comment)
        staff.snap("verdict-revision", phone=False)

    with teacher.on("申請項目（修正後複審）") as page:
        teacher.goto("/apply")
        expect(page.locator("span.status").first).to_have_text("修正後複審")
        expect(page.locator(".comments-card")).to_contain_text(revision_comment)
        teacher.snap("revision-requested")
        page.click("a:has-text('查看委員審查意見與判定')")

    with teacher.on("委員審查意見") as page:
        expect(page.locator("main")).to_contain_text("觀察紀錄具體")
        page.wait_for_load_state()
        names = re.compile("審查委員[34]")
        expect(page.locator("main"), "reviewers stay anonymous").not_to_contain_text(names)
        teacher.snap("committee-comments")

    with teacher.on("觀察紀錄表（複審修正）") as page:
        teacher.goto("/apply")
        item_row(page, "observation").locator("a.item-edit").click()
        page.locator("form.record-form textarea").first.fill(
            "A-3：教師以提問引導學生比較兩種解法。"
        )
        page.click("form.record-form button[type=submit]")
        expect(page.locator(".flash-success")).to_be_visible()
        expect(item_row(page, "observation").locator(".tag-revised")).to_be_visible()

    with teacher.on("送出複審資料") as page:
        submit_confirmed(teacher, "送出複審資料")
        teacher.snap("revision-sent")

    with staff.on("後台案件（複審分發委員）"):
        assign_two_reviewers(staff, applicant, reviewers)
    with first.on("審查委員 3 複審"):
        review(first, applicant, "passed")
    with second.on("審查委員 4 複審"):
        review(second, applicant, "passed")

    with staff.on("後台案件（複審判定）") as page:
        record_verdict(staff, applicant, "passed")
        page.click("a:has-text('處理本梯次的證號')")

    with staff.on("發證與公告") as page:
        page.click("table.certificate-counts a:has-text('發證（核發證號）')")
        staff.snap("issue-confirm", phone=False)
        page.click("form button:has-text('確定')")
        expect(page.locator(".alert-success").first).to_be_visible()
        row = page.locator("table.recent-numbers tr", has_text=applicant)
        expect(row).to_be_visible()
        number = row.locator("td").first.inner_text().strip()
        assert number, "the new certificate number is listed"
        page.click("table.certificate-counts a:has-text('公告')")
        page.click("form button:has-text('確定')")
        expect(page.locator(".alert-success").first).to_be_visible()
        staff.snap("announced", phone=False)

    with teacher.on("個人資料") as page:
        teacher.page.click("a.user-name")
        expect(page.locator("#certificate-numbers .certificate-number")).to_have_text(number)
        teacher.snap("profile-certificate")

    with teacher.on("訊息") as page:
        page.click("a.inbox-link")
        page.wait_for_load_state()
        subjects = page.locator(".message-subject").all_inner_texts()
        assert len(subjects) >= 4, subjects
        assert any("修正後複審" in subject for subject in subjects), subjects
        assert any("公告" in subject for subject in subjects), subjects
        teacher.snap("inbox")

    # bulk certificate mails are the mail worker's job: run one pass of it
    with live_app.app_context():
        result = live_app.test_cli_runner().invoke(args=["send-mail"])
    assert result.exit_code == 0, result.output
    mailed = mailbox.subjects_to("teacher_ready@example.edu.tw")
    assert set(subjects) <= set(mailed), "every message in the inbox was also mailed"


def test_county_officer_downloads_county_workbook(person, tmp_path):
    """A county centre asks for its case list, waits for it, downloads it, and the file opens."""
    from openpyxl import load_workbook

    officer = person("county_tpe")
    with officer.on("縣市報表下載") as page:
        officer.goto("/county/")
        officer.snap("county-reports")
        page.click("button:has-text('產生案件總表')")

    with officer.on("報表製作進度") as page:
        link = page.locator("a.button:has-text('下載')")
        expect(link).to_be_visible(timeout=60_000)
        officer.snap("county-job-done")
        with page.expect_download() as download_info:
            link.click()
        download = download_info.value
        assert download.suggested_filename.endswith("臺北市_案件總表.xlsx")
        path = tmp_path / "county.xlsx"
        download.save_as(path)

    workbook = load_workbook(path, read_only=True)
    cells = {
        str(value)
        for sheet in workbook.worksheets
        for row in sheet.iter_rows(values_only=True)
        for value in row
        if value is not None
    }
    workbook.close()
    assert "張雅婷" in cells, "臺北市's announced case is in the county workbook"
    assert "陳美玲" not in cells, "another county's case is not"

    with officer.on("縣市報表下載（最近產生的報表）") as page:
        officer.goto("/county/")
        expect(page.locator("main table")).to_contain_text("已完成")
        officer.snap("county-reports-recent")


def test_other_pages_read_well_on_desktop_and_phone(person):
    """Login, error, appeal, message, password and reviewer pages: Chinese, and fit a phone."""
    visitor = person(None)
    with visitor.on("登入") as page:
        visitor.goto("/login")
        expect(page.locator("label[for=login] .req")).to_be_visible()
        visitor.snap("login")
        page.click("form button[type=submit]")
        expect(page.locator(".field-error, .flash-error").first).to_be_visible()
        visitor.snap("login-errors")

    with visitor.on("找不到網頁") as page:
        visitor.goto("/no-such-page")
        visitor.snap("not-found")

    failed = person("teacher_failed")
    with failed.on("申請項目（未通過）") as page:
        failed.goto("/apply")
        expect(page.locator("span.status").first).to_contain_text("未通過")
        failed.snap("failed")
        page.click("a.button:has-text('提出申復')")

    with failed.on("提出申復") as page:
        expect(page.locator("form.appeal-form")).to_be_visible()
        failed.snap("appeal-form")

    with failed.on("訊息內容") as page:
        failed.goto("/messages")
        page.locator(".message a:has-text('閱讀全文')").first.click()
        expect(page.locator("main")).to_contain_text("申復")
        failed.snap("message")

    with failed.on("變更密碼") as page:
        page.click("a.password-link")
        expect(page.locator("main form input[type=password]").first).to_be_visible()
        failed.snap("password")

    reviewer = person("reviewer1")
    with reviewer.on("我的審查案件"):
        reviewer.goto("/review/")
        reviewer.snap("assignments")
