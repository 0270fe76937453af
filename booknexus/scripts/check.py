"""booknexus-check <ini>: replay the checkout log and compare it with the Checkouts table.

Prints the report; exits 1 if they differ.
"""

import argparse
import sys

from pyramid.paster import get_appsettings, setup_logging

from booknexus.db import get_engine, get_session_factory
from booknexus.log.projection import compare


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="e.g. production.ini")
    args = parser.parse_args(argv)
    setup_logging(args.config_uri)
    engine = get_engine(get_appsettings(args.config_uri))
    try:
        # one repeatable snapshot on PostgreSQL, so the two reads agree with each other
        with get_session_factory(engine)() as session, session.begin():
            if engine.dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            drift = compare(session)
    finally:
        engine.dispose()
    print(drift.report())
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
