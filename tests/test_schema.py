"""The schema Alembic builds is the schema the models describe, on both databases."""

import warnings

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from booknexus.models import Base, in_the_models


def differences(url: str, **options) -> list:
    engine = sa.create_engine(url)
    with engine.connect() as connection, warnings.catch_warnings():
        # PostgreSQL's expression indexes cannot be reflected; they are database-only anyway
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        # SQLite's cannot either: the models' ix_Users_lower_email is compared on PostgreSQL only
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        context = MigrationContext.configure(connection, opts={"compare_type": True, **options})
        found = compare_metadata(context, Base.metadata)
    engine.dispose()
    return found


# columns SQLite gained by ALTER TABLE ... ADD COLUMN ... REFERENCES (revision 0017: no table
# rebuild): SQLAlchemy's reflection reads neither the name nor the actions of such an inline
# key, so the comparison sees a removed and an added key. PRAGMA foreign_key_list does read
# them: test_sqlite_inline_foreign_keys_act_as_the_models_say checks them there.
SQLITE_INLINE_KEYS = {
    ("Checkouts", "itemId"),
    ("Checkouts", "branchId"),
    ("Holds", "pickupBranchId"),
    ("Holds", "itemId"),
}


def _inline_key(difference) -> bool:
    if difference[0] not in ("add_fk", "remove_fk"):
        return False
    key = difference[1]
    columns = [column.name for column in key.columns]
    return len(columns) == 1 and (key.table.name, columns[0]) in SQLITE_INLINE_KEYS


def test_upgrade_head_builds_exactly_the_models(backend, fresh_database):
    url = fresh_database(backend)
    found = differences(url, include_object=in_the_models)
    if backend == "sqlite":
        inline = [difference for difference in found if _inline_key(difference)]
        assert len(inline) == 2 * len(SQLITE_INLINE_KEYS)  # each seen as removed and added, no more
        found = [difference for difference in found if not _inline_key(difference)]
    assert found == []


def test_sqlite_inline_foreign_keys_act_as_the_models_say(fresh_database):
    engine = sa.create_engine(fresh_database("sqlite"))
    with engine.connect() as connection:
        for table, column in sorted(SQLITE_INLINE_KEYS):
            model = next(iter(Base.metadata.tables[table].c[column].foreign_keys))
            rows = connection.exec_driver_sql(f'PRAGMA foreign_key_list("{table}")').mappings().all()
            (row,) = [row for row in rows if row["from"] == column]
            assert (row["table"], row["to"]) == (model.column.table.name, "id")
            assert row["on_delete"] == (model.ondelete or "NO ACTION")
            assert row["on_update"] == (model.onupdate or "NO ACTION")
    engine.dispose()


def test_what_the_comparison_leaves_out_is_only_the_database_kept_machinery(backend, fresh_database):
    """The filter cannot hide a real difference: without it, every difference is one of the
    search, capture or retention objects the database maintains itself."""
    found = [difference for difference in differences(fresh_database(backend)) if not _inline_key(difference)]
    names = set()
    for difference in found:
        kind, obj = difference[0], difference[-1] if difference[0] == "remove_column" else difference[1]
        names.add((kind, obj.name))
    retention = {
        ("remove_index", "ix_Checkouts_returnedAt_named"),
        ("remove_index", "ix_Holds_endedAt_named"),
        ("remove_index", "ix_CheckoutEvents_occurredAt_ended_named"),
        ("remove_index", "ix_HoldEvents_occurredAt_ended_named"),
    }
    by_backend = {
        "sqlite": {
            ("remove_table", "LogWriter"),
            ("remove_table", "Anonymising"),
            ("remove_table", "BookSearch"),
            ("remove_table", "BookSearchWords"),
        },
        "postgresql": {
            ("remove_table", "SearchWords"),
            ("remove_column", "searchWords"),
            ("remove_index", "ix_Books_searchWords"),
            ("remove_index", "ix_Books_titleWords"),
            ("remove_index", "ix_Books_isbn_digits"),
        },
    }
    expected = retention | by_backend[backend]
    assert expected <= names
    extra = {(kind, name) for kind, name in names - expected if not name.startswith("BookSearch_")}
    assert not extra, extra


def capture_definitions(connection) -> dict[str, str]:
    """The capture functions and triggers as the database holds them, layout aside."""
    if connection.dialect.name == "postgresql":
        functions = "SELECT proname, pg_get_functiondef(oid) FROM pg_proc WHERE proname LIKE '%capture'"
        triggers = "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname LIKE '%capture%'"
        found = dict(connection.execute(sa.text(functions)).all()) | dict(
            connection.execute(sa.text(triggers)).all()
        )
    else:
        triggers = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%capture%'"
        found = dict(connection.execute(sa.text(triggers)).all())
    return {name: " ".join(definition.split()) for name, definition in found.items()}


def test_the_migrations_install_the_capture_triggers_the_code_would(backend, fresh_database):
    """A revision carries its own (frozen) trigger SQL: at head it must be what the code builds,
    or a hand change would be logged without the columns the code replays."""
    from booknexus.circulation.eventlog import capture

    engine = sa.create_engine(fresh_database(backend))
    with engine.begin() as connection:
        migrated = capture_definitions(connection)
        capture.install(connection)
        installed = capture_definitions(connection)
    engine.dispose()
    assert len(migrated) >= 3 * 3  # three tables' triggers (and PostgreSQL's three functions)
    assert migrated == installed
