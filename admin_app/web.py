"""Template filters, error pages and the per-request transaction rule shared by all pages."""

import logging

from flask import g, render_template, request, send_from_directory
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .extensions import db, login_manager
from .i18n import _, _l, roc_date, roc_datetime, to_taipei

log = logging.getLogger(__name__)

ERRORS = {
    400: (_l("請求無效"), _l("送出的資料不完整或格式不正確，請回上一頁重新操作。")),
    403: (_l("沒有權限"), _l("您沒有權限檢視此頁面。如需協助，請洽認證中心。")),
    404: (_l("找不到頁面"), _l("您要找的頁面或檔案不存在，可能已被移除或網址有誤。")),
    405: (_l("操作方式不正確"), _l("此頁面不接受這種操作，請由畫面上的按鈕進行。")),
    413: (_l("檔案太大"), _l("上傳的檔案超過大小上限，請壓縮後再上傳。")),
    429: (_l("嘗試次數過多"), _l("操作太頻繁，請稍候再試。")),
    500: (_l("系統發生錯誤"), _l("系統發生錯誤，您的資料未被修改。請稍後再試，或洽認證中心。")),
    503: (_l("系統暫時無法服務"), _l("資料庫暫時無法連線，您的資料未被修改。請稍後再試。")),
}


def init_app(app):
    """Register filters, error pages and the site icon."""

    @app.route("/favicon.ico")
    def favicon():
        # browsers ask for it at the root whatever the pages link to
        return send_from_directory(
            app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=86400
        )

    app.jinja_env.filters["roc_date"] = roc_date
    app.jinja_env.filters["roc_datetime"] = roc_datetime
    app.jinja_env.filters["taipei"] = to_taipei

    def error_page(status, detail=None):
        title, message = ERRORS[status]
        body = render_template("error.html", status=status, title=title, message=detail or message)
        return body, status

    for status in ERRORS:
        app.register_error_handler(status, lambda error, status=status: error_page(status))

    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        return error_page(400, _("表單已過期或來源不明，請重新整理頁面後再送出一次。"))

    def database_unavailable(error):
        log.error("database unavailable on %s: %s", request.path, error)
        try:
            db.session.rollback()
        except Exception:  # the connection may be gone; nothing was committed either way
            log.exception("rollback after a database error failed")
        # the page header asks who is logged in; Flask-Login keeps the answer in g._login_user,
        # and finding it out must not need the database again
        g._login_user = login_manager.anonymous_user()
        body, status = error_page(503)
        return body, status, {"Retry-After": "60"}

    for error_class in (OperationalError, InterfaceError, PoolTimeout):
        app.register_error_handler(error_class, database_unavailable)

    def number_out_of_range(error):
        # an id or page number in the URL beyond what the database can hold names nothing
        if isinstance(error, DataError) and getattr(error.orig, "sqlstate", None) != "22003":
            raise error
        log.info("number out of range on %s: %s", request.path, error)
        db.session.rollback()
        return error_page(404)

    # SQLite refuses the number while binding it (OverflowError); PostgreSQL answers 22003
    app.register_error_handler(OverflowError, number_out_of_range)
    app.register_error_handler(DataError, number_out_of_range)
