"""Items: each copy a physical item with a barcode; loans lend items, holds gain a pickup branch.

New: "Items" (book, barcode, home and current branch, item type, call number, status, the
transit it is on) and its append-only log "ItemEvents" (no reader: the loan log links items
to readers); "Checkouts"."itemId", "branchId" and "outcome"; "Holds"."pickupBranchId" and
"itemId", and the open-hold index counting the new status ``in_transit``.

The data, set-based, in this transaction:

- every book's ``copies`` become that many items at the default branch (``booknexus.branch.
  default_code``), barcoded ``<prefix><book id>-<n>`` (the prefix: ``booknexus.items.
  barcode_prefix``, ``BN`` without it);
- each open loan is given an item of its book (checked out) and the default branch, each ready
  hold the next (on the hold shelf); each open hold picks up at the default branch;
- a book with more open loans and ready holds than copies (legacy data) gets the items it
  lacks and its ``copies`` raised to match: reported, never a loan dropped;
- the logs learn it: an item's ``created`` event, an ``updated`` event (reason ``items``) for
  every loan and hold given an item or a branch, so replay still equals the tables.

The capture triggers of "Checkouts" and "Holds" are taken off for the conversion (it logs
itself) and put back logging the new columns, with those of "Items" beside them: the SQL that
``booknexus.circulation.eventlog.capture.install`` generated at this revision, frozen below.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

import logging
import re
from datetime import UTC, datetime

import sqlalchemy as sa

from alembic import context, op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

TIMESTAMP = sa.DateTime(timezone=True)
PREFIX = re.compile(r"[A-Z0-9-]{0,16}")
STATUSES = (
    "available",
    "checked_out",
    "on_hold_shelf",
    "in_transit",
    "missing",
    "lost",
    "claimed_returned",
    "withdrawn",
)
BARCODE_FORM = {
    "postgresql": "barcode ~ '^[A-Z0-9-]{1,32}$'",
    "sqlite": "length(barcode) BETWEEN 1 AND 32 AND barcode NOT GLOB '*[^A-Z0-9-]*'",
}
OLD_HOLD_STATUSES = "status IN ('waiting', 'ready', 'fulfilled', 'cancelled', 'expired')"
NEW_HOLD_STATUSES = "status IN ('waiting', 'in_transit', 'ready', 'fulfilled', 'cancelled', 'expired')"
OLD_OPEN = sa.text("status IN ('waiting', 'ready')")
NEW_OPEN = sa.text("status IN ('waiting', 'in_transit', 'ready')")
LOAN_OPEN = sa.text('"returnedAt" IS NULL')

POSTGRESQL_APPEND_ONLY = """
CREATE FUNCTION "ItemEvents_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ItemEvents is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER "ItemEvents_append_only"
    BEFORE UPDATE OR DELETE OR TRUNCATE ON "ItemEvents"
    FOR EACH STATEMENT EXECUTE FUNCTION "ItemEvents_append_only"();
