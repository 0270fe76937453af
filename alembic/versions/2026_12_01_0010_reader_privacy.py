"""Reader privacy: the anonymous reader, each reader's keepHistory choice, and the one change
the logs accept besides appends — a closed record's reader replaced by the anonymous one.

The logs stay append-only for everything else: DELETE and TRUNCATE are refused as before,
and an UPDATE is refused unless the transaction is anonymising (PostgreSQL: the setting
``booknexus.anonymising``; SQLite: a row in "Anonymising") and it changes nothing but
``"userId"`` to the anonymous reader (and ``data.actor``, only where the actor was that
reader), of a record that is closed (a returned loan, an ended hold, or a record gone).
Partial indexes find what a retention policy makes due without scanning the history.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ANONYMOUS = "SELECT id FROM \"Users\" WHERE role = 'anonymous'"
LOGS = {  # log -> (its key, its table, what makes a record of the table open)
    "CheckoutEvents": ("checkoutId", "Checkouts", 'r."returnedAt" IS NULL'),
    "HoldEvents": ("holdId", "Holds", "r.status IN ('waiting', 'ready')"),
}


def _postgresql_update_check(log: str, anonymous: int) -> str:
    key, table, open_ = LOGS[log]
    return f"""
CREATE FUNCTION "{log}_anonymise_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT coalesce(
        current_setting('booknexus.anonymising', true) = 'on'
        AND NEW.id = OLD.id AND NEW."{key}" = OLD."{key}" AND NEW."bookId" = OLD."bookId"
        AND NEW.type = OLD.type AND NEW."occurredAt" = OLD."occurredAt"
        AND NEW."userId" = {anonymous}
        AND (NEW.data::jsonb - 'actor') = (OLD.data::jsonb - 'actor')
        AND ((NEW.data::jsonb -> 'actor') IS NOT DISTINCT FROM (OLD.data::jsonb -> 'actor')
             OR ((OLD.data ->> 'actor')::int = OLD."userId" AND (NEW.data ->> 'actor')::int = NEW."userId"))
        AND NOT EXISTS (SELECT 1 FROM "{table}" r WHERE r.id = NEW."{key}" AND {open_}),
        false)
    THEN
        RAISE EXCEPTION '{log} is append-only: UPDATE is not allowed'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER "{log}_append_only" ON "{log}";
CREATE TRIGGER "{log}_append_only" BEFORE DELETE OR TRUNCATE ON "{log}"
    FOR EACH STATEMENT EXECUTE FUNCTION "{log}_append_only"();
CREATE TRIGGER "{log}_anonymise_only" BEFORE UPDATE ON "{log}"
    FOR EACH ROW EXECUTE FUNCTION "{log}_anonymise_only"();
"""


def _sqlite_update_check(log: str, anonymous: int) -> list[str]:
    key, table, open_ = LOGS[log]
    return [
        f'DROP TRIGGER "{log}_no_update"',
        f"""CREATE TRIGGER "{log}_no_update" BEFORE UPDATE ON "{log}"
        WHEN NOT coalesce(
            EXISTS (SELECT 1 FROM "Anonymising")
            AND NEW.id = OLD.id AND NEW."{key}" = OLD."{key}" AND NEW."bookId" = OLD."bookId"
            AND NEW.type = OLD.type AND NEW."occurredAt" = OLD."occurredAt"
            AND NEW."userId" = {anonymous}
            AND json_remove(NEW.data, '$.actor') = json_remove(OLD.data, '$.actor')
            AND (json_extract(NEW.data, '$.actor') IS json_extract(OLD.data, '$.actor')
                 OR (json_extract(OLD.data, '$.actor') = OLD."userId"
                     AND json_extract(NEW.data, '$.actor') = NEW."userId"))
            AND NOT EXISTS (SELECT 1 FROM "{table}" r WHERE r.id = NEW."{key}" AND {open_}),
            0)
        BEGIN SELECT RAISE(ABORT, '{log} is append-only: UPDATE is not allowed'); END""",
    ]


def _restore_postgresql(log: str) -> str:
    return f"""
