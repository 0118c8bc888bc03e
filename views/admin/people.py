"""使用者, 學校, 縣市 and 研習時數: the people and places the certification is about."""

import logging

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask_login import current_user
from wtforms import IntegerField, PasswordField
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from admin_app.extensions import db
from admin_app.i18n import _, _l, academic_year_of
from admin_app.security import PASSWORD_MIN_LENGTH, password_problems
from exports.imports import LOGIN_PATTERN
from models import Case, County, Position, Role, School, TrainingRecord, User
from models.operations import record_event

from .base import (
    EnumSelectField,
    EqualsFilter,
    LazyOptions,
    ReadOnlyView,
    StaffModelView,
    boolean_filter,
    enum_filter,
    is_admin,
)
from .cases import county_options

log = logging.getLogger(__name__)

# only administrators create or change these accounts
PRIVILEGED_ROLES = frozenset({Role.staff, Role.admin})

SCHOOL_LOOKUP = {"fields": ["name", "code"], "page_size": 20, "placeholder": _l("輸入校名或代碼")}
USER_LOOKUP = {"fields": ["name", "login"], "page_size": 20, "placeholder": _l("輸入姓名或帳號")}


class WriteOnlyPasswordField(PasswordField):
    """A new password, hashed in on_model_change; never copied onto the account as typed."""

    def populate_obj(self, obj, name):
        pass


def counties_in_order():
    """The counties for a drop-down, in their usual order."""
    return db.session.scalars(sa.select(County).order_by(County.sort_order)).all()


def login_format(form, field):
    """A validator: a login of the characters an import accepts too, without spaces."""
    # the message is made here, not at import: Flask-Admin shows only plain-text field errors
    if not LOGIN_PATTERN.match(field.data or ""):
        raise ValidationError(
            _("帳號只能使用英文字母、數字及 . _ @ -，不可有空白，長度 1 至 64 字。")
        )


def email_format(form, field):
    """A validator: an e-mail address that could be written to, or nothing."""
    value = (field.data or "").strip()
    if not value:
        return
    try:
        field.data = validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValidationError(_("電子郵件格式不正確，例如 wang@example.edu.tw。")) from error


def refuse_unknown_choice(field, message):
    """Refuse a drop-down value that names no row (a hand-made or stale form), not save NULL."""
    raw = [value for value in (field.raw_data or []) if value not in ("", "__None")]
    if raw and field.data is None:
        raise ValidationError(message)


def _original(model, attribute):
    """The value an attribute had before the form changed it."""
    history = sa.inspect(model).attrs[attribute].history
    return history.deleted[0] if history.deleted else getattr(model, attribute)


class UserView(StaffModelView):
    """使用者: staff manage applicant, reviewer and county accounts; admins manage every account."""

    can_delete = False  # accounts are deactivated, never deleted: cases and audit refer to them
    audit_changes = False  # on_model_change records create_account and update_account
    column_list = ["login", "name", "role", "position", "school", "county", "email", "active"]
    column_labels = {
        "login": _l("帳號"),
        "name": _l("姓名"),
        "email": _l("電子郵件"),
        "role": _l("角色"),
        "position": _l("職別"),
        "school": _l("學校"),
        "school.name": _l("學校名稱"),
        "county": _l("縣市"),
        "active": _l("啟用"),
        "created_at": _l("建立時間"),
        "new_password": _l("設定新密碼"),
    }
    column_searchable_list = ["login", "name", "email", "school.name"]
    column_sortable_list = ["login", "name", "role", ("school", "school.name"), "active"]
    column_default_sort = "login"
    column_filters = [
        enum_filter(User.role, _l("角色"), Role),
        EqualsFilter(User.county_id, _l("縣市"), options=LazyOptions(county_options)),
        boolean_filter(User.active, _l("啟用")),
    ]
    form_columns = [
        "login",
        "name",
        "email",
        "role",
        "position",
        "school",
        "county",
        "active",
        "new_password",
    ]
    form_overrides = {"role": EnumSelectField, "position": EnumSelectField}
    form_args = {
        "login": {"validators": [login_format]},
        "email": {"validators": [email_format]},
        "role": {"enum": Role},
        "position": {"enum": Position, "allow_blank": True},
        "county": {
            "query_factory": counties_in_order,
            "blank_text": _l("（不指定）"),
            "description": _l("縣市教專中心與審查委員填寫；申請人以學校所在縣市為準。"),
        },
    }
    form_ajax_refs = {"school": SCHOOL_LOOKUP}
    form_extra_fields = {
        "new_password": WriteOnlyPasswordField(
            _l("設定新密碼"),
            validators=[Optional(), Length(max=200)],
            description=_l(
                "建立帳號時必填；修改時留空表示不變更密碼。至少 %(count)s 個字元，"
                "不可全為數字，不可與帳號或姓名相同。",
                count=PASSWORD_MIN_LENGTH,
            ),
        )
    }

    def on_model_change(self, form, model, is_created):
        old_role = None if is_created else _original(model, "role")
        if not is_admin() and (model.role in PRIVILEGED_ROLES or old_role in PRIVILEGED_ROLES):
            raise ValidationError(_("只有系統管理員可以建立或修改認證中心人員與系統管理員帳號。"))
        changes_self = not is_created and model.id == current_user.id
        if changes_self and (model.role is not old_role or not model.active):
            raise ValidationError(_("不能變更自己的角色或停用自己的帳號，請由另一位管理員處理。"))
        self._check_account(form, model)

        password = form.new_password.data
        if password:
            problems = password_problems(password, model)
            if problems:
                raise ValidationError(" ".join(problems))
            model.set_password(password)
        elif is_created:
            raise ValidationError(_("建立帳號時必須設定密碼。"))

        # account changes are audited in the same transaction as the change itself
        action = "create_account" if is_created else "update_account"
        record_event(None, action, current_user, comment=f"{model.login}（{model.role.label}）")

    def _check_account(self, form, model):
        """Refuse what the form's own validators cannot see: rows that do not exist, a missing
        職別, an e-mail address another account already uses."""
        refuse_unknown_choice(form.school, _("所選的學校不存在，請重新選擇。"))
        refuse_unknown_choice(form.county, _("所選的縣市不存在，請重新選擇。"))
        if model.role is Role.applicant and model.position is None:
            raise ValidationError(_("申請人帳號須選擇職別（教師或校長）。"))

        email = (model.email or "").strip()
        if email:
            db.session.flush()  # a new account gets its id, so it does not find itself
            taken = db.session.scalar(
                sa.select(User.login).where(
                    sa.func.lower(User.email) == email.lower(), User.id != model.id
                )
            )
            if taken:
                raise ValidationError(
                    _("電子郵件「%(email)s」已由其他帳號使用，請改用另一個。", email=email)
                )

    def after_model_change(self, form, model, is_created):
        log.info(
            "account %s %s by %s (role %s)",
            model.login,
            "created" if is_created else "changed",
            current_user.login,
            model.role.value,
        )