"""
SQLITE_APPEND_ONLY = [
    f"""CREATE TRIGGER "ItemEvents_no_{operation.lower()}" BEFORE {operation}
        ON "ItemEvents"
        BEGIN SELECT RAISE(ABORT, 'ItemEvents is append-only: {operation} is not allowed'); END"""
    for operation in ("UPDATE", "DELETE")
]


def barcode_prefix(settings: dict) -> str:
    prefix = str(settings.get("booknexus.items.barcode_prefix", "BN")).strip().upper()
    if not PREFIX.fullmatch(prefix):
        raise ValueError(f"booknexus.items.barcode_prefix = {prefix!r}: give 0-16 letters, digits or -")
    return prefix


def default_branch_id(settings: dict) -> int:
    code = str(settings.get("booknexus.branch.default_code", "MAIN")).strip().upper()
    found = op.get_bind().execute(sa.text('SELECT id FROM "Branches" WHERE code = :code'), {"code": code})
    branch_id = found.scalar()
    if branch_id is None:
        raise ValueError(f"booknexus.branch.default_code = {code!r}: no branch has that code")
    return branch_id


def fk(column: str, table: str, source: str, **options) -> sa.ForeignKey:
    return sa.ForeignKey(f"{table}.id", name=f"fk_{source}_{column}_{table}", onupdate="CASCADE", **options)


def create_tables(dialect: str) -> None:
    op.create_table(
        "Items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("bookId", sa.Integer, fk("bookId", "Books", "Items", ondelete="CASCADE"), nullable=False),
        sa.Column("barcode", sa.String(32), nullable=False),
        sa.Column("homeBranchId", sa.Integer, fk("homeBranchId", "Branches", "Items"), nullable=False),
        sa.Column("currentBranchId", sa.Integer, fk("currentBranchId", "Branches", "Items"), nullable=False),
        sa.Column("transitToBranchId", sa.Integer, fk("transitToBranchId", "Branches", "Items")),
        sa.Column("transitSentAt", TIMESTAMP),
        sa.Column("itemType", sa.String(16), nullable=False, server_default="book"),
        sa.Column("callNumber", sa.String(64)),
        sa.Column("status", sa.String(20), nullable=False, server_default="available"),
        sa.Column("createdAt", TIMESTAMP, nullable=False),
        sa.Column("updatedAt", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_Items"),
        sa.UniqueConstraint("barcode", name="uq_Items_barcode"),
        sa.CheckConstraint(BARCODE_FORM[dialect], name="ck_Items_barcode_form"),
        sa.CheckConstraint(
            "status IN ({})".format(", ".join(f"'{status}'" for status in STATUSES)),
            name="ck_Items_status_known",
        ),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "ItemEvents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("bookId", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("occurredAt", TIMESTAMP, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("itemId", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ItemEvents"),
        sqlite_autoincrement=True,
    )
    for column in ("itemId", "bookId"):
        op.create_index(f"ix_ItemEvents_{column}_id", "ItemEvents", [column, "id"])
    if dialect == "postgresql":
        op.execute(POSTGRESQL_APPEND_ONLY)
    else:
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)


def add_columns(dialect: str) -> None:
    """Nullable columns without defaults: no table rewrite on either database (SQLite's ADD
    COLUMN takes a REFERENCES clause as long as the default is null)."""
    columns = {
        "Checkouts": [
            ("itemId", "INTEGER", "Items", "CASCADE"),
            ("branchId", "INTEGER", "Branches", None),
            ("outcome", "VARCHAR(16)", None, None),
        ],
        "Holds": [
            ("pickupBranchId", "INTEGER", "Branches", None),
            ("itemId", "INTEGER", "Items", "SET NULL"),
        ],
    }
    for table, added in columns.items():
        for name, type_, target, on_delete in added:
            reference = ""
            if target:
                constraint = f'CONSTRAINT "fk_{table}_{name}_{target}" '
                deleting = f" ON DELETE {on_delete}" if on_delete else ""
                reference = f' {constraint}REFERENCES "{target}" (id){deleting} ON UPDATE CASCADE'
            op.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {type_}{reference}')


def hold_statuses(dialect: str, old: str, new: str) -> None:
    """ck_Holds_ck_Holds_status (so named by revision 0005's naming convention) admits ``new``
    instead of ``old``. SQLite cannot alter a constraint: its documented procedure for a constraint that every row satisfies either way is to rewrite the
    table's definition in the schema and bump the schema version (no table rebuild, so the
    capture triggers and indexes stay). PostgreSQL swaps the constraint and validates it."""
    if dialect == "postgresql":
        op.execute('ALTER TABLE "Holds" DROP CONSTRAINT "ck_Holds_ck_Holds_status"')
        op.execute(f'ALTER TABLE "Holds" ADD CONSTRAINT "ck_Holds_ck_Holds_status" CHECK ({new}) NOT VALID')
        op.execute('ALTER TABLE "Holds" VALIDATE CONSTRAINT "ck_Holds_ck_Holds_status"')
        return
    bind = op.get_bind()
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    changed = bind.execute(
        sa.text(
            "UPDATE sqlite_master SET sql = replace(sql, :old, :new) WHERE type = 'table' AND name = 'Holds'"
        ),
        {"old": old, "new": new},
    ).rowcount
    bind.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    definition = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'Holds'").scalar()
    if changed != 1 or new not in definition:
        raise RuntimeError(f'"Holds" has no constraint {old!r} to widen: {definition}')


def series(dialect: str) -> str:
    """``n`` = 1 .. every book's item count, joined to the plan ``p``."""
    if dialect == "postgresql":
        return "item_plan p CROSS JOIN LATERAL generate_series(1, p.items) AS s(n)"
    return (
        "item_plan p JOIN (WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
        "WHERE n < (SELECT max(items) FROM item_plan)) SELECT n FROM s) AS s ON s.n <= p.items"
    )


