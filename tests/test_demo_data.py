"""booknexus-demo-data: what `make run` loads into an empty database, committed."""

import pytest
import sqlalchemy as sa
from conftest import ROOT, database_url_env

from booknexus.circulation.eventlog.projection import compare_all
from booknexus.operations.scripts import demo_data


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_demo_data_is_loaded_once_and_its_log_replays(backend, fresh_database, capsys):
    url = fresh_database(backend)
    with database_url_env(url):
        assert demo_data.main([str(ROOT / "development.ini")]) == 0
        assert "demo data loaded" in capsys.readouterr().out
        assert demo_data.main([str(ROOT / "development.ini")]) == 0
        assert "database not empty" in capsys.readouterr().out
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        books = connection.execute(sa.text('SELECT count(*) FROM "Books"')).scalar()
        loans = connection.execute(sa.text('SELECT count(*) FROM "Checkouts"')).scalar()
        librarians = connection.execute(
            sa.text("""SELECT count(*) FROM "Users" WHERE role = 'librarian'""")
        ).scalar()
        items = connection.execute(sa.text('SELECT status, count(*) FROM "Items" GROUP BY status')).all()
        holds = connection.execute(sa.text('SELECT status FROM "Holds"')).scalars().all()
    # every copy an item; both of Dune's on loan to Ada, Alan waiting for one
    assert dict(items) == {"checked_out": 2, "available": sum(c for *_, c in demo_data.BOOKS) - 2}
    assert holds == ["waiting"]
    with sa.orm.Session(engine) as session:
        assert not any(compare_all(session))
    engine.dispose()
    assert (books, loans, librarians) == (len(demo_data.BOOKS), 2, 1)
