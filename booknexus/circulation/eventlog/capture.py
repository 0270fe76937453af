"""Changes made to "Checkouts", "Holds" and "Items" behind the app's back, logged by the
database as they happen.

Triggers on each table append one event to its log per row that a statement run outside the app
inserts (``imported``), updates (``updated``) or deletes (``deleted``, also when the database
cascades a user or book deleted by hand), each with reason ``external`` and no actor, in
the statement's own transaction: the log never waits for a restart to learn of them.

The app logs its own writes (with their actor and meaning), so it marks each transaction
that writes checkouts, holds or items and the triggers stand aside for it:

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

from booknexus.circulation.eventlog.streams import (
    CHECKOUTS,
    DELETED,
    ENDING,
    HOLDS,
    IMPORTED,
    ITEMS,
    LOGS,
    UPDATED,
    Stream,
)
from booknexus.circulation.locks import log_lock_statement
from booknexus.db.schema import ISO_UTC_FORMAT

SETTING = "booknexus.app_write"
MARKED = "booknexus.app_write_marked"  # session.info: the transaction already marked
MARK_TABLE = "booknexus.mark_table"  # connection.info: SQLite's "LogWriter" exists
CAPTURED = (CHECKOUTS, HOLDS, ITEMS)  # in lock order
POSTGRESQL_OPERATIONS = {  # trigger suffix -> (operation, transition tables)
    "insert": ("INSERT", "REFERENCING NEW TABLE AS new_rows"),
    "update": ("UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    "delete": ("DELETE", "REFERENCING OLD TABLE AS old_rows"),
    "truncate": ("TRUNCATE", ""),
}
SQLITE_OPERATIONS = ("insert", "update", "delete")
ENDING_SQL = ", ".join(f"'{type_}'" for type_ in ENDING)


def table(stream: Stream) -> str:
    return stream.records.name


def function(stream: Stream) -> str:
    return f'"{table(stream)}_capture"'


def trigger_names(stream: Stream, dialect: str) -> list[str]:
    operations = POSTGRESQL_OPERATIONS if dialect == "postgresql" else SQLITE_OPERATIONS
    return [f"{table(stream)}_capture_{operation}" for operation in operations]


def _subjects(stream: Stream, row: str) -> str:
    return ", ".join(_column(row, name) for name in stream.subjects)


def _columns(stream: Stream) -> str:
    subjects = ", ".join(f'"{name}"' for name in stream.subjects)
    return f'"{stream.key}", {subjects}, type, "occurredAt", data'


def _logged(stream: Stream) -> tuple[str, ...]:
    """What an ``updated`` event must differ in."""
    return (*stream.subjects, *stream.state_fields)


def _state_pairs(stream: Stream, row: str, iso) -> str:
    pairs = [f"'{name}', {iso(_column(row, name))}" for name in stream.timestamps]
    pairs += [f"'{name}', {_column(row, name)}" for name in stream.values]
    return ", ".join([*pairs, "'reason', 'external'", "'actor', NULL"])


def _column(row: str, name: str) -> str:
    return f'{row}."{name}"'


def _pg_iso(column: str) -> str:
    return f"to_char(timezone('UTC', {column}), '{ISO_UTC_FORMAT}')"


def _pg_events(stream: Stream, type_: str, rows: str, where: str = "") -> str:
    return f"""
        INSERT INTO "{stream.events.name}" ({_columns(stream)})
        SELECT r.id, {_subjects(stream, "r")}, '{type_}', clock_timestamp(),
               json_build_object({_state_pairs(stream, "r", _pg_iso)})
        FROM {rows} AS r {where} ORDER BY r.id;"""


def _differs(stream: Stream, left: str, right: str, sqlite: bool = False) -> str:
    fields = ", ".join(f'{{0}}."{name}"' for name in _logged(stream))
    operator = "IS NOT" if sqlite else "IS DISTINCT FROM"
    return f"({fields.format(left)}) {operator} ({fields.format(right)})"


def postgresql_function(stream: Stream) -> str:
    events, key = f'"{stream.events.name}"', f'"{stream.key}"'
    gone = "WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.id = r.id)"
    new = "WHERE NOT EXISTS (SELECT FROM old_rows o WHERE o.id = r.id)"
    changed = "JOIN old_rows o ON o.id = r.id WHERE " + _differs(stream, "r", "o")
    return f"""
CREATE OR REPLACE FUNCTION {function(stream)}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('{SETTING}', true) = 'on' THEN
        RETURN NULL;  -- the app's own write: it logs it itself
    END IF;
    {log_lock_statement(stream)};
    IF TG_OP = 'INSERT' THEN
        {_pg_events(stream, IMPORTED, "new_rows")}
    ELSIF TG_OP = 'DELETE' THEN
        {_pg_events(stream, DELETED, "old_rows")}
    ELSIF TG_OP = 'UPDATE' THEN
        {_pg_events(stream, DELETED, "old_rows", gone)}
        {_pg_events(stream, IMPORTED, "new_rows", new)}
        {_pg_events(stream, UPDATED, "new_rows", changed)}
    ELSE  -- TRUNCATE: no transition table; every record live in the log is gone
        INSERT INTO {events} ({_columns(stream)})
        SELECT e.{key}, {_subjects(stream, "e")}, '{DELETED}', clock_timestamp(),
               (e.data::jsonb || '{{"reason": "external", "actor": null}}')::json
        FROM (SELECT DISTINCT ON ({key}) * FROM {events}
              ORDER BY {key}, id DESC) AS e
        WHERE e.type NOT IN ({ENDING_SQL}) ORDER BY e.{key};
    END IF;
    RETURN NULL;
