"""What every back-office page shares: staff-only access, Chinese forms and formats, filters."""

import logging
from datetime import date, datetime
from decimal import Decimal

from flask import abort, flash, redirect, render_template, request, url_for
from flask_admin.actions import action
from flask_admin.babel import lazy_gettext as admin_lazy_gettext
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_admin.model import typefmt
from flask_babel import LazyString
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.exc import IntegrityError
from wtforms import DateTimeLocalField, SelectField, ValidationError
from wtforms.fields.choices import Choice, SelectChoice

from admin_app.extensions import db, login_manager
from admin_app.i18n import TAIPEI, _, _l, roc_date, roc_datetime, to_taipei
from models import Role
from models.operations import record_event
from models.types import LabelledEnum
from views.forms import BaseForm

log = logging.getLogger(__name__)

# views that only show rows refuse these endpoints outright, whatever is posted to them
WRITING_ENDPOINTS = frozenset(
    {"create_view", "edit_view", "delete_view", "action_view", "ajax_update"}
)


class StaffAccess:
    """Every back-office page is for staff and administrators; others are sent away."""

    def is_accessible(self):
        return current_user.is_authenticated and current_user.is_staff

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            flash(login_manager.login_message, "warning")
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)


def is_admin():
    """Whether the person at the keyboard is an administrator."""
    return current_user.is_authenticated and current_user.role is Role.admin


class AdminForm(BaseForm):
    """Flask-Admin's forms on Flask-WTF, so each carries the CSRF token and reads in Chinese."""

    def __init__(self, *args, **kwargs):
        # Flask-Admin's unique-value check compares the row it finds with the edited object
        self._obj = kwargs.get("obj")
        super().__init__(*args, **kwargs)

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        # Flask-Admin shows a field's errors only when they are plain text, so a message given
        # as a lazy string (message=_l(...)) would mark the form failed without saying why
        for field in self:
            if isinstance(field.errors, list):
                field.errors = [
                    str(error) if isinstance(error, LazyString) else error for error in field.errors
                ]
        return valid


class EnumSelectField(SelectField):
    """A drop-down of a LabelledEnum showing its Chinese labels and giving back the member."""

    def __init__(self, label=None, validators=None, enum=None, allow_blank=False, **kwargs):
        kwargs.pop("coerce", None)
        kwargs.pop("choices", None)
        choices = [SelectChoice("", "")] if allow_blank else []
        choices += [SelectChoice(member.value, str(member.label)) for member in enum]
        super().__init__(label, validators, choices=choices, **kwargs)
        self.enum = enum
        self.allow_blank = allow_blank

    def process_data(self, value):
        self.data = self._member(value)

    def process_formdata(self, valuelist):
        if valuelist:
            try:
                self.data = self._member(valuelist[0])
            except ValueError as error:
                self.data = None
                raise ValueError(self.gettext("Not a valid choice.")) from error

    def pre_validate(self, form):
        # a ValidationError, not a ValueError: WTForms turns only the former into a field error
        if self.data is None and not self.allow_blank:
            raise ValidationError(self.gettext("Not a valid choice."))

    def _value(self):
        return self.data.value if self.data is not None else ""

    def iter_choices(self):
        current = self._value()
        return [
            Choice(choice.value, choice.label, choice.value == current, choice.render_kw)
            for choice in self.choices
        ]

    def _member(self, value):
        if value is None or value == "":
            return None
        return value if isinstance(value, self.enum) else self.enum(value)


class TaipeiDateTimeField(DateTimeLocalField):
    """A date and time typed in Taipei time and stored as an aware moment."""

    def process_data(self, value):
        self.data = to_taipei(value).replace(tzinfo=None) if value is not None else None

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None:
            self.data = self.data.replace(tzinfo=TAIPEI)

    def _value(self):
        if self.raw_data:
            return " ".join(self.raw_data)
        return self.data.strftime("%Y-%m-%dT%H:%M") if self.data else ""


def _enum_label(view, value, name=None):
    return str(value.label)


def _datetime(view, value, name=None):
    return roc_datetime(value)


def _date(view, value, name=None):
    return roc_date(value)


def _decimal(view, value, name=None):
    return f"{value.normalize():f}"


def _bool(view, value, name=None):
    return _("是") if value else _("否")


# isinstance order matters: a datetime is also a date
FORMATTERS = {
    LabelledEnum: _enum_label,
    datetime: _datetime,
    date: _date,
    Decimal: _decimal,
    bool: _bool,
    type(None): typefmt.empty_formatter,
    list: typefmt.list_formatter,
}


