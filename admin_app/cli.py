"""`flask --app admin_app ...` commands: schema, accounts, templates and demo data."""

import getpass

import click
import sqlalchemy as sa
from flask_migrate import upgrade

from .extensions import db


def init_app(app):
    """Register the commands."""
    app.cli.add_command(init_db)
    app.cli.add_command(create_user)
    app.cli.add_command(seed_templates)
    app.cli.add_command(load_demo)
    app.cli.add_command(close_appeal_windows)
    app.cli.add_command(run_jobs)
    app.cli.add_command(import_training)
    app.cli.add_command(import_accounts)
    app.cli.add_command(send_mail)
    app.cli.add_command(remind_reviewers)
    app.cli.add_command(backup_archive)
    app.cli.add_command(restore_archive)


@click.command("init-db")
def init_db():
    """Create or upgrade the schema to the latest migration, and load counties and templates."""
    from . import demo

    upgrade()
    demo.load_reference_data()
    db.session.commit()
    click.echo("資料庫結構已更新。")


@click.command("create-user")
@click.argument("login")
@click.option("--name", required=True, help="姓名")
@click.option("--email", default="", help="電子郵件")
@click.option(
    "--role",
    type=click.Choice(["applicant", "staff", "reviewer", "county_officer", "admin"]),
    default="applicant",
)
@click.option("--county", default=None, help="縣市名稱（縣市教專中心與審查委員）")
@click.option("--password", default=None, help="省略時會提示輸入")
def create_user(login, name, email, role, county, password):
    """Create an account (the password is asked for unless given)."""
    from models import County, Role, User

    from .security import password_problems

    if db.session.scalar(sa.select(User).where(User.login == login)) is not None:
        raise click.ClickException(f"帳號 {login} 已存在。")
    county_row = None
    if county:
        county_row = db.session.scalar(sa.select(County).where(County.name == county))
        if county_row is None:
            raise click.ClickException(f"找不到縣市「{county}」。")
    if password is None:
        password = getpass.getpass("密碼：")

    user = User(login=login, name=name, email=email, role=Role(role), county=county_row)
    problems = password_problems(password, user)
    if problems:
        raise click.ClickException("".join(problems))
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"已建立帳號 {login}（{user.role.label}）。")


@click.command("seed-templates")
def seed_templates():
    """Load the shipped observation-record templates that are not in the database yet."""
    from . import demo

    added = demo.load_templates()
    db.session.commit()
    click.echo(f"新增 {added} 個紀錄表範本。")


@click.command("load-demo")
def load_demo():
    """Load demo data: a cycle, schools, and logins for every role (see the README)."""
    from . import demo

    upgrade()
    demo.load_reference_data()
    logins = demo.load_demo()
    db.session.commit()
    click.echo(f"示範資料已載入。示範帳號（密碼皆為 {demo.DEMO_PASSWORD}）：")
    for login, description in logins:
        click.echo(f"  {login:<16} {description}")


@click.command("close-appeal-windows")
def close_appeal_windows():
    """Close every failed case whose appeal window has passed (run daily, e.g. from cron)."""
    from models import workflow

    closed = workflow.close_expired_appeal_windows()
    db.session.commit()
    click.echo(f"已結案 {closed} 件申復期限屆滿的案件。")


@click.command("run-jobs")
@click.option("--loop", is_flag=True, help="持續等待新工作（每隔 --interval 秒檢查一次）")
@click.option("--interval", default=2.0, show_default=True, help="檢查間隔秒數")
def run_jobs(loop, interval):
    """Run queued background jobs (exports, imports); with --loop, keep running as a worker."""
    import time

    from . import jobs

    while True:
        jobs.purge_old_results()
        ran = jobs.run_pending()
        if ran:
            click.echo(f"已完成 {ran} 項背景工作。")
        if not loop:
            break
        time.sleep(interval)


def _import_file(dataset_key, path, apply):
    """Preview an import file, print the preview, and write it when asked and error-free."""
    from exports.imports import DATASETS, ImportRefused

    dataset = DATASETS[dataset_key]
    try:
        plan = dataset.plan(path)
    except ImportRefused as refusal:
        raise click.ClickException(refusal.message) from refusal

    click.echo(
        f"共 {plan.rows} 列：新增 {len(plan.additions)}、更新 {len(plan.updates)}、"
        f"未變更 {plan.unchanged}、錯誤 {len(plan.errors)}。"
    )
    for error in sorted(plan.errors, key=lambda error: error.row):
        click.echo(f"  第 {error.row} 列｜{error.column}｜{error.reason}")
    if plan.errors:
        raise click.ClickException("檔案有錯誤，沒有匯入任何資料。")
    if not apply:
        click.echo("這只是預覽，沒有寫入資料；確認無誤後加上 --apply 匯入。")
        return

    dataset.apply(plan, None)
    db.session.commit()
    click.echo("已匯入。")


