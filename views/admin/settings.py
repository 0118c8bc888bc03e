"""認證梯次 and 紀錄表範本: the data staff set up before and during an intake."""

import json
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from flask import request
from flask_login import current_user
from sqlalchemy.orm import joinedload, selectinload
from wtforms import IntegerField, TextAreaField
from wtforms.validators import NumberRange, Optional, Regexp, StopValidation, ValidationError

from admin_app.extensions import db
from admin_app.i18n import _, _l
from models import FormEntry, FormTemplate, FormTemplateVersion, RecordKind
from models.form_schema import render_readable, validate_schema

from .base import EnumSelectField, StaffModelView, TaipeiDateTimeField, boolean_filter, enum_filter

log = logging.getLogger(__name__)

STARTER_FIELDS = [
    {"key": "content", "label": "內容", "type": "textarea", "required": True},
]


def pretty_json(fields):
    """A field list as staff edit it: indented, Chinese left readable."""
    return json.dumps(fields, ensure_ascii=False, indent=2)


class CycleView(StaffModelView):
    """認證梯次: a year's window, eligibility rules, appeal window and certificate numbers."""

    can_delete = False  # cases belong to their cycle
    column_list = [
        "academic_year",
        "name",
        "opens_at",
        "closes_at",
        "required_hours",
        "hours_years",
        "appeal_days",
        "reviewers_per_case",
        "certificate_counter",
    ]
    column_labels = {
        "academic_year": _l("學年度"),
        "name": _l("名稱"),
        "opens_at": _l("開始申請"),
        "closes_at": _l("截止申請"),
        "required_hours": _l("進階研習時數門檻"),
        "hours_years": _l("時數採計學年度"),
        "hours_from_year": _l("時數採計起始學年度"),
        "hours_to_year": _l("時數採計結束學年度"),
        "requires_basic_certificate": _l("須持有初階證書"),
        "appeal_days": _l("申復期限（日）"),
        "reviewers_per_case": _l("每案審查委員數"),
        "review_days": _l("委員審查天數"),
        "certificate_format": _l("證號格式"),
        "certificate_counter": _l("已發證號數"),
    }
    column_sortable_list = ["academic_year", "opens_at", "closes_at"]
    column_default_sort = ("academic_year", True)
    column_formatters = {
        "hours_years": lambda view, context, cycle, name: (
            f"{cycle.hours_from_year}–{cycle.hours_to_year}"
        ),
    }
    form_columns = [
        "academic_year",
        "name",
        "opens_at",
        "closes_at",
        "required_hours",
        "hours_from_year",
        "hours_to_year",
        "requires_basic_certificate",
        "appeal_days",
        "reviewers_per_case",
        "review_days",
        "certificate_format",
    ]
    form_overrides = {"opens_at": TaipeiDateTimeField, "closes_at": TaipeiDateTimeField}
    form_args = {
        "academic_year": {"validators": [NumberRange(min=100, max=999)]},
        "opens_at": {"description": _l("臺北時間")},
        "closes_at": {"description": _l("臺北時間；此刻起不再受理送出。")},
        "required_hours": {"validators": [NumberRange(min=0, max=1000)]},
        "appeal_days": {
            "validators": [NumberRange(min=0, max=365)],
            "description": _l("自通知日起算的日曆天數（含假日），最後一天至 23:59 止。"),
        },
        "reviewers_per_case": {"validators": [NumberRange(min=1, max=10)]},
        "review_days": {"validators": [NumberRange(min=1, max=365)]},
        "certificate_format": {
            "description": _l(
                "以 {year} 代表學年度、{seq:05d} 代表五位數流水號；"
                "例如填「進階回饋字第{year}{seq:05d}號」，115 學年度第 1 張證號為"
                "「進階回饋字第11500001號」。"
            ),
        },
    }
    form_extra_fields = {
        "hours_from_year": IntegerField(
            _l("時數採計起始學年度"),
            validators=[Optional(), NumberRange(min=1, max=999)],
            description=_l("留空時為本梯次學年度的前兩年。"),
        ),
        "hours_to_year": IntegerField(
            _l("時數採計結束學年度"),
            validators=[Optional(), NumberRange(min=1, max=999)],
            description=_l("留空時為本梯次學年度的前一年。"),
        ),
    }

    def on_model_change(self, form, model, is_created):
        if model.hours_from_year is None:
            model.hours_from_year = model.academic_year - 2
        if model.hours_to_year is None:
            model.hours_to_year = model.academic_year - 1

        problems = cycle_problems(model)
        if problems:
            raise ValidationError("；".join(problems))


def cycle_problems(cycle):
    """What is wrong with a cycle's settings, one Chinese sentence each."""
    problems = []
    if cycle.opens_at and cycle.closes_at and cycle.closes_at <= cycle.opens_at:
        problems.append(_("截止申請時間必須晚於開始申請時間。"))
    if cycle.hours_from_year > cycle.hours_to_year:
        problems.append(_("時數採計的起始學年度不可晚於結束學年度。"))
    if cycle.hours_to_year > cycle.academic_year:
        problems.append(_("時數採計的結束學年度不可晚於本梯次的學年度。"))
    try:
        first = cycle.certificate_format.format(year=cycle.academic_year, seq=1)
        second = cycle.certificate_format.format(year=cycle.academic_year, seq=2)
    except (KeyError, IndexError, ValueError, AttributeError):
        problems.append(_("證號格式只能使用 {year} 與 {seq}（例如 {seq:05d}）。"))
    else:
        if first == second:
            problems.append(_("證號格式必須包含流水號 {seq}，否則每張證書的證號都會相同。"))
        elif len(first) > 60:
            problems.append(_("證號格式產生的證號太長（上限 60 字）。"))
    return problems


