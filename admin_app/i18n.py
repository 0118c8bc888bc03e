"""Locale, time-zone and calendar helpers shared by every screen.

User-facing Chinese text is written directly as the message id of gettext (`_("形式審查")`):
the product has one language, so the ids are the text and no catalogue is needed for our own
strings. Flask-Admin's and WTForms' own strings come from their Traditional Chinese catalogues,
except the few in `LIBRARY_WORDING`, which read the way the rest of the site words them.
"""

from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo

from flask_babel import gettext, lazy_gettext
from wtforms.i18n import get_translations

TAIPEI = ZoneInfo("Asia/Taipei")

_ = gettext
_l = lazy_gettext


# library messages (English message ids of Flask-Admin and WTForms) in the site's own wording;
# the two "Failed to ..." ids are missing from the compiled zh_Hant_TW catalogue Flask-Admin
# 2.2.1 ships (its .po has them, its .mo does not), so without this they show in English
LIBRARY_WORDING = {
    "This field is required.": _l("此欄位為必填。"),
    "Record was successfully saved.": _l("已儲存。"),
    "Record was successfully created.": _l("已新增。"),
    "Failed to save record.": _l("未儲存，請修正標示紅字的欄位。"),
    "Failed to create record.": _l("未新增，請修正標示紅字的欄位。"),
}


class Reworded:
    """A library's translations with the messages of `LIBRARY_WORDING` in our wording."""

    def __init__(self, translations):
        self.translations = translations

    def gettext(self, message):
        if message in LIBRARY_WORDING:
            return str(LIBRARY_WORDING[message])
        return self.translations.gettext(message)

    ugettext = gettext

    def __getattr__(self, name):
        return getattr(self.translations, name)


@cache
def wtforms_translations():
    """WTForms' Traditional Chinese catalogue, in our wording where `LIBRARY_WORDING` says.

    A lookup for zh_Hant_TW falls back to WTForms' Simplified `zh` catalogue, so forms ask for
    the zh_TW one by name.
    """
    return Reworded(get_translations(["zh_TW"]))


def reword_flask_admin():
    """Make Flask-Admin's messages read in our wording (see `LIBRARY_WORDING`)."""
    from flask_admin.babel import domain

    # XXX: Flask-Admin looks its messages up through this one domain object and offers no other
    # hook short of shipping a compiled catalogue; wrapping it once keeps our text in this file
    if getattr(domain, "reworded", False):
        return
    catalogue = domain.get_translations
    domain.get_translations = lambda: Reworded(catalogue())
    domain.reworded = True


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
    """A deadline in Taipei time as people read it, ROC style: 115/06/10 23:59（星期三）.

    Deadlines end at 23:59:59; the seconds are left out, as people write a deadline.
    """
    if value is None:
        return ""
    local = to_taipei(value)
    weekday = "一二三四五六日"[local.weekday()]
    return f"{roc_date(local.date())} {local:%H:%M}（星期{weekday}）"


def academic_year_of(day):
    """The 學年度 a date falls in: 學年度 N runs 1 August N+1911 to 31 July N+1912."""
    if isinstance(day, datetime):
        day = to_taipei(day).date()
    return day.year - 1911 if day.month >= 8 else day.year - 1912


def academic_year_bounds(year):
    """First and last day of 學年度 `year`."""
    return date(year + 1911, 8, 1), date(year + 1912, 7, 31)
