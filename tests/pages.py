"""Reading pages the way a person would: their text, flash messages and form values."""

import html
import re

import sqlalchemy as sa

from admin_app.extensions import db


def text(response):
    """The body of a response as text."""
    return response.get_data(as_text=True)


def flashes(response):
    """The flash messages on a portal, reviewer or county page, as plain text."""
    return flashes_of(text(response))


def flashes_of(page):
    """The flash messages in a page's HTML, as plain text."""
    return [
        re.sub(r"<[^>]+>", "", message).strip()
        for message in re.findall(r'<div class="flash[^"]*"[^>]*>(.*?)</div>', page, re.S)
    ]


def admin_flashes(response):
    """The flash messages on a back-office (Flask-Admin) page, as plain text."""
    found = re.findall(
        r'<div class="alert alert-[a-z]+ alert-dismissable">\s*<button[^>]*>&times;</button>'
        r"(.*?)</div>",
        text(response),
        re.S,
    )
    return [html.unescape(message.strip()) for message in found]


def count(model, *where):
    """How many rows of the model match, as the database has them now."""
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))
