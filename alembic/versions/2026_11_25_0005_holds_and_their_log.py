"""Holds (reservations) and their append-only log, "HoldEvents".

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
OPEN = sa.text("status IN ('waiting', 'ready')")
READY = sa.text("status = 'ready'")

POSTGRESQL_APPEND_ONLY = """
CREATE FUNCTION "HoldEvents_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'HoldEvents is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER "HoldEvents_append_only"
    BEFORE UPDATE OR DELETE OR TRUNCATE ON "HoldEvents"
    FOR EACH STATEMENT EXECUTE FUNCTION "HoldEvents_append_only"();
"""

SQLITE_APPEND_ONLY = [
    f"""CREATE TRIGGER "HoldEvents_no_{operation.lower()}" BEFORE {operation}
        ON "HoldEvents"
        BEGIN SELECT RAISE(ABORT, 'HoldEvents is append-only: {operation} is not allowed'); END"""
    for operation in ("UPDATE", "DELETE")
]


def upgrade():
    op.create_table(
        "Holds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "userId",
            sa.Integer,
            sa.ForeignKey("Users.id", ondelete="CASCADE", onupdate="CASCADE", name="fk_Holds_userId_Users"),
            nullable=False,
        ),
        sa.Column(
            "bookId",
            sa.Integer,
            sa.ForeignKey("Books.id", ondelete="CASCADE", onupdate="CASCADE", name="fk_Holds_bookId_Books"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("placedAt", TIMESTAMP, nullable=False),
        sa.Column("readyAt", TIMESTAMP),
        sa.Column("expiresAt", TIMESTAMP),
        sa.Column("endedAt", TIMESTAMP),
        sa.Column("createdAt", TIMESTAMP, nullable=False),
        sa.Column("updatedAt", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('waiting', 'ready', 'fulfilled', 'cancelled', 'expired')", name="ck_Holds_status"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_Holds_bookId_status_id", "Holds", ["bookId", "status", "id"])
    op.create_index("ix_Holds_userId_status", "Holds", ["userId", "status"])
    op.create_index(
        "uq_Holds_userId_bookId_open",
        "Holds",
        ["userId", "bookId"],
        unique=True,
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )
    op.create_index(
        "ix_Holds_expiresAt_ready", "Holds", ["expiresAt"], postgresql_where=READY, sqlite_where=READY
    )

    op.create_table(
        "HoldEvents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("holdId", sa.Integer, nullable=False),
        sa.Column("userId", sa.Integer, nullable=False),
        sa.Column("bookId", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("occurredAt", TIMESTAMP, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sqlite_autoincrement=True,
    )
    for column in ("holdId", "userId", "bookId"):
        op.create_index(f"ix_HoldEvents_{column}_id", "HoldEvents", [column, "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_APPEND_ONLY)
    else:
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)


def downgrade():
    op.drop_table("HoldEvents")  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute('DROP FUNCTION "HoldEvents_append_only"()')
    op.drop_table("Holds")