@click.command("import-training")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--apply", is_flag=True, help="確實寫入（省略時只預覽）")
def import_training(path, apply):
    """Import advanced training hours from an .xlsx file (preview unless --apply)."""
    _import_file("training", path, apply)


@click.command("import-accounts")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--apply", is_flag=True, help="確實寫入（省略時只預覽）")
def import_accounts(path, apply):
    """Import teacher, principal, reviewer and county-centre accounts (preview unless --apply)."""
    _import_file("accounts", path, apply)


@click.command("send-mail")
@click.option("--loop", is_flag=True, help="持續運作為寄信程序，收到 SIGTERM 或 Ctrl-C 後結束")
@click.option("--interval", default=30.0, show_default=True, help="檢查間隔秒數")
@click.option("--limit", type=int, default=None, help="每輪最多處理幾封")
def send_mail(loop, interval, limit):
    """Send the queued e-mails that are due; with --loop, run as the mail worker.

    The worker also queues the reviewers' deadline reminders on every pass.
    """
    import logging
    import signal
    import threading

    from models import notify

    from . import mailer

    stop = threading.Event()
    if loop:
        # finish the mail being sent, give the rest of the claim back, then exit
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())

    worker_id = mailer.worker_name()
    while not stop.is_set():
        try:
            if loop:
                notify.queue_reviewer_reminders(_reminder_days(None))
                db.session.commit()
            report = mailer.deliver_pending(limit=limit, worker_id=worker_id, stop=stop)
        except Exception:
            if not loop:
                raise
            # a database or network outage must not end the worker; it tries again next pass
            logging.getLogger(__name__).exception("mail worker pass failed")
            db.session.rollback()
        else:
            if report.handled or not loop:
                click.echo(
                    f"寄出 {report.sent} 封，稍後重試 {report.retrying} 封，"
                    f"無法寄送 {report.failed} 封。"
                )
        if not loop or stop.wait(interval):
            break
    if loop:
        click.echo("寄信程序已結束。")


@click.command("remind-reviewers")
@click.option(
    "--days",
    type=int,
    default=None,
    help="期限前幾天提醒（預設 3 天，可由 REVIEW_REMINDER_DAYS 設定）",
)
def remind_reviewers(days):
    """Queue one reminder per open review due within the given days (run daily, e.g. cron)."""
    from models import notify

    queued = notify.queue_reviewer_reminders(_reminder_days(days))
    db.session.commit()
    click.echo(f"已排入 {queued} 封審查期限提醒，由 send-mail 寄出。")


def _reminder_days(days):
    from flask import current_app

    from models import notify

    if days is not None:
        return days
    return current_app.config.get("REVIEW_REMINDER_DAYS", notify.REVIEW_REMINDER_DAYS)


@click.command("backup")
@click.argument("dest_dir", type=click.Path(file_okay=False))
def backup_archive(dest_dir):
    """Write one archive (tar.gz) of the database, the uploads and the job results."""
    from . import backup
    from .i18n import _

    report = backup.backup(dest_dir)
    click.echo(
        _(
            "已備份至 %(path)s：%(tables)s 個資料表共 %(rows)s 筆、上傳檔案 %(uploads)s 個、"
            "背景工作結果 %(jobs)s 個。",
            path=report.path,
            tables=report.tables,
            rows=report.rows,
            uploads=report.uploads,
            jobs=report.jobs,
        )
    )


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="目標資料庫已有資料時，清除後還原")
def restore_archive(archive, yes):
    """Restore an archive written by `backup` into an empty database (or wipe it with --yes)."""
    from . import backup
    from .i18n import _

    try:
        report = backup.restore(archive, wipe=yes)
    except backup.BackupRefused as refusal:
        raise click.ClickException(refusal.message) from refusal

    click.echo(
        _(
            "已還原 %(tables)s 個資料表共 %(rows)s 筆、上傳檔案 %(uploads)s 個、"
            "背景工作結果 %(jobs)s 個。",
            tables=report.tables,
            rows=report.rows,
            uploads=report.uploads,
            jobs=report.jobs,
        )
    )
    if report.problems:
        reasons = {"missing": _("檔案不存在"), "changed": _("檔案內容與紀錄的 sha256 不符")}
        for document_id, stored_name, problem in report.problems:
            click.echo(
                _(
                    "  文件 #%(id)s（%(name)s）：%(reason)s",
                    id=document_id,
                    name=stored_name,
                    reason=reasons[problem],
                ),
                err=True,
            )
        raise click.ClickException(
            _("%(count)s 份文件的檔案有問題，請檢查。", count=len(report.problems))
        )
    click.echo(_("所有文件的檔案都已核對 sha256，內容一致。"))
