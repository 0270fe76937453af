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
        context = MigrationContext.configure(connection, opts={"compare_type": True, **options})
        found = compare_metadata(context, Base.metadata)
    engine.dispose()
    return found


def test_upgrade_head_builds_exactly_the_models(backend, fresh_database):
    url = fresh_database(backend)
    assert differences(url, include_object=in_the_models) == []


def test_what_the_comparison_leaves_out_is_only_the_database_kept_machinery(backend, fresh_database):
    """The filter cannot hide a real difference: without it, every difference is one of the
    search or capture objects the database maintains itself."""
    found = differences(fresh_database(backend))
    names = set()
    for difference in found:
        kind, obj = difference[0], difference[-1] if difference[0] == "remove_column" else difference[1]
        names.add((kind, obj.name))
    expected = {
        "sqlite": {
            ("remove_table", "LogWriter"),
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
    }[backend]
    assert expected <= names
    assert all(name in {n for _, n in expected} or name.startswith("BookSearch_") for _, name in names), names