class TemplateFieldsField(TextAreaField):
    """A template's field list as JSON text, parsed and checked with the template rules."""

    parsed = None

    def pre_validate(self, form):
        self.parsed = None
        text = (self.data or "").strip()
        if not text:
            raise StopValidation(_("請填寫欄位定義（JSON 陣列）。"))
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as error:
            raise StopValidation(
                _(
                    "欄位定義不是有效的 JSON：第 %(line)s 行第 %(column)s 字附近有誤"
                    "（常見原因：少了逗號、引號或括號，或最後一項後面多了逗號）。",
                    line=error.lineno,
                    column=error.colno,
                )
            ) from error

        problems = validate_schema(fields)
        if problems:
            self.errors.extend(problems)
            raise StopValidation()
        self.parsed = fields

    def populate_obj(self, obj, name):
        # the fields live on a new FormTemplateVersion, added in on_model_change
        pass


@dataclass(frozen=True)
class VersionRow:
    """A template version with what staff need to know about it."""

    version: FormTemplateVersion
    field_count: int
    entry_count: int


class FormTemplateView(StaffModelView):
    """紀錄表範本: editing the fields adds a version; filled records keep the version they used."""

    can_view_details = True
    edit_template = "admin/form_template_edit.html"
    details_template = "admin/form_template_details.html"

    column_list = ["kind", "name", "code", "current_version", "active", "sort_order"]
    column_labels = {
        "kind": _l("紀錄表"),
        "code": _l("代碼"),
        "name": _l("範本名稱"),
        "description": _l("說明"),
        "current_version": _l("目前版本"),
        "active": _l("啟用"),
        "sort_order": _l("排序"),
        "fields_json": _l("欄位定義（JSON）"),
    }
    column_searchable_list = ["name", "code"]
    column_sortable_list = ["kind", "name", "code", "active", "sort_order"]
    column_default_sort = [("kind", False), ("sort_order", False)]
    column_filters = [
        enum_filter(FormTemplate.kind, _l("紀錄表"), RecordKind),
        boolean_filter(FormTemplate.active, _l("啟用")),
    ]
    column_formatters = {
        "current_version": lambda view, context, template, name: (
            _("第 %(number)s 版", number=template.current_version.version)
            if template.current_version
            else ""
        ),
    }
    column_details_list = ["kind", "code", "name", "description", "active", "sort_order"]

    form_columns = ["code", "kind", "name", "description", "active", "sort_order", "fields_json"]
    form_overrides = {"kind": EnumSelectField, "description": TextAreaField}
    form_args = {
        "kind": {"enum": RecordKind},
        "code": {
            "validators": [
                Regexp(
                    r"^[a-z][a-z0-9_]*$",
                    message=_l("代碼只能使用小寫英文字母、數字與底線，並以字母開頭。"),
                )
            ],
            "description": _l("英數字代碼，建立後不能修改，例如 pre_conference_c。"),
        },
        "active": {"description": _l("停用的範本不再出現在申請人的選單中，已填寫的紀錄不受影響。")},
    }
    form_extra_fields = {
        "fields_json": TemplateFieldsField(
            _l("欄位定義（JSON）"),
            default=pretty_json(STARTER_FIELDS),
            render_kw={"rows": 24, "class": "form-control text-monospace"},
            description=_l(
                "修改欄位並儲存後，會新增一個版本；已填寫的紀錄仍依原版本顯示。"
                "只修改名稱、說明或啟用狀態時不會新增版本。"
            ),
        )
    }

    def get_query(self):
        return super().get_query().options(selectinload(FormTemplate.versions))

    def get_edit_form(self):
        form_class = super().get_edit_form()
        # the code and kind of a template are fixed once records may point at it
        del form_class.code
        del form_class.kind
        return form_class

    def on_form_prefill(self, form, id):
        # after a refused save keep what staff typed, so that they can correct it
        if request.method == "GET":
            template = self.get_one(id)
            if template.current_version is not None:
                form.fields_json.data = pretty_json(template.current_version.fields)

    def on_model_change(self, form, model, is_created):
        fields = form.fields_json.parsed
        current = None if is_created else model.current_version
        if current is not None and current.fields == fields:
            return

        number = current.version + 1 if current is not None else 1
        model.versions.append(
            FormTemplateVersion(version=number, fields=fields, created_by_id=current_user.id)
        )
        log.info("template %s: version %s added by %s", model.code, number, current_user.login)

    def on_model_delete(self, model):
        version_ids = [version.id for version in model.versions]
        used = version_ids and db.session.scalar(
            sa.select(sa.exists().where(FormEntry.template_version_id.in_(version_ids)))
        )
        if used:
            raise ValidationError(_("已有申請人以此範本填寫紀錄表，無法刪除；請改為取消「啟用」。"))
        for version in model.versions:
            db.session.delete(version)

    def version_history(self, template):
        """Every version of a template, newest first, with how many records use each."""
        versions = db.session.scalars(
            sa.select(FormTemplateVersion)
            .where(FormTemplateVersion.template_id == template.id)
            .options(joinedload(FormTemplateVersion.created_by))
            .order_by(FormTemplateVersion.version.desc())
        ).all()
        counts = dict(
            db.session.execute(
                sa.select(FormEntry.template_version_id, sa.func.count())
                .where(FormEntry.template_version_id.in_([version.id for version in versions]))
                .group_by(FormEntry.template_version_id)
            ).all()
        )
        return [
            VersionRow(version, len(version.fields or []), counts.get(version.id, 0))
            for version in versions
        ]

    def preview(self, version):
        """The version's fields as a blank record reads, to check the layout."""
        return render_readable(version.fields, {})

    def pretty(self, version):
        """The version's fields as indented JSON."""
        return pretty_json(version.fields)
