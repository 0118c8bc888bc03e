"""The tables of the certification system, their states, and the module that changes them."""

from .audit import AuditEvent
from .case import (
    ApplicationItem,
    Case,
    CaseState,
    Document,
    DocumentKind,
    FormEntry,
    ItemKind,
    state_label,
)
from .cycle import Cycle, UnmetRule, advanced_hours, unmet_rules
from .jobs import Job, JobState
from .login_throttle import LoginThrottle
from .messages import MailState, Notification, OutgoingMail
from .people import (
    COUNTY_NAMES,
    CertificateHeld,
    CertificateLevel,
    County,
    Position,
    Role,
    School,
    TrainingRecord,
    User,
)
from .review import Appeal, AppealOutcome, Decision, ReviewAssignment, Verdict
from .templates import FormTemplate, FormTemplateVersion, RecordKind

__all__ = [
    "Appeal",
    "AppealOutcome",
    "ApplicationItem",
    "AuditEvent",
    "Case",
    "CaseState",
    "CertificateHeld",
    "CertificateLevel",
    "County",
    "COUNTY_NAMES",
    "Cycle",
    "Decision",
    "Document",
    "DocumentKind",
    "FormEntry",
    "FormTemplate",
    "FormTemplateVersion",
    "ItemKind",
    "Job",
    "JobState",
    "LoginThrottle",
    "MailState",
    "Notification",
    "OutgoingMail",
    "Position",
    "RecordKind",
    "ReviewAssignment",
    "Role",
    "School",
    "TrainingRecord",
    "UnmetRule",
    "User",
    "Verdict",
    "advanced_hours",
    "state_label",
    "unmet_rules",
]
