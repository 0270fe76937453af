"""The declarative base: one MetaData whose naming convention names every constraint."""

from datetime import UTC, datetime
from functools import cache

from sqlalchemy import DateTime, MetaData, inspect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


ISO_UTC_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'  # ``isoformat`` in PostgreSQL's to_char


def isoformat(value: datetime) -> str:
    """The one text form of a timestamp: UTC, microseconds, offset (as the SQL appends write it)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def timestamp(value: datetime | None) -> str | None:
    """A timestamp as the API shows it (None stays null). Serializers call it themselves:
    the JSON renderer's adapter lookup for each datetime costs more than the formatting."""
    return None if value is None else isoformat(value)


class UTCDateTime(TypeDecorator):
    """A timezone-aware timestamp on both databases.

    PostgreSQL stores ``timestamptz``; SQLite stores text without an offset, so values are
    normalised to UTC on the way in and given their UTC offset back on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and dialect.name == "sqlite":
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a timezone-aware column")
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    # PostgreSQL's timestamptz arrives aware and leaves as it is: no call per value there
    # (a page of loans has a hundred timestamps). SQLAlchemy lets a TypeDecorator say so.
    def bind_processor(self, dialect):
        return None if dialect.name == "postgresql" else super().bind_processor(dialect)

    def result_processor(self, dialect, coltype):
        return None if dialect.name == "postgresql" else super().result_processor(dialect, coltype)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@cache
def attribute_columns(model) -> tuple:
    """Every mapped column of ``model``, labelled with its attribute's name: a Core row of
    them reads like the model (``row.user_id``, ``row.created_at``), so the read side's rows
    and the write side's objects share one serializer per kind. The primary key comes first,
    as keyset paging (``web.api.keyset_rows``) reads it."""
    attributes = sorted(
        inspect(model).column_attrs, key=lambda attribute: not attribute.columns[0].primary_key
    )
    return tuple(getattr(model, attribute.key).label(attribute.key) for attribute in attributes)