class LazyOptions:
    """Filter options read from the database when the page is drawn, not when the app starts."""

    def __init__(self, load):
        self.load = load

    def __iter__(self):
        return iter(self.load())

    def __bool__(self):
        return True


class EqualsFilter(BaseSQLAFilter):
    """An 等於 filter whose value is converted (int, enum) before it reaches the query."""

    def __init__(self, column, name, options=None, convert=int):
        super().__init__(column, name, options=options)
        self.convert = convert

    def clean(self, value):
        return self.convert(value)

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) == value)

    def operation(self):
        return admin_lazy_gettext("equals")


def enum_filter(column, name, enum_class):
    """An 等於 filter offering the enum's Chinese labels."""
    return EqualsFilter(column, name, options=enum_class.choices(), convert=enum_class)


def yes_no(value):
    """'1' or '0' from a filter's URL value, as a bool."""
    if value not in ("0", "1"):
        raise ValueError(value)
    return value == "1"


def boolean_filter(column, name):
    """A 是/否 filter."""
    return EqualsFilter(column, name, options=[("1", _l("是")), ("0", _l("否"))], convert=yes_no)


ROUND_LABELS = {1: _l("初審"), 2: _l("複審")}


def round_filter(column, name):
    """初審/複審."""
    options = [(str(number), label) for number, label in ROUND_LABELS.items()]
    return EqualsFilter(column, name, options=options, convert=int)


def round_label(round_):
    """初審 for round 1, 複審 for round 2."""
    return str(ROUND_LABELS.get(round_, ""))


def link(url, text):
    """An escaped link for a list cell."""
    return Markup('<a href="{}">{}</a>').format(url, text)


class StaffModelView(StaffAccess, ModelView):
    """A Flask-Admin list and form in Traditional Chinese, for staff only."""

    form_base_class = AdminForm
    column_type_formatters = FORMATTERS
    column_type_formatters_detail = FORMATTERS
    page_size = 50
    can_set_page_size = False
    column_display_actions = True

    # whether creating, editing and deleting rows here is audited as create/update/delete_record;
    # a view that records its own kind of event for its changes turns this off
    audit_changes = True

    def __init__(self, model, **kwargs):
        super().__init__(model, db, **kwargs)

    def _on_model_change(self, form, model, is_created):
        # Flask-Admin calls this between filling the row and committing: one transaction for both
        super()._on_model_change(form, model, is_created)
        if self.audit_changes:
            if is_created:
                db.session.flush()  # the new row's number, for the trail
            action = "create_record" if is_created else "update_record"
            record_event(None, action, current_user, comment=self._audit_comment(model))

    def delete_model(self, model):
        if self.audit_changes:
            # added before Flask-Admin deletes and commits, so that both are kept or both undone
            record_event(None, "delete_record", current_user, comment=self._audit_comment(model))
        return super().delete_model(model)

    def _audit_comment(self, model):
        """「學校：臺北市立信義國民中學（#12）」: which row, as the audit trail shows it."""
        number = getattr(model, "id", None)
        return f"{self.name}：{model}" + (f"（#{number}）" if number else "")

    @action(
        "delete",
        admin_lazy_gettext("Delete"),
        admin_lazy_gettext("Are you sure you want to delete selected records?"),
    )
    def action_delete(self, ids):
        # Flask-Admin passes the ids as text, which PostgreSQL will not compare with an
        # integer key (operator does not exist: integer = character varying)
        return super().action_delete([int(value) for value in ids if str(value).isdigit()])

    def handle_view_exception(self, exc):
        if isinstance(exc, IntegrityError):
            log.info("back office refused a change to %s: %s", self.model.__name__, exc.orig)
            flash(
                _("資料與現有紀錄衝突（例如代碼或帳號重複，或仍有其他資料使用它），未儲存。"),
                "error",
            )
            return True
        return super().handle_view_exception(exc)


class ReadOnlyView(StaffModelView):
    """A list that staff read but nobody writes to, not even with a hand-made request."""

    can_create = False
    can_edit = False
    can_delete = False

    def _handle_view(self, name, **kwargs):
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        if name in WRITING_ENDPOINTS:
            abort(403)
        return None


def not_found(message, title=None):
    """A Chinese 404 page saying what was not found."""
    title = title or _("找不到資料")
    return render_template("error.html", status=404, title=title, message=message), 404