class SchoolView(StaffModelView):
    """學校: each in one county; a school that accounts or cases refer to is not deleted."""

    column_list = ["code", "name", "county"]
    column_labels = {"code": _l("學校代碼"), "name": _l("校名"), "county": _l("縣市")}
    column_searchable_list = ["name", "code"]
    column_sortable_list = ["code", "name", ("county", "county.sort_order")]
    column_default_sort = "name"
    column_filters = [
        EqualsFilter(School.county_id, _l("縣市"), options=LazyOptions(county_options))
    ]
    form_columns = ["code", "name", "county"]
    form_args = {"county": {"query_factory": counties_in_order}}

    def on_model_delete(self, model):
        in_use = db.session.scalar(
            sa.select(
                sa.exists().where(User.school_id == model.id)
                | sa.exists().where(Case.school_id == model.id)
            )
        )
        if in_use:
            raise ValidationError(_("仍有帳號或申請案屬於這所學校，無法刪除。"))


class CountyView(ReadOnlyView):
    """縣市: the 22 counties and cities, fixed reference data."""

    column_list = ["name", "sort_order"]
    column_labels = {"name": _l("縣市"), "sort_order": _l("排序")}
    column_default_sort = "sort_order"
    column_sortable_list = ["name", "sort_order"]


class TrainingRecordView(StaffModelView):
    """研習時數: the advanced training hours that count towards eligibility."""

    column_list = ["user", "course", "hours", "completed_on", "academic_year", "advanced"]
    column_labels = {
        "user": _l("教師"),
        "user.name": _l("教師姓名"),
        "user.login": _l("教師帳號"),
        "course": _l("研習名稱"),
        "hours": _l("時數"),
        "completed_on": _l("完成日期"),
        "academic_year": _l("學年度"),
        "advanced": _l("進階培訓"),
    }
    column_searchable_list = ["user.name", "user.login", "course"]
    column_sortable_list = [
        ("user", "user.name"),
        "course",
        "hours",
        "completed_on",
        "academic_year",
    ]
    column_default_sort = ("completed_on", True)
    column_filters = [
        EqualsFilter(TrainingRecord.academic_year, _l("學年度")),
        boolean_filter(TrainingRecord.advanced, _l("進階培訓")),
    ]
    form_columns = ["user", "course", "hours", "completed_on", "academic_year", "advanced"]
    form_ajax_refs = {"user": USER_LOOKUP}
    form_args = {"hours": {"validators": [NumberRange(min=0.1, max=1000)]}}
    form_extra_fields = {
        "academic_year": IntegerField(
            _l("學年度"),
            validators=[Optional(), NumberRange(min=1, max=999)],
            description=_l("留空時依完成日期計算（學年度自 8 月 1 日起算）。"),
        )
    }

    def on_model_change(self, form, model, is_created):
        if model.academic_year is None and model.completed_on is not None:
            model.academic_year = academic_year_of(model.completed_on)
