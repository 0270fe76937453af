"""Capture triggers on "Holds": hand changes to holds are logged as they happen, as checkouts' are.

The SQL is this revision's own, as it was on its day (startup reinstalls the triggers from
``booknexus.log.capture`` if they go missing; what this revision does never changes).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

POSTGRESQL_FUNCTION = """
CREATE OR REPLACE FUNCTION "Holds_capture"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('booknexus.app_write', true) = 'on' THEN
        RETURN NULL;  -- the app's own write: it logs it itself
    END IF;
    LOCK TABLE "CheckoutEvents", "HoldEvents" IN EXCLUSIVE MODE;
    IF TG_OP = 'INSERT' THEN

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'imported', clock_timestamp(),
               json_build_object('placedAt', to_char(timezone('UTC', r."placedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'readyAt', to_char(timezone('UTC', r."readyAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'expiresAt', to_char(timezone('UTC', r."expiresAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'endedAt', to_char(timezone('UTC', r."endedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'status', r."status", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r  ORDER BY r.id;
    ELSIF TG_OP = 'DELETE' THEN

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'deleted', clock_timestamp(),
               json_build_object('placedAt', to_char(timezone('UTC', r."placedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'readyAt', to_char(timezone('UTC', r."readyAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'expiresAt', to_char(timezone('UTC', r."expiresAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'endedAt', to_char(timezone('UTC', r."endedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'status', r."status", 'reason', 'external', 'actor', NULL)
        FROM old_rows AS r  ORDER BY r.id;
    ELSIF TG_OP = 'UPDATE' THEN

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'deleted', clock_timestamp(),
               json_build_object('placedAt', to_char(timezone('UTC', r."placedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'readyAt', to_char(timezone('UTC', r."readyAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'expiresAt', to_char(timezone('UTC', r."expiresAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'endedAt', to_char(timezone('UTC', r."endedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'status', r."status", 'reason', 'external', 'actor', NULL)
        FROM old_rows AS r WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.id = r.id) ORDER BY r.id;

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'imported', clock_timestamp(),
               json_build_object('placedAt', to_char(timezone('UTC', r."placedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'readyAt', to_char(timezone('UTC', r."readyAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'expiresAt', to_char(timezone('UTC', r."expiresAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'endedAt', to_char(timezone('UTC', r."endedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'status', r."status", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r WHERE NOT EXISTS (SELECT FROM old_rows o WHERE o.id = r.id) ORDER BY r.id;

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT r.id, r."userId", r."bookId", 'updated', clock_timestamp(),
               json_build_object('placedAt', to_char(timezone('UTC', r."placedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'readyAt', to_char(timezone('UTC', r."readyAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'expiresAt', to_char(timezone('UTC', r."expiresAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'endedAt', to_char(timezone('UTC', r."endedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'status', r."status", 'reason', 'external', 'actor', NULL)
        FROM new_rows AS r JOIN old_rows o ON o.id = r.id WHERE (r."userId", r."bookId", r."placedAt", r."readyAt", r."expiresAt", r."endedAt", r."status") IS DISTINCT FROM (o."userId", o."bookId", o."placedAt", o."readyAt", o."expiresAt", o."endedAt", o."status") ORDER BY r.id;
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
$$"""
POSTGRESQL_TRIGGERS = [  # name, operation, transition tables
    ("Holds_capture_insert", "INSERT", "REFERENCING NEW TABLE AS new_rows"),
    ("Holds_capture_update", "UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("Holds_capture_delete", "DELETE", "REFERENCING OLD TABLE AS old_rows"),
    ("Holds_capture_truncate", "TRUNCATE", ""),
]
SQLITE_TRIGGERS = ["Holds_capture_insert", "Holds_capture_update", "Holds_capture_delete"]
SQLITE_STATEMENTS = [
    """CREATE TRIGGER "Holds_capture_insert" AFTER INSERT ON "Holds" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN
        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT NEW.id, NEW."userId", NEW."bookId", 'imported',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('placedAt', replace(NEW."placedAt", ' ', 'T') || '+00:00', 'readyAt', replace(NEW."readyAt", ' ', 'T') || '+00:00', 'expiresAt', replace(NEW."expiresAt", ' ', 'T') || '+00:00', 'endedAt', replace(NEW."endedAt", ' ', 'T') || '+00:00', 'status', NEW."status", 'reason', 'external', 'actor', NULL) ; END""",
    """CREATE TRIGGER "Holds_capture_delete" AFTER DELETE ON "Holds" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN
        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT OLD.id, OLD."userId", OLD."bookId", 'deleted',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('placedAt', replace(OLD."placedAt", ' ', 'T') || '+00:00', 'readyAt', replace(OLD."readyAt", ' ', 'T') || '+00:00', 'expiresAt', replace(OLD."expiresAt", ' ', 'T') || '+00:00', 'endedAt', replace(OLD."endedAt", ' ', 'T') || '+00:00', 'status', OLD."status", 'reason', 'external', 'actor', NULL) ; END""",
    """CREATE TRIGGER "Holds_capture_update" AFTER UPDATE ON "Holds" WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")
        BEGIN

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT OLD.id, OLD."userId", OLD."bookId", 'deleted',
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('placedAt', replace(OLD."placedAt", ' ', 'T') || '+00:00', 'readyAt', replace(OLD."readyAt", ' ', 'T') || '+00:00', 'expiresAt', replace(OLD."expiresAt", ' ', 'T') || '+00:00', 'endedAt', replace(OLD."endedAt", ' ', 'T') || '+00:00', 'status', OLD."status", 'reason', 'external', 'actor', NULL) WHERE OLD.id <> NEW.id;

        INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data)
        SELECT NEW.id, NEW."userId", NEW."bookId", CASE WHEN OLD.id <> NEW.id THEN 'imported' ELSE 'updated' END,
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object('placedAt', replace(NEW."placedAt", ' ', 'T') || '+00:00', 'readyAt', replace(NEW."readyAt", ' ', 'T') || '+00:00', 'expiresAt', replace(NEW."expiresAt", ' ', 'T') || '+00:00', 'endedAt', replace(NEW."endedAt", ' ', 'T') || '+00:00', 'status', NEW."status", 'reason', 'external', 'actor', NULL) WHERE OLD.id <> NEW.id OR (OLD."userId", OLD."bookId", OLD."placedAt", OLD."readyAt", OLD."expiresAt", OLD."endedAt", OLD."status") IS NOT (NEW."userId", NEW."bookId", NEW."placedAt", NEW."readyAt", NEW."expiresAt", NEW."endedAt", NEW."status");
        END""",
]


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_FUNCTION)
        for name, operation, transitions in POSTGRESQL_TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS "{name}" ON "Holds"')
            op.execute(
                f'CREATE TRIGGER "{name}" AFTER {operation} ON "Holds" {transitions} '
                'FOR EACH STATEMENT EXECUTE FUNCTION "Holds_capture"()'
            )
        return
    op.execute('CREATE TABLE IF NOT EXISTS "LogWriter" (id INTEGER PRIMARY KEY)')
    for name in SQLITE_TRIGGERS:
        op.execute(f'DROP TRIGGER IF EXISTS "{name}"')
    for statement in SQLITE_STATEMENTS:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in POSTGRESQL_TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS "{name}" ON "Holds"')
        op.execute('DROP FUNCTION IF EXISTS "Holds_capture"()')
        return
    for name in SQLITE_TRIGGERS:
        op.execute(f'DROP TRIGGER IF EXISTS "{name}"')
