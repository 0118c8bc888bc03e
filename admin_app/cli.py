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

    if db.session.scalar(sa.select(User).where(User.login == login)) is not None:
        raise click.ClickException(f"帳號 {login} 已存在。")
    county_row = None
    if county:
        county_row = db.session.scalar(sa.select(County).where(County.name == county))
        if county_row is None:
            raise click.ClickException(f"找不到縣市「{county}」。")
    if password is None:
        password = getpass.getpass("密碼：")
    if len(password) < 8:
        raise click.ClickException("密碼至少需要 8 個字元。")

    user = User(login=login, name=name, email=email, role=Role(role), county=county_row)
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
