"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


class UTCDateTime(sa.TypeDecorator):
    """An instant, stored in UTC and always returned timezone-aware.

    SQLite has no timezone type and hands back naive datetimes; PostgreSQL's
    `timestamptz` hands them back in the session's zone. Normalising both to
    UTC here means no caller ever compares a naive and an aware datetime.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # Stored naive in UTC so that string comparison orders instants correctly.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# 64-bit keys on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the rowid alias.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
