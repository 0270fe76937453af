"""Changes made to "Checkouts" behind the app's back, logged by the database as they happen.

Triggers on "Checkouts" append one event per row that a statement run outside the app
inserts (``imported``), updates (``updated``) or deletes (``deleted``, also when the database
cascades a user or book deleted by hand), each with reason ``external`` and no actor, in
the statement's own transaction: the log never waits for a restart to learn of them.

The app logs its own writes (with their actor and meaning), so it marks each transaction
that writes checkouts and the triggers stand aside for it:

- PostgreSQL: statement-level triggers with transition tables, one ``INSERT ... SELECT``
  per statement however many rows it touched; the mark is a transaction-local setting
  (``set_config(..., true)``), gone at commit or rollback. A trigger takes the log's lock
  first, as every append does, so tailing stays gapless.
- SQLite has neither transition tables nor session settings: row-level triggers, and the
  mark is a row in "LogWriter" that the app inserts in its transaction and deletes before
  it commits. SQLite admits one writer at a time, so no other writer can ever see it; a
  row found there at startup means a writer died between the two, and is a reason to repair.
"""

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from booknexus.checkouts.models import Checkout
from booknexus.log.streams import CHECKOUTS, DELETED, IMPORTED, UPDATED
from booknexus.meta import ISO_UTC_FORMAT

