"""Erasure forgets the reader as an actor: the logs accept a second sanctioned UPDATE, an
event's ``data.actor`` set to null (and nothing else changed), while anonymising; and the
queue moves logged before now with another reader as their actor say ``actor: null``.

A hold that became ready because someone else returned, cancelled or borrowed used to record
that someone as its actor: one reader's id in another reader's record, which neither
anonymisation nor erasure of the first reader would ever reach. From this revision on the
app records such moves with no actor, and erasure nulls the erased reader wherever they are
still named as an actor (a librarian's acts on others' records). Set-based; the events it
rewrites are found by type and need no index (a single pass over "HoldEvents").

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ANONYMOUS = "SELECT id FROM \"Users\" WHERE role = 'anonymous'"
LOGS = {  # log -> (its key, its table, what makes a record of the table open)
    "CheckoutEvents": ("checkoutId", "Checkouts", 'r."returnedAt" IS NULL'),
    "HoldEvents": ("holdId", "Holds", "r.status IN ('waiting', 'ready')"),
}


def _postgresql_update_check(log: str, anonymous: int, forget: bool) -> str:
    key, table, open_ = LOGS[log]
    # revision 0010's rule: a closed record's reader (and their own actor) to the anonymous one
    handed_over = f"""(NEW."userId" = {anonymous}
        AND (NEW.data::jsonb - 'actor') = (OLD.data::jsonb - 'actor')
        AND ((NEW.data::jsonb -> 'actor') IS NOT DISTINCT FROM (OLD.data::jsonb -> 'actor')
             OR ((OLD.data ->> 'actor')::int = OLD."userId" AND (NEW.data ->> 'actor')::int = NEW."userId"))
        AND NOT EXISTS (SELECT 1 FROM "{table}" r WHERE r.id = NEW."{key}" AND {open_}))"""
    # this revision's: an actor forgotten, nothing else touched
    forgotten = """(NEW."userId" = OLD."userId"
        AND (NEW.data::jsonb - 'actor') = (OLD.data::jsonb - 'actor')
        AND (OLD.data::jsonb -> 'actor') <> 'null'::jsonb
        AND (NEW.data::jsonb -> 'actor') = 'null'::jsonb)"""
    allowed = f"({handed_over} OR {forgotten})" if forget else handed_over
    return f"""
CREATE OR REPLACE FUNCTION "{log}_anonymise_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT coalesce(
        current_setting('booknexus.anonymising', true) = 'on'
        AND NEW.id = OLD.id AND NEW."{key}" = OLD."{key}" AND NEW."bookId" = OLD."bookId"
        AND NEW.type = OLD.type AND NEW."occurredAt" = OLD."occurredAt"
        AND {allowed},
        false)
    THEN
        RAISE EXCEPTION '{log} is append-only: UPDATE is not allowed'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;
"""


def _sqlite_update_check(log: str, anonymous: int, forget: bool) -> list[str]:
    key, table, open_ = LOGS[log]
    handed_over = f"""(NEW."userId" = {anonymous}
            AND json_remove(NEW.data, '$.actor') = json_remove(OLD.data, '$.actor')
            AND (json_extract(NEW.data, '$.actor') IS json_extract(OLD.data, '$.actor')
                 OR (json_extract(OLD.data, '$.actor') = OLD."userId"
                     AND json_extract(NEW.data, '$.actor') = NEW."userId"))
            AND NOT EXISTS (SELECT 1 FROM "{table}" r WHERE r.id = NEW."{key}" AND {open_}))"""
    forgotten = """(NEW."userId" = OLD."userId"
            AND json_remove(NEW.data, '$.actor') = json_remove(OLD.data, '$.actor')
            AND json_extract(OLD.data, '$.actor') IS NOT NULL
            AND json_type(NEW.data, '$.actor') = 'null')"""
    allowed = f"({handed_over} OR {forgotten})" if forget else handed_over
    return [
        f'DROP TRIGGER "{log}_no_update"',
        f"""CREATE TRIGGER "{log}_no_update" BEFORE UPDATE ON "{log}"
        WHEN NOT coalesce(
            EXISTS (SELECT 1 FROM "Anonymising")
            AND NEW.id = OLD.id AND NEW."{key}" = OLD."{key}" AND NEW."bookId" = OLD."bookId"
            AND NEW.type = OLD.type AND NEW."occurredAt" = OLD."occurredAt"
            AND {allowed},
            0)
        BEGIN SELECT RAISE(ABORT, '{log} is append-only: UPDATE is not allowed'); END""",
    ]


def _replace_checks(forget: bool) -> None:
    connection = op.get_bind()
    anonymous = connection.exec_driver_sql(ANONYMOUS).scalar_one()
    for log in LOGS:
        if connection.dialect.name == "postgresql":
            op.execute(_postgresql_update_check(log, anonymous, forget))
        else:
            for statement in _sqlite_update_check(log, anonymous, forget):
                op.execute(statement)


def upgrade():
    _replace_checks(forget=True)
    connection = op.get_bind()
    # queue moves of the past that name another reader than the hold's as their actor
    if connection.dialect.name == "postgresql":
        op.execute("SELECT set_config('booknexus.anonymising', 'on', true)")
        op.execute(
            """UPDATE "HoldEvents" SET data = (data::jsonb || '{"actor": null}'::jsonb)::json
            WHERE type = 'ready' AND (data ->> 'actor') IS NOT NULL
              AND (data ->> 'actor')::int <> "userId" """
        )
        op.execute("SELECT set_config('booknexus.anonymising', 'off', true)")
    else:
        op.execute('INSERT OR IGNORE INTO "Anonymising" (id) VALUES (1)')
        op.execute(
            """UPDATE "HoldEvents" SET data = json_set(data, '$.actor', json('null'))
            WHERE type = 'ready' AND json_extract(data, '$.actor') IS NOT NULL
              AND json_extract(data, '$.actor') <> "userId" """
        )
        op.execute('DELETE FROM "Anonymising"')


def downgrade():
    # the actors forgotten stay forgotten: the log cannot be rewritten back
    _replace_checks(forget=False)
