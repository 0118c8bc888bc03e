"""Locale, time-zone and calendar helpers shared by every screen.

User-facing Chinese text is written directly as the message id of gettext (`_("形式審查")`):
the product has one language, so the ids are the text and no catalogue is needed for our own
strings. Flask-Admin's own strings come from its zh_Hant_TW catalogue.
"""

from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo

from flask_babel import gettext, lazy_gettext
from wtforms.i18n import get_translations

TAIPEI = ZoneInfo("Asia/Taipei")

_ = gettext
_l = lazy_gettext


@cache
def wtforms_translations():
    """WTForms' Traditional Chinese catalogue.

    A lookup for zh_Hant_TW falls back to WTForms' Simplified `zh` catalogue, so forms ask for
    the zh_TW one by name.
    """
    return get_translations(["zh_TW"])


def now_utc():
    """The current moment as an aware UTC datetime."""
    return datetime.now(UTC)


def to_taipei(moment):
    """An aware (or naive UTC) datetime in Asia/Taipei."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(TAIPEI)


def roc_date(value):
    """A date or datetime in the ROC style staff use: 114/05/31."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_taipei(value).date()
    return f"{value.year - 1911}/{value.month:02d}/{value.day:02d}"


def roc_datetime(value):
    """A datetime in Taipei time, ROC style: 114/05/31 23:59."""
    if value is None:
        return ""
    local = to_taipei(value)
    return f"{roc_date(local.date())} {local:%H:%M}"


def roc_moment(value):
    """A moment to the second in Taipei time, ROC style: 115/06/10 23:59:59（星期三）."""
    if value is None:
        return ""
    local = to_taipei(value)
    weekday = "一二三四五六日"[local.weekday()]
    return f"{roc_date(local.date())} {local:%H:%M:%S}（星期{weekday}）"


def academic_year_of(day):
    """The 學年度 a date falls in: 學年度 N runs 1 August N+1911 to 31 July N+1912."""
    if isinstance(day, datetime):
        day = to_taipei(day).date()
    return day.year - 1911 if day.month >= 8 else day.year - 1912


def academic_year_bounds(year):
    """First and last day of 學年度 `year`."""
    return date(year + 1911, 8, 1), date(year + 1912, 7, 31)
