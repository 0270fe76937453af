"""Adopt the legacy Users/Books/Checkouts tables, or create them on a new database.

The old Node/Sequelize back end created these tables itself; this revision keeps every
existing row and only adds what is missing (tables, columns with safe defaults). Foreign
keys of adopted tables are left as found: a later revision purges orphans and rebuilds them.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import logging

import sqlalchemy as sa

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

TIMESTAMP = sa.DateTime(timezone=True)


def timestamps():
    return [
        sa.Column("createdAt", TIMESTAMP, nullable=False),
        sa.Column("updatedAt", TIMESTAMP, nullable=False),
    ]


def users_columns():
    return [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        *timestamps(),
    ]


def books_columns():
    return [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("isbn", sa.String(255), unique=True),
        sa.Column("copies", sa.Integer, nullable=False, server_default="1"),
        *timestamps(),
    ]


def checkouts_columns():
    return [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "userId",
            sa.Integer,
            sa.ForeignKey("Users.id", ondelete="CASCADE", onupdate="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "bookId",
            sa.Integer,
            sa.ForeignKey("Books.id", ondelete="CASCADE", onupdate="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("checkedOutAt", TIMESTAMP, nullable=False),
        sa.Column("dueAt", TIMESTAMP, nullable=False),
        sa.Column("returnedAt", TIMESTAMP),
        sa.Column("renewals", sa.Integer, nullable=False, server_default="0"),
        *timestamps(),
    ]


TABLES = {
    "Users": (users_columns, []),
    "Books": (books_columns, [sa.CheckConstraint("copies >= 1", name="copies_positive")]),
    "Checkouts": (checkouts_columns, []),
}


def upgrade():
    inspector = sa.inspect(op.get_bind())
    for name, (columns, constraints) in TABLES.items():
        if not inspector.has_table(name):
            op.create_table(name, *columns(), *constraints, sqlite_autoincrement=True)
            continue
        present = {column["name"] for column in inspector.get_columns(name)}
        for column in columns():
            if column.name in present:
                continue
            # Legacy tables lack `renewals`; its server default (0) fills the old loans.
            op.add_column(name, column)


def downgrade():
    # A table holding rows may predate BookNexus (an adopted legacy database): rolling back
    # must not destroy the library's own data. Empty tables go; the others stay, as found,
    # and upgrading again adopts them as it did the first time.
    connection = op.get_bind()
    for name in reversed(TABLES):
        if connection.exec_driver_sql(f'SELECT EXISTS (SELECT 1 FROM "{name}")').scalar():
            log.warning('downgrade 0001: "%s" holds rows: kept (drop it by hand if you mean to)', name)
            continue
        op.drop_table(name)
