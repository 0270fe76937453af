"""The database keeps the anonymous reader: it cannot be deleted, re-roled, renamed or given a password.

Every anonymised loan and hold points at the anonymous reader (revision 0010), and its
foreign keys cascade on delete: deleting that one row by hand would remove the library's
statistics with it. Triggers refuse, on both backends: a DELETE of the anonymous reader; an
UPDATE of its id (the logs' triggers and the retention indexes name that id), email (how the
app finds it), role or password (it never logs in); and any other account becoming it (an
INSERT or UPDATE to role 'anonymous'). Its name and the rest stay editable by hand.

On PostgreSQL the refusal is SQLSTATE 23001 (restrict_violation), on SQLite a constraint
failure: an IntegrityError either way. TRUNCATE "Users" needs CASCADE to pass the foreign
keys, and then reaches the logs, which refuse TRUNCATE already.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# what must not change on the anonymous reader's row
FIXED = ("id", "email", "role", '"passwordHash"')
MESSAGE = "the anonymous reader holds anonymised history: it cannot be deleted, re-roled or given a login"

POSTGRESQL = f"""
CREATE FUNCTION "Users_keep_the_anonymous_reader"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE} (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER "Users_anonymous_reader_delete" BEFORE DELETE ON "Users"
    FOR EACH ROW WHEN (OLD.role = 'anonymous')
    EXECUTE FUNCTION "Users_keep_the_anonymous_reader"();
CREATE TRIGGER "Users_anonymous_reader_update" BEFORE UPDATE ON "Users"
    FOR EACH ROW WHEN ((OLD.role = 'anonymous' OR NEW.role = 'anonymous')
        AND ({", ".join(f"OLD.{c}" for c in FIXED)}) IS DISTINCT FROM ({", ".join(f"NEW.{c}" for c in FIXED)}))
    EXECUTE FUNCTION "Users_keep_the_anonymous_reader"();
CREATE TRIGGER "Users_anonymous_reader_insert" BEFORE INSERT ON "Users"
    FOR EACH ROW WHEN (NEW.role = 'anonymous')
    EXECUTE FUNCTION "Users_keep_the_anonymous_reader"();
"""

SQLITE_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FIXED)
SQLITE = [
    f"""CREATE TRIGGER "Users_anonymous_reader_delete" BEFORE DELETE ON "Users"
        WHEN OLD.role = 'anonymous'
        BEGIN SELECT RAISE(ABORT, '{MESSAGE} (DELETE refused)'); END""",
    f"""CREATE TRIGGER "Users_anonymous_reader_update" BEFORE UPDATE ON "Users"
        WHEN (OLD.role = 'anonymous' OR NEW.role = 'anonymous') AND ({SQLITE_CHANGED})
        BEGIN SELECT RAISE(ABORT, '{MESSAGE} (UPDATE refused)'); END""",
    f"""CREATE TRIGGER "Users_anonymous_reader_insert" BEFORE INSERT ON "Users"
        WHEN NEW.role = 'anonymous'
        BEGIN SELECT RAISE(ABORT, '{MESSAGE} (INSERT refused)'); END""",
]
TRIGGERS = ("Users_anonymous_reader_delete", "Users_anonymous_reader_update", "Users_anonymous_reader_insert")


def upgrade():
    # CREATE TRIGGER takes a SHARE ROW EXCLUSIVE lock on "Users", waited for at most
    # booknexus.migration_lock_timeout (alembic/env.py); the triggers themselves read nothing
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL)
        return
    for statement in SQLITE:
        op.execute(statement)


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in TRIGGERS:
        op.execute(f'DROP TRIGGER "{name}" ON "Users"' if postgresql else f'DROP TRIGGER "{name}"')
    if postgresql:
        op.execute('DROP FUNCTION "Users_keep_the_anonymous_reader"()')