DROP TRIGGER "{log}_anonymise_only" ON "{log}";
DROP FUNCTION "{log}_anonymise_only"();
DROP TRIGGER "{log}_append_only" ON "{log}";
CREATE TRIGGER "{log}_append_only" BEFORE UPDATE OR DELETE OR TRUNCATE ON "{log}"
    FOR EACH STATEMENT EXECUTE FUNCTION "{log}_append_only"();
"""


def _restore_sqlite(log: str) -> list[str]:
    return [
        f'DROP TRIGGER "{log}_no_update"',
        f"""CREATE TRIGGER "{log}_no_update" BEFORE UPDATE ON "{log}"
        BEGIN SELECT RAISE(ABORT, '{log} is append-only: UPDATE is not allowed'); END""",
    ]


def upgrade():
    connection = op.get_bind()
    postgresql = connection.dialect.name == "postgresql"
    op.add_column("Users", sa.Column("keepHistory", sa.Boolean, nullable=False, server_default=sa.false()))
    now = "now()" if postgresql else "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
    connection.exec_driver_sql(
        'INSERT INTO "Users" (name, email, role, "keepHistory", "createdAt", "updatedAt") '
        f"VALUES ('Anonymous reader', 'anonymous@booknexus.invalid', 'anonymous', false, {now}, {now})"
    )
    # its id is written into the triggers and the indexes: a constant, checked per row for free
    anonymous = connection.exec_driver_sql(ANONYMOUS).scalar_one()
    if postgresql:
        for log in LOGS:
            op.execute(_postgresql_update_check(log, anonymous))
    else:
        op.execute('CREATE TABLE "Anonymising" (id INTEGER PRIMARY KEY)')
        for log in LOGS:
            for statement in _sqlite_update_check(log, anonymous):
                op.execute(statement)
    # what a policy run reads: closed records and ended ones not yet anonymised
    op.execute(
        f'CREATE INDEX "ix_Checkouts_returnedAt_named" ON "Checkouts" ("returnedAt", id) '
        f'WHERE "returnedAt" IS NOT NULL AND "userId" <> {anonymous}'
    )
    op.execute(
        f'CREATE INDEX "ix_Holds_endedAt_named" ON "Holds" ("endedAt", id) '
        f'WHERE "endedAt" IS NOT NULL AND "userId" <> {anonymous}'
    )
    for log in LOGS:
        op.execute(
            f'CREATE INDEX "ix_{log}_occurredAt_ended_named" ON "{log}" ("occurredAt") '
            f"WHERE type IN ('deleted', 'purged') AND \"userId\" <> {anonymous}"
        )


def downgrade():
    connection = op.get_bind()
    postgresql = connection.dialect.name == "postgresql"
    for log in LOGS:
        op.execute(f'DROP INDEX "ix_{log}_occurredAt_ended_named"')
    op.execute('DROP INDEX "ix_Holds_endedAt_named"')
    op.execute('DROP INDEX "ix_Checkouts_returnedAt_named"')
    if postgresql:
        for log in LOGS:
            op.execute(_restore_postgresql(log))
    else:
        for log in LOGS:
            for statement in _restore_sqlite(log):
                op.execute(statement)
        op.execute('DROP TABLE "Anonymising"')
    # the anonymous reader stays if history points at it: the logs cannot be rewritten back
    connection.exec_driver_sql(
        "DELETE FROM \"Users\" WHERE role = 'anonymous' AND NOT EXISTS "
        '(SELECT 1 FROM "Checkouts" c WHERE c."userId" = "Users".id) AND NOT EXISTS '
        '(SELECT 1 FROM "Holds" h WHERE h."userId" = "Users".id)'
    )
    with op.batch_alter_table("Users") as batch:
        batch.drop_column("keepHistory")
