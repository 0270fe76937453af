"""booknexus-cleanup <ini> [--full] [--dry-run]: the startup repair, by hand.

Without --full it does what startup does: reads the cheap facts (foreign keys, capture
triggers, the log's edges) and runs the full repair only if they give a reason. With
--full it always runs it: purges orphaned checkouts, reconciles the log with rows deleted
outside the app, imports unlogged rows, resyncs rows changed by hand; then it checks the
foreign keys. With --dry-run it does all of it inside a transaction that is rolled back,
so the counts are exactly what a real run would do.
"""

import argparse
import json
import sys

from booknexus.db.engines import get_session_factory
from booknexus.operations.foreign_keys import (
    FIX_COMMAND,
    checkout_foreign_keys,
    problems,
)
from booknexus.operations.repair import repair
from booknexus.operations.scripts import database_of


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="e.g. production.ini")
    parser.add_argument("--full", action="store_true", help="scan everything, whatever the checks say")
    parser.add_argument("--dry-run", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    with database_of(args.config_uri) as engine:
        with get_session_factory(engine)() as session:
            report = repair(session, full=args.full)
            found = problems(checkout_foreign_keys(session.connection()))
            if args.dry_run:
                session.rollback()
            else:
                session.commit()
    print(("dry run, nothing changed: would have done: " if args.dry_run else "") + report.summary())
    print(json.dumps(report.as_json(), indent=2))
    for problem in found:
        print(f"constraint problem: {problem}; fix with: {FIX_COMMAND}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
