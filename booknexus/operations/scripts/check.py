"""booknexus-check <ini>: replay the checkout, hold and item logs and compare each with its table.

Prints the report; exits 1 if any differs.
"""

import argparse
import sys

from booknexus.circulation.eventlog.projection import compare_all
from booknexus.db.engines import get_session_factory
from booknexus.operations.scripts import database_of


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="e.g. production.ini")
    args = parser.parse_args(argv)
    with database_of(args.config_uri) as engine:
        # one repeatable snapshot on PostgreSQL, so all the reads agree with each other
        with get_session_factory(engine)() as session, session.begin():
            if engine.dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            drifts = compare_all(session)
    for drift in drifts:
        print(drift.report())
    return 1 if any(drifts) else 0


if __name__ == "__main__":
    sys.exit(main())