SETTING = "booknexus.app_write"
MARKED = "booknexus.app_write_marked"  # session.info: the transaction already marked
MARK_TABLE = "booknexus.mark_table"  # connection.info: SQLite's "LogWriter" exists
FUNCTION = '"Checkouts_capture"'
POSTGRESQL_TRIGGERS = {  # name -> (operation, transition tables)
    "Checkouts_capture_insert": ("INSERT", "REFERENCING NEW TABLE AS new_rows"),
    "Checkouts_capture_update": ("UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    "Checkouts_capture_delete": ("DELETE", "REFERENCING OLD TABLE AS old_rows"),
    "Checkouts_capture_truncate": ("TRUNCATE", ""),
}
SQLITE_TRIGGERS = ("Checkouts_capture_insert", "Checkouts_capture_update", "Checkouts_capture_delete")
COLUMNS = '"checkoutId", "userId", "bookId", type, "occurredAt", data'
LOGGED = ("userId", "bookId", *CHECKOUTS.state_fields)  # what an ``updated`` event must differ in


def _state_pairs(row: str, iso) -> str:
    pairs = [f"'{name}', {iso(_column(row, name))}" for name in CHECKOUTS.timestamps]
    pairs += [f"'{name}', {_column(row, name)}" for name in CHECKOUTS.values]
    return ", ".join([*pairs, "'reason', 'external'", "'actor', NULL"])


def _column(row: str, name: str) -> str:
    return f'{row}."{name}"'


def _pg_iso(column: str) -> str:
    return f"to_char(timezone('UTC', {column}), '{ISO_UTC_FORMAT}')"


def _pg_events(type_: str, rows: str, where: str = "") -> str:
    return f"""
        INSERT INTO "CheckoutEvents" ({COLUMNS})
        SELECT r.id, r."userId", r."bookId", '{type_}', clock_timestamp(),
               json_build_object({_state_pairs("r", _pg_iso)})
        FROM {rows} AS r {where} ORDER BY r.id;"""


def _differs(left: str, right: str, sqlite: bool = False) -> str:
    fields = ", ".join(f'{{0}}."{name}"' for name in LOGGED)
    operator = "IS NOT" if sqlite else "IS DISTINCT FROM"
    return f"({fields.format(left)}) {operator} ({fields.format(right)})"


POSTGRESQL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('{SETTING}', true) = 'on' THEN
        RETURN NULL;  -- the app's own write: it logs it itself
    END IF;
    LOCK TABLE "CheckoutEvents" IN EXCLUSIVE MODE;
    IF TG_OP = 'INSERT' THEN
        {_pg_events(IMPORTED, "new_rows")}
    ELSIF TG_OP = 'DELETE' THEN
        {_pg_events(DELETED, "old_rows")}
    ELSIF TG_OP = 'UPDATE' THEN
        {_pg_events(DELETED, "old_rows", "WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.id = r.id)")}
        {_pg_events(IMPORTED, "new_rows", "WHERE NOT EXISTS (SELECT FROM old_rows o WHERE o.id = r.id)")}
        {_pg_events(UPDATED, "new_rows", "JOIN old_rows o ON o.id = r.id WHERE " + _differs("r", "o"))}
    ELSE  -- TRUNCATE: no transition table; every checkout live in the log is gone
        INSERT INTO "CheckoutEvents" ({COLUMNS})
        SELECT e."checkoutId", e."userId", e."bookId", '{DELETED}', clock_timestamp(),
               (e.data::jsonb || '{{"reason": "external", "actor": null}}')::json
        FROM (SELECT DISTINCT ON ("checkoutId") * FROM "CheckoutEvents"
              ORDER BY "checkoutId", id DESC) AS e
        WHERE e.type NOT IN ('deleted', 'purged') ORDER BY e."checkoutId";
    END IF;
    RETURN NULL;
END
$$"""


def _sqlite_iso(column: str) -> str:
    return f"replace({column}, ' ', 'T') || '+00:00'"


def _sqlite_event(type_: str, row: str, where: str = "") -> str:
    return f"""
        INSERT INTO "CheckoutEvents" ({COLUMNS})
        SELECT {row}.id, {row}."userId", {row}."bookId", {type_},
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object({_state_pairs(row, _sqlite_iso)}) {where};"""


UNMARKED = 'WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")'
SQLITE_STATEMENTS = [
    'CREATE TABLE IF NOT EXISTS "LogWriter" (id INTEGER PRIMARY KEY)',
    f"""CREATE TRIGGER "Checkouts_capture_insert" AFTER INSERT ON "Checkouts" {UNMARKED}
        BEGIN {_sqlite_event(f"'{IMPORTED}'", "NEW")} END""",
    f"""CREATE TRIGGER "Checkouts_capture_delete" AFTER DELETE ON "Checkouts" {UNMARKED}
        BEGIN {_sqlite_event(f"'{DELETED}'", "OLD")} END""",
    f"""CREATE TRIGGER "Checkouts_capture_update" AFTER UPDATE ON "Checkouts" {UNMARKED}
        BEGIN
        {_sqlite_event(f"'{DELETED}'", "OLD", "WHERE OLD.id <> NEW.id")}
        {
        _sqlite_event(
            f"CASE WHEN OLD.id <> NEW.id THEN '{IMPORTED}' ELSE '{UPDATED}' END",
            "NEW",
            "WHERE OLD.id <> NEW.id OR " + _differs("OLD", "NEW", sqlite=True),
        )
    }
        END""",
]


def install(connection: Connection) -> None:
    """(Re)create the capture triggers; idempotent. Needs to own "Checkouts"."""
    connection.info.pop(MARK_TABLE, None)
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(POSTGRESQL_FUNCTION)
        for name, (operation, transitions) in POSTGRESQL_TRIGGERS.items():
            connection.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{name}" ON "Checkouts"')
            connection.exec_driver_sql(
                f'CREATE TRIGGER "{name}" AFTER {operation} ON "Checkouts" {transitions} '
                f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
            )
        return
    for name in SQLITE_TRIGGERS:
        connection.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{name}"')
    for statement in SQLITE_STATEMENTS:
        connection.exec_driver_sql(statement)


def uninstall(connection: Connection) -> None:
    connection.info.pop(MARK_TABLE, None)
    if connection.dialect.name == "postgresql":
        for name in POSTGRESQL_TRIGGERS:
            connection.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{name}" ON "Checkouts"')
        connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
        return
    for name in SQLITE_TRIGGERS:
        connection.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{name}"')
    connection.exec_driver_sql('DROP TABLE IF EXISTS "LogWriter"')


POSTGRESQL_ENABLED_TRIGGERS = text("""
    SELECT tgname FROM pg_trigger
    WHERE tgrelid = '"Checkouts"'::regclass AND tgname LIKE 'Checkouts_capture_%' AND tgenabled = 'O'
""")


def missing(connection: Connection) -> list[str]:
    """The capture triggers that are absent or disabled: read from the catalog."""
    if connection.dialect.name == "postgresql":
        present = set(connection.execute(POSTGRESQL_ENABLED_TRIGGERS).scalars())
        expected = POSTGRESQL_TRIGGERS
    else:
        present = set(
            connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'Checkouts'"
            ).scalars()
        )
        expected = SQLITE_TRIGGERS
    return sorted(name for name in expected if name not in present)


def stale_mark(session: Session) -> bool:
    """SQLite: a mark left behind by a writer that never committed its removal."""
    if session.get_bind().dialect.name == "postgresql" or not _sqlite_mark_table(session):
        return False
    return session.execute(text('SELECT EXISTS (SELECT 1 FROM "LogWriter")')).scalar()


def _sqlite_mark_table(session: Session) -> bool:
    """Whether this SQLite database has "LogWriter" (not before revision 0006); read once per
    connection, which is all it takes: the migrations and the app never share one."""
    connection = session.connection()
    if MARK_TABLE not in connection.info:
        connection.info[MARK_TABLE] = connection.exec_driver_sql(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'LogWriter')"
        ).scalar()
    return connection.info[MARK_TABLE]


def mark(session: Session) -> None:
    """Tell the triggers that this transaction's writes to "Checkouts" are logged by the app.
    Once per transaction."""
    transaction = session.get_transaction()
    if transaction is not None and session.info.get(MARKED) is transaction:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT set_config('{SETTING}', 'on', true)"))
    elif _sqlite_mark_table(session):
        session.execute(text('INSERT OR IGNORE INTO "LogWriter" (id) VALUES (1)'))
    session.info[MARKED] = session.get_transaction()


def unmark(session: Session) -> None:
    """SQLite: remove the mark (and any stale one) before the transaction commits;
    PostgreSQL forgets its setting itself."""
    session.info.pop(MARKED, None)
    if session.get_bind().dialect.name == "sqlite" and _sqlite_mark_table(session):
        session.execute(text('DELETE FROM "LogWriter"'))


def _writes_checkouts(session: Session) -> bool:
    return any(isinstance(record, Checkout) for record in (*session.new, *session.dirty, *session.deleted))


@event.listens_for(Session, "before_flush")
def _mark_before_flush(session, flush_context, instances):
    if _writes_checkouts(session):
        mark(session)


@event.listens_for(Session, "before_commit")
def _unmark_before_commit(session):
    if session.info.get(MARKED) is not None:
        session.flush()  # what is still pending is the app's too: write it while marked
        unmark(session)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session):
    session.info.pop(MARKED, None)