def iso(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"""to_char(timezone('UTC', {column}), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
    return f"replace({column}, ' ', 'T') || '+00:00'"


def _column(row: str, name: str) -> str:
    return f'{row}."{name}"'


def json_object(dialect: str, timestamps: tuple[str, ...], values: tuple[str, ...], row: str) -> str:
    pairs = [f"'{name}', {iso(dialect, _column(row, name))}" for name in timestamps]
    pairs += [f"'{name}', {row}.\"{name}\"" for name in values]
    pairs += ["'reason', 'items'", "'actor', NULL"]
    build = "json_build_object" if dialect == "postgresql" else "json_object"
    return f"{build}({', '.join(pairs)})"


CHECKOUT_STATE = (("checkedOutAt", "dueAt", "returnedAt"), ("renewals", "itemId", "branchId", "outcome"))
HOLD_STATE = (("placedAt", "readyAt", "expiresAt", "endedAt"), ("status", "pickupBranchId", "itemId"))
ITEM_STATE = (
    ("transitSentAt",),
    ("barcode", "homeBranchId", "currentBranchId", "transitToBranchId", "itemType", "callNumber", "status"),
)


def convert(dialect: str, prefix: str, branch: int) -> None:
    bind = op.get_bind()
    now = datetime.now(UTC)
    if dialect == "sqlite":
        now_value = now.strftime("%Y-%m-%d %H:%M:%S.%f")  # as UTCDateTime stores it there
    else:
        now_value = now
    params = {"prefix": prefix, "branch": branch, "now": now_value}
    greatest = "greatest" if dialect == "postgresql" else "max"
    bind.execute(
        sa.text(f"""
        CREATE TEMPORARY TABLE item_plan AS
        SELECT b.id AS book, b.copies AS copies, coalesce(l.n, 0) AS on_loan, coalesce(h.n, 0) AS ready,
               {greatest}(b.copies, coalesce(l.n, 0) + coalesce(h.n, 0)) AS items
        FROM "Books" b
        LEFT JOIN (SELECT "bookId", count(*) AS n FROM "Checkouts" WHERE "returnedAt" IS NULL
                   GROUP BY "bookId") l ON l."bookId" = b.id
        LEFT JOIN (SELECT "bookId", count(*) AS n FROM "Holds" WHERE status = 'ready'
                   GROUP BY "bookId") h ON h."bookId" = b.id""")
    )
    items = bind.execute(
        sa.text(f"""
        INSERT INTO "Items" ("bookId", barcode, "homeBranchId", "currentBranchId", "itemType", status,
                             "createdAt", "updatedAt")
        SELECT p.book, CAST(:prefix AS TEXT) || p.book || '-' || s.n, :branch, :branch, 'book',
               CASE WHEN s.n <= p.on_loan THEN 'checked_out'
                    WHEN s.n <= p.on_loan + p.ready THEN 'on_hold_shelf'
                    ELSE 'available' END,
               :now, :now
        FROM {series(dialect)}
        ORDER BY p.book, s.n"""),
        params,
    ).rowcount
    grown = bind.execute(
        sa.text("""
        UPDATE "Books" SET copies = (SELECT p.items FROM item_plan p WHERE p.book = "Books".id)
        WHERE id IN (SELECT book FROM item_plan WHERE items > copies)""")
    ).rowcount
    loans = bind.execute(
        sa.text("""
        UPDATE "Checkouts" SET "branchId" = :branch, "itemId" = (
            SELECT i.id FROM "Items" i WHERE i.barcode = CAST(:prefix AS TEXT) || l."bookId" || '-' || l.n)
        FROM (SELECT id, "bookId", row_number() OVER (PARTITION BY "bookId" ORDER BY id) AS n
              FROM "Checkouts" WHERE "returnedAt" IS NULL) AS l
        WHERE "Checkouts".id = l.id"""),
        params,
    ).rowcount
    ready = bind.execute(
        sa.text("""
        UPDATE "Holds" SET "itemId" = (
            SELECT i.id FROM "Items" i WHERE i.barcode = CAST(:prefix AS TEXT) || r."bookId" || '-' || r.n)
        FROM (SELECT h.id, h."bookId",
                     p.on_loan + row_number() OVER (PARTITION BY h."bookId" ORDER BY h.id) AS n
              FROM "Holds" h JOIN item_plan p ON p.book = h."bookId" WHERE h.status = 'ready') AS r
        WHERE "Holds".id = r.id"""),
        params,
    ).rowcount
    holds = bind.execute(
        sa.text("""UPDATE "Holds" SET "pickupBranchId" = :branch WHERE status IN ('waiting', 'ready')"""),
        params,
    ).rowcount
    # the logs, in lock order: loans, holds, items
    bind.execute(
        sa.text(f"""
        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT c.id, c."userId", c."bookId", 'updated', :now, {json_object(dialect, *CHECKOUT_STATE, "c")}
        FROM "Checkouts" c WHERE c."returnedAt" IS NULL ORDER BY c.id"""),
        params,
    )
    bind.execute(
        sa.text(f"""
        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT h.id, h."userId", h."bookId", 'updated', :now, {json_object(dialect, *HOLD_STATE, "h")}
        FROM "Holds" h WHERE h.status IN ('waiting', 'ready') ORDER BY h.id"""),
        params,
    )
    item_state = json_object(dialect, *ITEM_STATE, "i").replace("'reason', 'items'", "'reason', 'upgrade'")
    bind.execute(
        sa.text(f"""
        INSERT INTO "ItemEvents" ("itemId", "bookId", type, "occurredAt", data)
        SELECT i.id, i."bookId", 'created', :now, {item_state} FROM "Items" i ORDER BY i.id"""),
        params,
    )
    bind.execute(sa.text("DROP TABLE item_plan"))
    log.info("items: %s created at branch %s, barcodes %s<book id>-<n>", items, branch, prefix)
    log.info(
        "items: %s open loans and %s ready holds given an item; %s open holds pick up at branch %s",
        loans,
        ready,
        holds,
        branch,
    )
    if grown:
        log.warning(
            "items: %s books had more open loans and ready holds than copies: "
            "their missing items were created and their copies raised to match",
            grown,
        )


def drop_capture(dialect: str, tables: tuple[str, ...]) -> None:
    for statement in CAPTURE_SQL[dialect]:
        if statement.startswith("DROP TRIGGER") and any(
            f'"{table}_capture_' in statement for table in tables
        ):
            op.execute(statement)


def upgrade():
    dialect = op.get_bind().dialect.name
    settings = context.config.attributes.get("booknexus.settings", {})
    prefix, branch = barcode_prefix(settings), default_branch_id(settings)
    # the loans' and holds' triggers of revisions 0006 and 0009: the conversion logs itself
    drop_capture(dialect, ("Checkouts", "Holds"))
    create_tables(dialect)
    add_columns(dialect)
    hold_statuses(dialect, OLD_HOLD_STATUSES, NEW_HOLD_STATUSES)
    convert(dialect, prefix, branch)
    op.drop_index("uq_Holds_userId_bookId_open", "Holds")
    op.create_index(
        "uq_Holds_userId_bookId_open",
        "Holds",
        ["userId", "bookId"],
        unique=True,
        postgresql_where=NEW_OPEN,
        sqlite_where=NEW_OPEN,
    )
    op.create_index(
        "uq_Checkouts_itemId_open",
        "Checkouts",
        ["itemId"],
        unique=True,
        postgresql_where=LOAN_OPEN,
        sqlite_where=LOAN_OPEN,
    )
    op.create_index("ix_Holds_itemId", "Holds", ["itemId"])
    waiting = sa.text("status = 'waiting'")
    op.create_index(
        "ix_Holds_bookId_waiting", "Holds", ["bookId"], postgresql_where=waiting, sqlite_where=waiting
    )
    for name, columns in (
        ("ix_Items_bookId_status", ["bookId", "status"]),
        ("ix_Items_currentBranchId_status", ["currentBranchId", "status"]),
        ("ix_Items_transitToBranchId", ["transitToBranchId"]),
    ):
        op.create_index(name, "Items", columns)
    for statement in CAPTURE_SQL[dialect]:
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    # the app of revision 0016 puts its own triggers back at its startup (the repair finds
    # them missing); these name columns that are about to go
    drop_capture(dialect, ("Checkouts", "Holds", "Items"))
    if dialect == "postgresql":
        op.execute('DROP FUNCTION IF EXISTS "Items_capture"()')
    log.warning("downgrade 0017: the capture triggers are removed; the app of revision 0016 reinstalls them")
    op.drop_index("uq_Checkouts_itemId_open", "Checkouts")
    op.drop_index("ix_Holds_itemId", "Holds")
    op.drop_index("ix_Holds_bookId_waiting", "Holds")
    op.drop_index("uq_Holds_userId_bookId_open", "Holds")
    op.execute("""UPDATE "Holds" SET status = 'waiting' WHERE status = 'in_transit'""")
    hold_statuses(dialect, NEW_HOLD_STATUSES, OLD_HOLD_STATUSES)
    op.create_index(
        "uq_Holds_userId_bookId_open",
        "Holds",
        ["userId", "bookId"],
        unique=True,
        postgresql_where=OLD_OPEN,
        sqlite_where=OLD_OPEN,
    )
    for table, columns in (
        ("Checkouts", ("itemId", "branchId", "outcome")),
        ("Holds", ("pickupBranchId", "itemId")),
    ):
        for column in columns:
            op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    op.execute('DROP TABLE "ItemEvents"')
    if dialect == "postgresql":
        op.execute('DROP FUNCTION "ItemEvents_append_only"()')
    op.drop_table("Items")


# The capture triggers of the three tables as booknexus.circulation.eventlog.capture built them
# at this revision (install()), frozen: a revision runs its own SQL, whatever the code becomes.
CAPTURE_SQL = {
    "postgresql": [
        """DROP TRIGGER IF EXISTS "Checkouts_capture_insert" ON "Checkouts"
""",
        """DROP TRIGGER IF EXISTS "Checkouts_capture_update" ON "Checkouts"
""",
        """DROP TRIGGER IF EXISTS "Checkouts_capture_delete" ON "Checkouts"
""",
        """DROP TRIGGER IF EXISTS "Checkouts_capture_truncate" ON "Checkouts"
""",
        """CREATE OR REPLACE FUNCTION "Checkouts_capture"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('booknexus.app_write', true) = 'on' THEN
        RETURN NULL;  -- the app's own write: it logs it itself
    END IF;
    LOCK TABLE "CheckoutEvents" IN EXCLUSIVE MODE;
    IF TG_OP = 'INSERT' THEN

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'imported', clock_timestamp(),
               json_build_object('checkedOutAt', to_char(timezone('UTC', r."checkedOutAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'dueAt', to_char(timezone('UTC', r."dueAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'returnedAt', to_char(timezone('UTC', r."returnedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'renewals', r."renewals", 'itemId', r."itemId", 'branchId', r."branchId", 'outcome', r."outcome", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r  ORDER BY r.id;
    ELSIF TG_OP = 'DELETE' THEN

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'deleted', clock_timestamp(),
               json_build_object('checkedOutAt', to_char(timezone('UTC', r."checkedOutAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'dueAt', to_char(timezone('UTC', r."dueAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'returnedAt', to_char(timezone('UTC', r."returnedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'renewals', r."renewals", 'itemId', r."itemId", 'branchId', r."branchId", 'outcome', r."outcome", 'reason', 'external', 'actor', NULL)
        FROM old_rows AS r  ORDER BY r.id;
    ELSIF TG_OP = 'UPDATE' THEN

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'deleted', clock_timestamp(),
               json_build_object('checkedOutAt', to_char(timezone('UTC', r."checkedOutAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'dueAt', to_char(timezone('UTC', r."dueAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'returnedAt', to_char(timezone('UTC', r."returnedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'renewals', r."renewals", 'itemId', r."itemId", 'branchId', r."branchId", 'outcome', r."outcome", 'reason', 'external', 'actor', NULL)
        FROM old_rows AS r WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.id = r.id) ORDER BY r.id;

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'imported', clock_timestamp(),
               json_build_object('checkedOutAt', to_char(timezone('UTC', r."checkedOutAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'dueAt', to_char(timezone('UTC', r."dueAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'returnedAt', to_char(timezone('UTC', r."returnedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'renewals', r."renewals", 'itemId', r."itemId", 'branchId', r."branchId", 'outcome', r."outcome", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r WHERE NOT EXISTS (SELECT FROM old_rows o WHERE o.id = r.id) ORDER BY r.id;

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'updated', clock_timestamp(),
               json_build_object('checkedOutAt', to_char(timezone('UTC', r."checkedOutAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'dueAt', to_char(timezone('UTC', r."dueAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'returnedAt', to_char(timezone('UTC', r."returnedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'renewals', r."renewals", 'itemId', r."itemId", 'branchId', r."branchId", 'outcome', r."outcome", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r JOIN old_rows o ON o.id = r.id WHERE (r."userId", r."bookId", r."checkedOutAt", r."dueAt", r."returnedAt", r."renewals", r."itemId", r."branchId", r."outcome") IS DISTINCT FROM (o."userId", o."bookId", o."checkedOutAt", o."dueAt", o."returnedAt", o."renewals", o."itemId", o."branchId", o."outcome") ORDER BY r.id;
    ELSE  -- TRUNCATE: no transition table; every record live in the log is gone
        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT e."checkoutId", e."userId", e."bookId", 'deleted', clock_timestamp(),
               (e.data::jsonb || '{"reason": "external", "actor": null}')::json
        FROM (SELECT DISTINCT ON ("checkoutId") * FROM "CheckoutEvents"
              ORDER BY "checkoutId", id DESC) AS e
        WHERE e.type NOT IN ('deleted', 'purged') ORDER BY e."checkoutId";
    END IF;
    RETURN NULL;
END
$$
""",
        """CREATE TRIGGER "Checkouts_capture_insert" AFTER INSERT ON "Checkouts" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Checkouts_capture"()
""",
        """CREATE TRIGGER "Checkouts_capture_update" AFTER UPDATE ON "Checkouts" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Checkouts_capture"()
""",
        """CREATE TRIGGER "Checkouts_capture_delete" AFTER DELETE ON "Checkouts" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "Checkouts_capture"()
""",
        """CREATE TRIGGER "Checkouts_capture_truncate" AFTER TRUNCATE ON "Checkouts"  FOR EACH STATEMENT EXECUTE FUNCTION "Checkouts_capture"()
""",
        """DROP TRIGGER IF EXISTS "Holds_capture_insert" ON "Holds"
""",
        """DROP TRIGGER IF EXISTS "Holds_capture_update" ON "Holds"
""",
        """DROP TRIGGER IF EXISTS "Holds_capture_delete" ON "Holds"
""",
        """DROP TRIGGER IF EXISTS "Holds_capture_truncate" ON "Holds"
""",
        """CREATE OR REPLACE FUNCTION "Holds_capture"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('booknexus.app_write', true) = 'on' THEN
        RETURN NULL;  -- the app's own write: it logs it itself
    END IF;
    LOCK TABLE "CheckoutEvents", "HoldEvents" IN EXCLUSIVE MODE;
    IF TG_OP = 'INSERT' THEN

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'imported', clock_timestamp(),
               json_build_object('placedAt', to_char(timezone('UTC', r."placedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'readyAt', to_char(timezone('UTC', r."readyAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'expiresAt', to_char(timezone('UTC', r."expiresAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'endedAt', to_char(timezone('UTC', r."endedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'status', r."status", 'pickupBranchId', r."pickupBranchId", 'itemId', r."itemId", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r  ORDER BY r.id;
    ELSIF TG_OP = 'DELETE' THEN

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'deleted', clock_timestamp(),
               json_build_object('placedAt', to_char(timezone('UTC', r."placedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'readyAt', to_char(timezone('UTC', r."readyAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'expiresAt', to_char(timezone('UTC', r."expiresAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'endedAt', to_char(timezone('UTC', r."endedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'status', r."status", 'pickupBranchId', r."pickupBranchId", 'itemId', r."itemId", 'reason', 'external', 'actor', NULL)
        FROM old_rows AS r  ORDER BY r.id;
    ELSIF TG_OP = 'UPDATE' THEN

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'deleted', clock_timestamp(),
               json_build_object('placedAt', to_char(timezone('UTC', r."placedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'readyAt', to_char(timezone('UTC', r."readyAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'expiresAt', to_char(timezone('UTC', r."expiresAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'endedAt', to_char(timezone('UTC', r."endedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'status', r."status", 'pickupBranchId', r."pickupBranchId", 'itemId', r."itemId", 'reason', 'external', 'actor', NULL)
        FROM old_rows AS r WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.id = r.id) ORDER BY r.id;

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'imported', clock_timestamp(),
               json_build_object('placedAt', to_char(timezone('UTC', r."placedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'readyAt', to_char(timezone('UTC', r."readyAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'expiresAt', to_char(timezone('UTC', r."expiresAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'endedAt', to_char(timezone('UTC', r."endedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'status', r."status", 'pickupBranchId', r."pickupBranchId", 'itemId', r."itemId", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r WHERE NOT EXISTS (SELECT FROM old_rows o WHERE o.id = r.id) ORDER BY r.id;

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'updated', clock_timestamp(),
               json_build_object('placedAt', to_char(timezone('UTC', r."placedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'readyAt', to_char(timezone('UTC', r."readyAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'expiresAt', to_char(timezone('UTC', r."expiresAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'endedAt', to_char(timezone('UTC', r."endedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'status', r."status", 'pickupBranchId', r."pickupBranchId", 'itemId', r."itemId", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r JOIN old_rows o ON o.id = r.id WHERE (r."userId", r."bookId", r."placedAt", r."readyAt", r."expiresAt", r."endedAt", r."status", r."pickupBranchId", r."itemId") IS DISTINCT FROM (o."userId", o."bookId", o."placedAt", o."readyAt", o."expiresAt", o."endedAt", o."status", o."pickupBranchId", o."itemId") ORDER BY r.id;
    ELSE  -- TRUNCATE: no transition table; every record live in the log is gone
        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT e."holdId", e."userId", e."bookId", 'deleted', clock_timestamp(),
               (e.data::jsonb || '{"reason": "external", "actor": null}')::json
        FROM (SELECT DISTINCT ON ("holdId") * FROM "HoldEvents"
              ORDER BY "holdId", id DESC) AS e
        WHERE e.type NOT IN ('deleted', 'purged') ORDER BY e."holdId";
    END IF;
    RETURN NULL;
END
$$
""",
        """CREATE TRIGGER "Holds_capture_insert" AFTER INSERT ON "Holds" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Holds_capture"()
""",
        """CREATE TRIGGER "Holds_capture_update" AFTER UPDATE ON "Holds" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Holds_capture"()
""",
        """CREATE TRIGGER "Holds_capture_delete" AFTER DELETE ON "Holds" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "Holds_capture"()
""",
        """CREATE TRIGGER "Holds_capture_truncate" AFTER TRUNCATE ON "Holds"  FOR EACH STATEMENT EXECUTE FUNCTION "Holds_capture"()
""",
        """DROP TRIGGER IF EXISTS "Items_capture_insert" ON "Items"
""",
        """DROP TRIGGER IF EXISTS "Items_capture_update" ON "Items"
""",
        """DROP TRIGGER IF EXISTS "Items_capture_delete" ON "Items"
""",
        """DROP TRIGGER IF EXISTS "Items_capture_truncate" ON "Items"
""",
        """CREATE OR REPLACE FUNCTION "Items_capture"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('booknexus.app_write', true) = 'on' THEN
        RETURN NULL;  -- the app's own write: it logs it itself
    END IF;
    LOCK TABLE "CheckoutEvents", "HoldEvents", "ItemEvents" IN EXCLUSIVE MODE;
    IF TG_OP = 'INSERT' THEN

        INSERT INTO "ItemEvents" ("itemId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."bookId", 'imported', clock_timestamp(),
               json_build_object('transitSentAt', to_char(timezone('UTC', r."transitSentAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'barcode', r."barcode", 'homeBranchId', r."homeBranchId", 'currentBranchId', r."currentBranchId", 'transitToBranchId', r."transitToBranchId", 'itemType', r."itemType", 'callNumber', r."callNumber", 'status', r."status", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r  ORDER BY r.id;
    ELSIF TG_OP = 'DELETE' THEN

        INSERT INTO "ItemEvents" ("itemId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."bookId", 'deleted', clock_timestamp(),
               json_build_object('transitSentAt', to_char(timezone('UTC', r."transitSentAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'barcode', r."barcode", 'homeBranchId', r."homeBranchId", 'currentBranchId', r."currentBranchId", 'transitToBranchId', r."transitToBranchId", 'itemType', r."itemType", 'callNumber', r."callNumber", 'status', r."status", 'reason', 'external', 'actor', NULL)
        FROM old_rows AS r  ORDER BY r.id;
    ELSIF TG_OP = 'UPDATE' THEN

        INSERT INTO "ItemEvents" ("itemId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."bookId", 'deleted', clock_timestamp(),
               json_build_object('transitSentAt', to_char(timezone('UTC', r."transitSentAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'barcode', r."barcode", 'homeBranchId', r."homeBranchId", 'currentBranchId', r."currentBranchId", 'transitToBranchId', r."transitToBranchId", 'itemType', r."itemType", 'callNumber', r."callNumber", 'status', r."status", 'reason', 'external', 'actor', NULL)
        FROM old_rows AS r WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.id = r.id) ORDER BY r.id;

        INSERT INTO "ItemEvents" ("itemId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."bookId", 'imported', clock_timestamp(),
               json_build_object('transitSentAt', to_char(timezone('UTC', r."transitSentAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'barcode', r."barcode", 'homeBranchId', r."homeBranchId", 'currentBranchId', r."currentBranchId", 'transitToBranchId', r."transitToBranchId", 'itemType', r."itemType", 'callNumber', r."callNumber", 'status', r."status", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r WHERE NOT EXISTS (SELECT FROM old_rows o WHERE o.id = r.id) ORDER BY r.id;

        INSERT INTO "ItemEvents" ("itemId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."bookId", 'updated', clock_timestamp(),
               json_build_object('transitSentAt', to_char(timezone('UTC', r."transitSentAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'barcode', r."barcode", 'homeBranchId', r."homeBranchId", 'currentBranchId', r."currentBranchId", 'transitToBranchId', r."transitToBranchId", 'itemType', r."itemType", 'callNumber', r."callNumber", 'status', r."status", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r JOIN old_rows o ON o.id = r.id WHERE (r."bookId", r."transitSentAt", r."barcode", r."homeBranchId", r."currentBranchId", r."transitToBranchId", r."itemType", r."callNumber", r."status") IS DISTINCT FROM (o."bookId", o."transitSentAt", o."barcode", o."homeBranchId", o."currentBranchId", o."transitToBranchId", o."itemType", o."callNumber", o."status") ORDER BY r.id;
    ELSE  -- TRUNCATE: no transition table; every record live in the log is gone
        INSERT INTO "ItemEvents" ("itemId", "bookId", type, "occurredAt", data)
        SELECT e."itemId", e."bookId", 'deleted', clock_timestamp(),
               (e.data::jsonb || '{"reason": "external", "actor": null}')::json
        FROM (SELECT DISTINCT ON ("itemId") * FROM "ItemEvents"
              ORDER BY "itemId", id DESC) AS e
        WHERE e.type NOT IN ('deleted', 'purged') ORDER BY e."itemId";
    END IF;
    RETURN NULL;
END
$$
""",
        """CREATE TRIGGER "Items_capture_insert" AFTER INSERT ON "Items" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Items_capture"()
""",
        """CREATE TRIGGER "Items_capture_update" AFTER UPDATE ON "Items" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Items_capture"()
""",
        """CREATE TRIGGER "Items_capture_delete" AFTER DELETE ON "Items" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "Items_capture"()
""",
        """CREATE TRIGGER "Items_capture_truncate" AFTER TRUNCATE ON "Items"  FOR EACH STATEMENT EXECUTE FUNCTION "Items_capture"()
""",
    ],
    "sqlite": [
        """CREATE TABLE IF NOT EXISTS "LogWriter" (id INTEGER PRIMARY KEY)
""",
        """DROP TRIGGER IF EXISTS "Checkouts_capture_insert"
""",
        """DROP TRIGGER IF EXISTS "Checkouts_capture_update"
""",
        """DROP TRIGGER IF EXISTS "Checkouts_capture_delete"
""",
        """CREATE TRIGGER "Checkouts_capture_insert" AFTER INSERT ON "Checkouts" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN
        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT NEW.id, NEW."userId", NEW."bookId", 'imported',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('checkedOutAt', replace(NEW."checkedOutAt", ' ', 'T') || '+00:00', 'dueAt', replace(NEW."dueAt", ' ', 'T') || '+00:00', 'returnedAt', replace(NEW."returnedAt", ' ', 'T') || '+00:00', 'renewals', NEW."renewals", 'itemId', NEW."itemId", 'branchId', NEW."branchId", 'outcome', NEW."outcome", 'reason', 'external', 'actor', NULL) ; END
""",
        """CREATE TRIGGER "Checkouts_capture_delete" AFTER DELETE ON "Checkouts" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN
        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT OLD.id, OLD."userId", OLD."bookId", 'deleted',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('checkedOutAt', replace(OLD."checkedOutAt", ' ', 'T') || '+00:00', 'dueAt', replace(OLD."dueAt", ' ', 'T') || '+00:00', 'returnedAt', replace(OLD."returnedAt", ' ', 'T') || '+00:00', 'renewals', OLD."renewals", 'itemId', OLD."itemId", 'branchId', OLD."branchId", 'outcome', OLD."outcome", 'reason', 'external', 'actor', NULL) ; END
""",
        """CREATE TRIGGER "Checkouts_capture_update" AFTER UPDATE ON "Checkouts" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT OLD.id, OLD."userId", OLD."bookId", 'deleted',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('checkedOutAt', replace(OLD."checkedOutAt", ' ', 'T') || '+00:00', 'dueAt', replace(OLD."dueAt", ' ', 'T') || '+00:00', 'returnedAt', replace(OLD."returnedAt", ' ', 'T') || '+00:00', 'renewals', OLD."renewals", 'itemId', OLD."itemId", 'branchId', OLD."branchId", 'outcome', OLD."outcome", 'reason', 'external', 'actor', NULL) WHERE OLD.id <> NEW.id;

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT NEW.id, NEW."userId", NEW."bookId", CASE WHEN OLD.id <> NEW.id THEN 'imported' ELSE 'updated' END,
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('checkedOutAt', replace(NEW."checkedOutAt", ' ', 'T') || '+00:00', 'dueAt', replace(NEW."dueAt", ' ', 'T') || '+00:00', 'returnedAt', replace(NEW."returnedAt", ' ', 'T') || '+00:00', 'renewals', NEW."renewals", 'itemId', NEW."itemId", 'branchId', NEW."branchId", 'outcome', NEW."outcome", 'reason', 'external', 'actor', NULL) WHERE OLD.id <> NEW.id OR (OLD."userId", OLD."bookId", OLD."checkedOutAt", OLD."dueAt", OLD."returnedAt", OLD."renewals", OLD."itemId", OLD."branchId", OLD."outcome") IS NOT (NEW."userId", NEW."bookId", NEW."checkedOutAt", NEW."dueAt", NEW."returnedAt", NEW."renewals", NEW."itemId", NEW."branchId", NEW."outcome");
        END
""",
        """DROP TRIGGER IF EXISTS "Holds_capture_insert"
""",
        """DROP TRIGGER IF EXISTS "Holds_capture_update"
""",
        """DROP TRIGGER IF EXISTS "Holds_capture_delete"
""",
        """CREATE TRIGGER "Holds_capture_insert" AFTER INSERT ON "Holds" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN
        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT NEW.id, NEW."userId", NEW."bookId", 'imported',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('placedAt', replace(NEW."placedAt", ' ', 'T') || '+00:00', 'readyAt', replace(NEW."readyAt", ' ', 'T') || '+00:00', 'expiresAt', replace(NEW."expiresAt", ' ', 'T') || '+00:00', 'endedAt', replace(NEW."endedAt", ' ', 'T') || '+00:00', 'status', NEW."status", 'pickupBranchId', NEW."pickupBranchId", 'itemId', NEW."itemId", 'reason', 'external', 'actor', NULL) ; END
""",
        """CREATE TRIGGER "Holds_capture_delete" AFTER DELETE ON "Holds" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN
        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT OLD.id, OLD."userId", OLD."bookId", 'deleted',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('placedAt', replace(OLD."placedAt", ' ', 'T') || '+00:00', 'readyAt', replace(OLD."readyAt", ' ', 'T') || '+00:00', 'expiresAt', replace(OLD."expiresAt", ' ', 'T') || '+00:00', 'endedAt', replace(OLD."endedAt", ' ', 'T') || '+00:00', 'status', OLD."status", 'pickupBranchId', OLD."pickupBranchId", 'itemId', OLD."itemId", 'reason', 'external', 'actor', NULL) ; END
""",
        """CREATE TRIGGER "Holds_capture_update" AFTER UPDATE ON "Holds" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT OLD.id, OLD."userId", OLD."bookId", 'deleted',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('placedAt', replace(OLD."placedAt", ' ', 'T') || '+00:00', 'readyAt', replace(OLD."readyAt", ' ', 'T') || '+00:00', 'expiresAt', replace(OLD."expiresAt", ' ', 'T') || '+00:00', 'endedAt', replace(OLD."endedAt", ' ', 'T') || '+00:00', 'status', OLD."status", 'pickupBranchId', OLD."pickupBranchId", 'itemId', OLD."itemId", 'reason', 'external', 'actor', NULL) WHERE OLD.id <> NEW.id;

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT NEW.id, NEW."userId", NEW."bookId", CASE WHEN OLD.id <> NEW.id THEN 'imported' ELSE 'updated' END,
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('placedAt', replace(NEW."placedAt", ' ', 'T') || '+00:00', 'readyAt', replace(NEW."readyAt", ' ', 'T') || '+00:00', 'expiresAt', replace(NEW."expiresAt", ' ', 'T') || '+00:00', 'endedAt', replace(NEW."endedAt", ' ', 'T') || '+00:00', 'status', NEW."status", 'pickupBranchId', NEW."pickupBranchId", 'itemId', NEW."itemId", 'reason', 'external', 'actor', NULL) WHERE OLD.id <> NEW.id OR (OLD."userId", OLD."bookId", OLD."placedAt", OLD."readyAt", OLD."expiresAt", OLD."endedAt", OLD."status", OLD."pickupBranchId", OLD."itemId") IS NOT (NEW."userId", NEW."bookId", NEW."placedAt", NEW."readyAt", NEW."expiresAt", NEW."endedAt", NEW."status", NEW."pickupBranchId", NEW."itemId");
        END
""",
        """DROP TRIGGER IF EXISTS "Items_capture_insert"
""",
        """DROP TRIGGER IF EXISTS "Items_capture_update"
""",
        """DROP TRIGGER IF EXISTS "Items_capture_delete"
""",
        """CREATE TRIGGER "Items_capture_insert" AFTER INSERT ON "Items" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN
        INSERT INTO "ItemEvents" ("itemId", "bookId", type, "occurredAt", data)
        SELECT NEW.id, NEW."bookId", 'imported',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('transitSentAt', replace(NEW."transitSentAt", ' ', 'T') || '+00:00', 'barcode', NEW."barcode", 'homeBranchId', NEW."homeBranchId", 'currentBranchId', NEW."currentBranchId", 'transitToBranchId', NEW."transitToBranchId", 'itemType', NEW."itemType", 'callNumber', NEW."callNumber", 'status', NEW."status", 'reason', 'external', 'actor', NULL) ; END
""",
        """CREATE TRIGGER "Items_capture_delete" AFTER DELETE ON "Items" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN
        INSERT INTO "ItemEvents" ("itemId", "bookId", type, "occurredAt", data)
        SELECT OLD.id, OLD."bookId", 'deleted',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('transitSentAt', replace(OLD."transitSentAt", ' ', 'T') || '+00:00', 'barcode', OLD."barcode", 'homeBranchId', OLD."homeBranchId", 'currentBranchId', OLD."currentBranchId", 'transitToBranchId', OLD."transitToBranchId", 'itemType', OLD."itemType", 'callNumber', OLD."callNumber", 'status', OLD."status", 'reason', 'external', 'actor', NULL) ; END
""",
        """CREATE TRIGGER "Items_capture_update" AFTER UPDATE ON "Items" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN

        INSERT INTO "ItemEvents" ("itemId", "bookId", type, "occurredAt", data)
        SELECT OLD.id, OLD."bookId", 'deleted',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('transitSentAt', replace(OLD."transitSentAt", ' ', 'T') || '+00:00', 'barcode', OLD."barcode", 'homeBranchId', OLD."homeBranchId", 'currentBranchId', OLD."currentBranchId", 'transitToBranchId', OLD."transitToBranchId", 'itemType', OLD."itemType", 'callNumber', OLD."callNumber", 'status', OLD."status", 'reason', 'external', 'actor', NULL) WHERE OLD.id <> NEW.id;

        INSERT INTO "ItemEvents" ("itemId", "bookId", type, "occurredAt", data)
        SELECT NEW.id, NEW."bookId", CASE WHEN OLD.id <> NEW.id THEN 'imported' ELSE 'updated' END,
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('transitSentAt', replace(NEW."transitSentAt", ' ', 'T') || '+00:00', 'barcode', NEW."barcode", 'homeBranchId', NEW."homeBranchId", 'currentBranchId', NEW."currentBranchId", 'transitToBranchId', NEW."transitToBranchId", 'itemType', NEW."itemType", 'callNumber', NEW."callNumber", 'status', NEW."status", 'reason', 'external', 'actor', NULL) WHERE OLD.id <> NEW.id OR (OLD."bookId", OLD."transitSentAt", OLD."barcode", OLD."homeBranchId", OLD."currentBranchId", OLD."transitToBranchId", OLD."itemType", OLD."callNumber", OLD."status") IS NOT (NEW."bookId", NEW."transitSentAt", NEW."barcode", NEW."homeBranchId", NEW."currentBranchId", NEW."transitToBranchId", NEW."itemType", NEW."callNumber", NEW."status");
        END
""",
    ],
}
