"""Intake cycles and the eligibility rules they carry as data."""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from admin_app.extensions import db
from admin_app.i18n import TAIPEI, _, now_utc, roc_datetime

from .people import CertificateLevel, TrainingRecord
from .types import UTCDateTime


class Cycle(db.Model):
    """One year's intake: its window, eligibility rules, appeal window and certificate numbers."""

    __tablename__ = "cycle"

    id = sa.Column(sa.Integer, primary_key=True)
    academic_year = sa.Column(sa.Integer, nullable=False, unique=True)
    name = sa.Column(sa.String(100), nullable=False)
    opens_at = sa.Column(UTCDateTime, nullable=False)
    closes_at = sa.Column(UTCDateTime, nullable=False)
    required_hours = sa.Column(sa.Numeric(6, 1), nullable=False, default=18)
    # the 學年度 range the advanced hours must fall in; default: the two before the cycle's year
    hours_from_year = sa.Column(sa.Integer, nullable=False)
    hours_to_year = sa.Column(sa.Integer, nullable=False)
    requires_basic_certificate = sa.Column(sa.Boolean, nullable=False, default=True)
    appeal_days = sa.Column(sa.Integer, nullable=False, default=10)
    reviewers_per_case = sa.Column(sa.Integer, nullable=False, default=2)
    review_days = sa.Column(sa.Integer, nullable=False, default=14)
    # str.format pattern with {year} and {seq}, e.g. "進階回饋字第{year}{seq:05d}號"
    certificate_format = sa.Column(
        sa.String(100), nullable=False, default="進階回饋字第{year}{seq:05d}號"
    )
    certificate_counter = sa.Column(sa.Integer, nullable=False, default=0)

    __table_args__ = (
        sa.CheckConstraint("closes_at > opens_at", name="window_order"),
        sa.CheckConstraint("hours_to_year >= hours_from_year", name="hours_years_order"),
        sa.CheckConstraint("required_hours >= 0", name="hours_not_negative"),
        sa.CheckConstraint("appeal_days >= 0", name="appeal_days_not_negative"),
        sa.CheckConstraint("reviewers_per_case >= 1", name="at_least_one_reviewer"),
        sa.CheckConstraint("certificate_counter >= 0", name="counter_not_negative"),
    )

    def __str__(self):
        return self.name

    def is_open(self, moment=None):
        """Whether applications may be submitted at this moment."""
        moment = moment or now_utc()
        return self.opens_at <= moment < self.closes_at

    def appeal_deadline(self, notified_at):
        """The last moment to appeal: 23:59:59 Taipei time on the N-th calendar day after notice."""
        notified_day = notified_at.astimezone(TAIPEI).date()
        last_day = notified_day + timedelta(days=self.appeal_days)
        return datetime.combine(last_day, time(23, 59, 59), tzinfo=TAIPEI)

    def format_certificate_number(self, seq):
        """The certificate number for the seq-th certificate of this cycle."""
        return self.certificate_format.format(year=self.academic_year, seq=seq)

    @property
    def window_label(self):
        return f"{roc_datetime(self.opens_at)} – {roc_datetime(self.closes_at)}"


@dataclass(frozen=True)
class UnmetRule:
    """One eligibility rule a person does not meet, with the figures to show them."""

    message: str


def advanced_hours(user_id, from_year, to_year):
    """The person's advanced training hours completed in the given 學年度 range."""
    total = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(TrainingRecord.hours), 0)).where(
            TrainingRecord.user_id == user_id,
            TrainingRecord.advanced.is_(True),
            TrainingRecord.academic_year.between(from_year, to_year),
        )
    )
    return Decimal(total)


def unmet_rules(user, cycle):
    """Every eligibility rule of the cycle the person does not meet; empty means eligible."""
    unmet = []

    hours = advanced_hours(user.id, cycle.hours_from_year, cycle.hours_to_year)
    if hours < cycle.required_hours:
        unmet.append(
            UnmetRule(
                _(
                    "進階培訓時數不足：%(start)s–%(end)s 學年度已完成 %(hours)s 小時，"
                    "需 %(required)s 小時。",
                    start=cycle.hours_from_year,
                    end=cycle.hours_to_year,
                    hours=_hours_text(hours),
                    required=_hours_text(cycle.required_hours),
                )
            )
        )

    if cycle.requires_basic_certificate and not user.holds(CertificateLevel.basic):
        unmet.append(UnmetRule(_("尚未取得初階專業回饋人才認證。")))

    if user.holds(CertificateLevel.advanced):
        unmet.append(UnmetRule(_("已取得進階專業回饋人才認證，無須再次申請。")))

    return unmet


def _hours_text(value):
    """Hours without a trailing .0: 12, 12.5."""
    value = Decimal(value).normalize()
    return f"{value:f}"
