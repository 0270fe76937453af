"""Create the append-only checkout log and import every existing checkout into it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

POSTGRESQL_APPEND_ONLY = """
CREATE FUNCTION "CheckoutEvents_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'CheckoutEvents is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER "CheckoutEvents_append_only"
    BEFORE UPDATE OR DELETE OR TRUNCATE ON "CheckoutEvents"
    FOR EACH STATEMENT EXECUTE FUNCTION "CheckoutEvents_append_only"();
"""

SQLITE_APPEND_ONLY = [
    f"""CREATE TRIGGER "CheckoutEvents_no_{operation.lower()}" BEFORE {operation}
        ON "CheckoutEvents"
        BEGIN SELECT RAISE(ABORT, 'CheckoutEvents is append-only: {operation} is not allowed'); END"""
    for operation in ("UPDATE", "DELETE")
]


def iso(column: str) -> str:
    return f"""to_char("{column}" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


# The state of each checkout as JSON, timestamps as ISO 8601: UTC, microseconds, offset.
IMPORT_DATA = {
    "postgresql": f"""json_build_object('checkedOutAt', {iso("checkedOutAt")}, 'dueAt', {iso("dueAt")},
                                       'returnedAt', {iso("returnedAt")}, 'renewals', renewals,
                                       'actor', NULL)""",
    "sqlite": """json_object('checkedOutAt', replace("checkedOutAt", ' ', 'T') || '+00:00',
                             'dueAt', replace("dueAt", ' ', 'T') || '+00:00',
                             'returnedAt', replace("returnedAt", ' ', 'T') || '+00:00',
                             'renewals', renewals, 'actor', NULL)""",
}
NOW = {"postgresql": "now()", "sqlite": "strftime('%Y-%m-%d %H:%M:%f000', 'now')"}


def upgrade():
    dialect = op.get_bind().dialect.name
    op.create_table(
        "CheckoutEvents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("checkoutId", sa.Integer, nullable=False),
        sa.Column("userId", sa.Integer, nullable=False),
        sa.Column("bookId", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("occurredAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sqlite_autoincrement=True,
    )
    for column in ("checkoutId", "userId", "bookId"):
        op.create_index(f"ix_CheckoutEvents_{column}_id", "CheckoutEvents", [column, "id"])

    # Checkouts made before the log existed: one `imported` event each, so that replaying
    # the log reproduces the table from the first day.
    op.execute(
        f"""INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
            SELECT id, "userId", "bookId", 'imported', {NOW[dialect]}, {IMPORT_DATA[dialect]}
            FROM "Checkouts" ORDER BY id"""
    )

    if dialect == "postgresql":
        op.execute(POSTGRESQL_APPEND_ONLY)
    else:
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)


def downgrade():
    op.drop_table("CheckoutEvents")  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute('DROP FUNCTION "CheckoutEvents_append_only"()')
