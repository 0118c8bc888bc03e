"""Column types shared by the tables: UTC timestamps and enums stored with a CHECK."""

import enum
from datetime import UTC

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """A timestamp kept in UTC on every database and always returned time-zone aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # sqlite has no time zones: store the naive UTC value
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class LabelledEnum(enum.Enum):
    """An enum whose members carry a Traditional Chinese label for people."""

    def __new__(cls, value, label):
        member = object.__new__(cls)
        member._value_ = value
        member.label = label
        return member

    def __str__(self):
        return str(self.label)

    @classmethod
    def choices(cls):
        """(value, label) pairs for select fields."""
        return [(member.value, member.label) for member in cls]


def enum_column(enum_class, name, **kwargs):
    """A column storing the enum's value, with a CHECK constraint refusing any other value."""
    return sa.Column(
        sa.Enum(
            enum_class,
            name=name,
            native_enum=False,
            create_constraint=True,
            length=32,
            values_callable=lambda members: [member.value for member in members],
            validate_strings=True,
        ),
        **kwargs,
    )
