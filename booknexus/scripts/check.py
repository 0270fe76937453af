"""booknexus-check <ini>: replay the checkout log and compare it with the Checkouts table.

Prints the report; exits 1 if they differ.
"""

import argparse
import sys

from booknexus.db import get_session_factory
from booknexus.log.projection import compare
from booknexus.scripts import database_of


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="e.g. production.ini")
    args = parser.parse_args(argv)
    with database_of(args.config_uri) as engine:
        # one repeatable snapshot on PostgreSQL, so the two reads agree with each other
        with get_session_factory(engine)() as session, session.begin():
            if engine.dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            drift = compare(session)
    print(drift.report())
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
