"""booknexus-cleanup <ini> [--dry-run]: the startup cleanup, by hand.

Purges orphaned checkouts, reconciles the log with rows deleted outside the app, imports
unlogged rows, then checks the foreign keys. With --dry-run it does all of it inside a
transaction that is rolled back, so the counts are exactly what a real run would do.
"""

import argparse
import json
import sys

from booknexus.cleanup import run_cleanup
from booknexus.db import get_session_factory
from booknexus.foreign_keys import FIX_COMMAND, checkout_foreign_keys, problems
from booknexus.scripts import database_of


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="e.g. production.ini")
    parser.add_argument("--dry-run", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    with database_of(args.config_uri) as engine:
        with get_session_factory(engine)() as session:
            report = run_cleanup(session)
            found = problems(checkout_foreign_keys(session.connection()))
            if args.dry_run:
                session.rollback()
            else:
                session.commit()
    print(("dry run, nothing changed: would have done: " if args.dry_run else "") + report.summary())
    print(json.dumps(report.as_json(), indent=2))
    for problem in found:
        print(f"constraint problem: {problem}; fix with: {FIX_COMMAND}")
    return 0 if report.ran else 1


if __name__ == "__main__":
    sys.exit(main())