END
$$"""


def _sqlite_iso(column: str) -> str:
    return f"replace({column}, ' ', 'T') || '+00:00'"


def _sqlite_event(stream: Stream, type_: str, row: str, where: str = "") -> str:
    return f"""
        INSERT INTO "{stream.events.name}" ({_columns(stream)})
        SELECT {row}.id, {_subjects(stream, row)}, {type_},
               strftime('%Y-%m-%d %H:%M:%f000', 'now'),
               json_object({_state_pairs(stream, row, _sqlite_iso)}) {where};"""


UNMARKED = 'WHEN NOT EXISTS (SELECT 1 FROM "LogWriter")'
MARK_TABLE_SQL = 'CREATE TABLE IF NOT EXISTS "LogWriter" (id INTEGER PRIMARY KEY)'


def sqlite_triggers(stream: Stream) -> list[str]:
    name = table(stream)
    changed = _differs(stream, "OLD", "NEW", sqlite=True)
    return [
        f"""CREATE TRIGGER "{name}_capture_insert" AFTER INSERT ON "{name}" {UNMARKED}
        BEGIN {_sqlite_event(stream, f"'{IMPORTED}'", "NEW")} END""",
        f"""CREATE TRIGGER "{name}_capture_delete" AFTER DELETE ON "{name}" {UNMARKED}
        BEGIN {_sqlite_event(stream, f"'{DELETED}'", "OLD")} END""",
        f"""CREATE TRIGGER "{name}_capture_update" AFTER UPDATE ON "{name}" {UNMARKED}
        BEGIN
        {_sqlite_event(stream, f"'{DELETED}'", "OLD", "WHERE OLD.id <> NEW.id")}
        {
            _sqlite_event(
                stream,
                f"CASE WHEN OLD.id <> NEW.id THEN '{IMPORTED}' ELSE '{UPDATED}' END",
                "NEW",
                f"WHERE OLD.id <> NEW.id OR {changed}",
            )
        }
        END""",
    ]


def install(connection: Connection, streams: tuple[Stream, ...] = CAPTURED) -> None:
    """(Re)create the capture triggers; idempotent. Needs to own the tables."""
    connection.info.pop(MARK_TABLE, None)
    postgresql = connection.dialect.name == "postgresql"
    if not postgresql:
        connection.exec_driver_sql(MARK_TABLE_SQL)
    for stream in streams:
        _drop_triggers(connection, stream)
        if not postgresql:
            for statement in sqlite_triggers(stream):
                connection.exec_driver_sql(statement)
            continue
        connection.exec_driver_sql(postgresql_function(stream))
        for name, (operation, transitions) in zip(
            trigger_names(stream, "postgresql"), POSTGRESQL_OPERATIONS.values(), strict=True
        ):
            connection.exec_driver_sql(
                f'CREATE TRIGGER "{name}" AFTER {operation} ON "{table(stream)}" {transitions} '
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function(stream)}()"
            )


def _drop_triggers(connection: Connection, stream: Stream) -> None:
    dialect = connection.dialect.name
    on = f' ON "{table(stream)}"' if dialect == "postgresql" else ""
    for name in trigger_names(stream, dialect):
        connection.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{name}"{on}')


def uninstall(connection: Connection, streams: tuple[Stream, ...] = CAPTURED) -> None:
    connection.info.pop(MARK_TABLE, None)
    for stream in streams:
        _drop_triggers(connection, stream)
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function(stream)}()")
    if connection.dialect.name != "postgresql" and set(streams) == set(CAPTURED):
        connection.exec_driver_sql('DROP TABLE IF EXISTS "LogWriter"')


_REGCLASSES = ", ".join(f"""'"{table(stream)}"'::regclass""" for stream in CAPTURED)
_NAMES = ", ".join(f"'{table(stream)}'" for stream in CAPTURED)
POSTGRESQL_ENABLED_TRIGGERS = text(f"""
    SELECT tgname FROM pg_trigger
    WHERE tgrelid IN ({_REGCLASSES})
      AND tgname LIKE '%capture%' AND tgenabled = 'O'
""")
SQLITE_TRIGGERS = text(f"""
    SELECT name FROM sqlite_master
    WHERE type = 'trigger' AND tbl_name IN ({_NAMES}) AND name LIKE '%capture%'
""")


def missing(connection: Connection) -> list[str]:
    """The capture triggers that are absent or disabled: read from the catalog."""
    dialect = connection.dialect.name
    query = POSTGRESQL_ENABLED_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS
    present = set(connection.execute(query).scalars())
    expected = [name for stream in CAPTURED for name in trigger_names(stream, dialect)]
    return [name for name in expected if name not in present]


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
    """Tell the triggers that this transaction's writes to the logged tables ("Checkouts",
    "Holds", "Items") are logged by the app. Once per transaction."""
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


def _writes_logged_records(session: Session) -> bool:
    return any(type(record) in LOGS for record in (*session.new, *session.dirty, *session.deleted))


@event.listens_for(Session, "before_flush")
def _mark_before_flush(session, flush_context, instances):
    if _writes_logged_records(session):
        mark(session)


@event.listens_for(Session, "before_commit")
def _unmark_before_commit(session):
    if session.info.get(MARKED) is not None:
        session.flush()  # what is still pending is the app's too: write it while marked
        unmark(session)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session):
    session.info.pop(MARKED, None)
