"""Child processes of bench/run.py, against BOOKNEXUS_DATABASE_URL, reading production.ini.

probe.py token       print a new librarian's bearer token
probe.py cleanup     run the full repair + constraint check; print its seconds
probe.py fk-rebuild  upgrade 0002 -> 0003 through Alembic; print its seconds
probe.py anonymise   apply the retention policy (production.ini's); print its seconds
"""

import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from pyramid.paster import get_appsettings

from alembic import command
from booknexus.accounts import tokens
from booknexus.accounts.models import User
from booknexus.circulation.privacy import Policy, apply_policy
from booknexus.db.engines import get_engine, get_session_factory
from booknexus.operations.foreign_keys import checkout_foreign_keys, problems
from booknexus.operations.repair import repair

INI = str(Path(__file__).resolve().parent.parent / "production.ini")


def main(what: str) -> None:
    if what == "fk-rebuild":
        start = time.perf_counter()
        command.upgrade(Config(INI), "0003")
        print(time.perf_counter() - start)
        return
    engine = get_engine(get_appsettings(INI))
    if what == "anonymise":  # what booknexus-anonymise does: every batch the policy makes due
        start = time.perf_counter()
        apply_policy(get_session_factory(engine), Policy.from_settings(get_appsettings(INI)))
        print(time.perf_counter() - start)
        engine.dispose()
        return
    with sa.orm.Session(engine) as session, session.begin():
        if what == "token":
            user = User(name="Bench Librarian", email=f"bench-{time.time_ns()}@example.org", role="librarian")
            session.add(user)
            session.flush()
            print(tokens.issue(session, user, timedelta(hours=2))[0])
        else:
            start = time.perf_counter()
            repair(session, full=True)
            problems(checkout_foreign_keys(session.connection()))
            session.commit()
            print(time.perf_counter() - start)
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1])
