"""Capture triggers on "Checkouts": changes made outside the app are logged as they happen.

The SQL is this revision's own, as it was on its day: startup later reinstalls the triggers
from ``booknexus.log.capture`` if they go missing, but what this revision does never changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

POSTGRESQL_FUNCTION = """
CREATE OR REPLACE FUNCTION "Checkouts_capture"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('booknexus.app_write', true) = 'on' THEN
        RETURN NULL;  -- the app's own write: it logs it itself
    END IF;
    LOCK TABLE "CheckoutEvents" IN EXCLUSIVE MODE;
    IF TG_OP = 'INSERT' THEN

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'imported', clock_timestamp(),
               json_build_object('checkedOutAt', to_char(timezone('UTC', r."checkedOutAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'dueAt', to_char(timezone('UTC', r."dueAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'returnedAt', to_char(timezone('UTC', r."returnedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'renewals', r."renewals", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r  ORDER BY r.id;
    ELSIF TG_OP = 'DELETE' THEN

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'deleted', clock_timestamp(),
               json_build_object('checkedOutAt', to_char(timezone('UTC', r."checkedOutAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'dueAt', to_char(timezone('UTC', r."dueAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'returnedAt', to_char(timezone('UTC', r."returnedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'renewals', r."renewals", 'reason', 'external', 'actor', NULL)
        FROM old_rows AS r  ORDER BY r.id;
    ELSIF TG_OP = 'UPDATE' THEN

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'deleted', clock_timestamp(),
               json_build_object('checkedOutAt', to_char(timezone('UTC', r."checkedOutAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'dueAt', to_char(timezone('UTC', r."dueAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'returnedAt', to_char(timezone('UTC', r."returnedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'renewals', r."renewals", 'reason', 'external', 'actor', NULL)
        FROM old_rows AS r WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.id = r.id) ORDER BY r.id;

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'imported', clock_timestamp(),
               json_build_object('checkedOutAt', to_char(timezone('UTC', r."checkedOutAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'dueAt', to_char(timezone('UTC', r."dueAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'returnedAt', to_char(timezone('UTC', r."returnedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'renewals', r."renewals", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r WHERE NOT EXISTS (SELECT FROM old_rows o WHERE o.id = r.id) ORDER BY r.id;

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'updated', clock_timestamp(),
               json_build_object('checkedOutAt', to_char(timezone('UTC', r."checkedOutAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'dueAt', to_char(timezone('UTC', r."dueAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'returnedAt', to_char(timezone('UTC', r."returnedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'renewals', r."renewals", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r JOIN old_rows o ON o.id = r.id WHERE (r."userId", r."bookId", r."checkedOutAt", r."dueAt", r."returnedAt", r."renewals") IS DISTINCT FROM (o."userId", o."bookId", o."checkedOutAt", o."dueAt", o."returnedAt", o."renewals") ORDER BY r.id;
    ELSE  -- TRUNCATE: no transition table; every checkout live in the log is gone
        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT e."checkoutId", e."userId", e."bookId", 'deleted', clock_timestamp(),
               (e.data::jsonb || '{"reason": "external", "actor": null}')::json
        FROM (SELECT DISTINCT ON ("checkoutId") * FROM "CheckoutEvents"
              ORDER BY "checkoutId", id DESC) AS e
        WHERE e.type NOT IN ('deleted', 'purged') ORDER BY e."checkoutId";
    END IF;
    RETURN NULL;
END
$$"""
POSTGRESQL_TRIGGERS = [  # name, operation, transition tables
    ("Checkouts_capture_insert", "INSERT", "REFERENCING NEW TABLE AS new_rows"),
    ("Checkouts_capture_update", "UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("Checkouts_capture_delete", "DELETE", "REFERENCING OLD TABLE AS old_rows"),
    ("Checkouts_capture_truncate", "TRUNCATE", ""),
]
SQLITE_TRIGGERS = ("Checkouts_capture_insert", "Checkouts_capture_update", "Checkouts_capture_delete")
SQLITE_STATEMENTS = [
    """CREATE TABLE IF NOT EXISTS "LogWriter" (id INTEGER PRIMARY KEY)""",
    """CREATE TRIGGER "Checkouts_capture_insert" AFTER INSERT ON "Checkouts" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN
        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT NEW.id, NEW."userId", NEW."bookId", 'imported',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('checkedOutAt', replace(NEW."checkedOutAt", ' ', 'T') || '+00:00', 'dueAt', replace(NEW."dueAt", ' ', 'T') || '+00:00', 'returnedAt', replace(NEW."returnedAt", ' ', 'T') || '+00:00', 'renewals', NEW."renewals", 'reason', 'external', 'actor', NULL) ; END""",
    """CREATE TRIGGER "Checkouts_capture_delete" AFTER DELETE ON "Checkouts" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN
        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT OLD.id, OLD."userId", OLD."bookId", 'deleted',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('checkedOutAt', replace(OLD."checkedOutAt", ' ', 'T') || '+00:00', 'dueAt', replace(OLD."dueAt", ' ', 'T') || '+00:00', 'returnedAt', replace(OLD."returnedAt", ' ', 'T') || '+00:00', 'renewals', OLD."renewals", 'reason', 'external', 'actor', NULL) ; END""",
    """CREATE TRIGGER "Checkouts_capture_update" AFTER UPDATE ON "Checkouts" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT OLD.id, OLD."userId", OLD."bookId", 'deleted',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('checkedOutAt', replace(OLD."checkedOutAt", ' ', 'T') || '+00:00', 'dueAt', replace(OLD."dueAt", ' ', 'T') || '+00:00', 'returnedAt', replace(OLD."returnedAt", ' ', 'T') || '+00:00', 'renewals', OLD."renewals", 'reason', 'external', 'actor', NULL) WHERE OLD.id <> NEW.id;

        INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
        SELECT NEW.id, NEW."userId", NEW."bookId", CASE WHEN OLD.id <> NEW.id THEN 'imported' ELSE 'updated' END,
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('checkedOutAt', replace(NEW."checkedOutAt", ' ', 'T') || '+00:00', 'dueAt', replace(NEW."dueAt", ' ', 'T') || '+00:00', 'returnedAt', replace(NEW."returnedAt", ' ', 'T') || '+00:00', 'renewals', NEW."renewals", 'reason', 'external', 'actor', NULL) WHERE OLD.id <> NEW.id OR (OLD."userId", OLD."bookId", OLD."checkedOutAt", OLD."dueAt", OLD."returnedAt", OLD."renewals") IS NOT (NEW."userId", NEW."bookId", NEW."checkedOutAt", NEW."dueAt", NEW."returnedAt", NEW."renewals");
        END""",
]


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_FUNCTION)
        for name, operation, transitions in POSTGRESQL_TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS "{name}" ON "Checkouts"')
            op.execute(
                f'CREATE TRIGGER "{name}" AFTER {operation} ON "Checkouts" {transitions} '
                'FOR EACH STATEMENT EXECUTE FUNCTION "Checkouts_capture"()'
            )
        return
    for name in SQLITE_TRIGGERS:
        op.execute(f'DROP TRIGGER IF EXISTS "{name}"')
    for statement in SQLITE_STATEMENTS:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in POSTGRESQL_TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS "{name}" ON "Checkouts"')
        op.execute('DROP FUNCTION IF EXISTS "Checkouts_capture"()')
        return
    for name in SQLITE_TRIGGERS:
        op.execute(f'DROP TRIGGER IF EXISTS "{name}"')
    op.execute('DROP TABLE IF EXISTS "LogWriter"')
