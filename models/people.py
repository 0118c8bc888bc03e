"""Counties, schools, user accounts with roles, training records and certificates held."""

import hashlib
import hmac
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from admin_app.extensions import db
from admin_app.i18n import _l, now_utc

from .types import LabelledEnum, UTCDateTime, enum_column

COUNTY_NAMES = (
    "臺北市 新北市 桃園市 臺中市 臺南市 高雄市 基隆市 新竹市 嘉義市 新竹縣 苗栗縣 "
    "彰化縣 南投縣 雲林縣 嘉義縣 屏東縣 宜蘭縣 花蓮縣 臺東縣 澎湖縣 金門縣 連江縣"
).split()


class Role(LabelledEnum):
    """What an account may do in the system."""

    applicant = "applicant", _l("申請人")
    staff = "staff", _l("認證中心人員")
    reviewer = "reviewer", _l("審查委員")
    county_officer = "county_officer", _l("縣市教專中心")
    admin = "admin", _l("系統管理員")


class Position(LabelledEnum):
    """An applicant's post, shown as 職別."""

    teacher = "teacher", _l("教師")
    principal = "principal", _l("校長")


class CertificateLevel(LabelledEnum):
    """The certificates of the programme a person can hold."""

    basic = "basic", _l("初階")
    advanced = "advanced", _l("進階")


class County(db.Model):
    """One of the 22 counties and cities, each with its own county centre."""

    __tablename__ = "county"

    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(10), nullable=False, unique=True)
    sort_order = sa.Column(sa.Integer, nullable=False, default=0)

    def __str__(self):
        return self.name


class School(db.Model):
    """A school, in one county."""

    __tablename__ = "school"

    id = sa.Column(sa.Integer, primary_key=True)
    code = sa.Column(sa.String(20), unique=True)
    name = sa.Column(sa.String(100), nullable=False)
    county_id = sa.Column(sa.ForeignKey("county.id"), nullable=False, index=True)

    county = db.relationship(County, lazy="joined")

    __table_args__ = (sa.UniqueConstraint("county_id", "name", name="uq_school_county_name"),)

    def __str__(self):
        return f"{self.county.name} {self.name}" if self.county else self.name


class User(UserMixin, db.Model):
    """A person who logs in: applicant, staff, reviewer, county officer or administrator."""

    __tablename__ = "user"

    id = sa.Column(sa.Integer, primary_key=True)
    login = sa.Column(sa.String(64), nullable=False, unique=True)
    name = sa.Column(sa.String(64), nullable=False)
    email = sa.Column(sa.String(254), nullable=False, default="")
    role = enum_column(Role, "user_role", nullable=False, default=Role.applicant)
    position = enum_column(Position, "user_position", nullable=True)
    school_id = sa.Column(sa.ForeignKey("school.id"), index=True)
    county_id = sa.Column(sa.ForeignKey("county.id"), index=True)
    password_hash = sa.Column(sa.String(256), nullable=False, default="")
    active = sa.Column(sa.Boolean, nullable=False, default=True)
    created_at = sa.Column(UTCDateTime, nullable=False, default=now_utc)

    school = db.relationship(School, lazy="joined")
    county = db.relationship(County, lazy="joined")

    def __str__(self):
        return f"{self.name}（{self.login}）"

    @property
    def is_active(self):
        return self.active

    def set_password(self, password):
        """Store a salted hash of the password, never the password."""
        self.password_hash = generate_password_hash(password)

    def get_id(self):
        """What the session remembers: the id, and a stamp that a new password changes.

        Changing or resetting the password changes the stamp, which ends every session that
        was opened with the old one.
        """
        return f"{self.id}.{self.session_stamp()}"

    def session_stamp(self):
        """A keyed digest of the password hash, so the cookie reveals nothing of it."""
        key = current_app.config["SECRET_KEY"].encode()
        digest = hmac.new(key, (self.password_hash or "").encode(), hashlib.sha256)
        return digest.hexdigest()[:16]

    def check_password(self, password):
        """Whether the password matches the stored hash."""
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def is_staff(self):
        """Staff and administrators run the back office."""
        return self.role in (Role.staff, Role.admin)

    @property
    def is_applicant(self):
        return self.role is Role.applicant

    @property
    def home_county(self):
        """The county an account belongs to: its own, or its school's."""
        if self.county is not None:
            return self.county
        return self.school.county if self.school is not None else None

    def holds(self, level):
        """Whether the person holds a certificate of the given level."""
        return any(held.level is level for held in self.certificates)


class TrainingRecord(db.Model):
    """Hours of advanced training a person completed, counted towards eligibility."""

    __tablename__ = "training_record"

    id = sa.Column(sa.Integer, primary_key=True)
    user_id = sa.Column(sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True)
    course = sa.Column(sa.String(200), nullable=False)
    hours = sa.Column(sa.Numeric(6, 1), nullable=False)
    completed_on = sa.Column(sa.Date, nullable=False)
    academic_year = sa.Column(sa.Integer, nullable=False)
    advanced = sa.Column(sa.Boolean, nullable=False, default=True)

    user = db.relationship(User, backref=db.backref("training_records", lazy="select"))

    __table_args__ = (
        sa.CheckConstraint("hours > 0", name="positive_hours"),
        sa.UniqueConstraint("user_id", "course", "completed_on", name="uq_training_record_entry"),
    )

    @property
    def hours_value(self):
        return Decimal(self.hours)


class CertificateHeld(db.Model):
    """A certificate a person already held, such as 初階; numbers issued here live on the case."""

    __tablename__ = "certificate_held"

    id = sa.Column(sa.Integer, primary_key=True)
    user_id = sa.Column(sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True)
    level = enum_column(CertificateLevel, "certificate_level", nullable=False)
    number = sa.Column(sa.String(40), nullable=False)
    issued_on = sa.Column(sa.Date)

    user = db.relationship(User, backref=db.backref("certificates", lazy="select"))

    __table_args__ = (sa.UniqueConstraint("level", "number", name="uq_certificate_held_number"),)
