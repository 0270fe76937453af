"""booknexus-anonymise <ini> [--dry-run]: apply the retention policy to loan and hold history.

Expired login tokens are pruned, and closed loans and ended holds older than
``booknexus.privacy.loan_history_days`` / ``hold_history_days`` (records deleted with their
reader or book too) are handed to the anonymous reader, in batches of short transactions;
readers who chose ``keepHistory`` are left as they are. Meant for cron or a systemd timer
(daily is plenty); safe to interrupt, and to run twice at once. ``--dry-run`` does the same
inside one transaction that is rolled back, and says what it would have done.
"""

import argparse
import json
import sys

from pyramid.paster import get_appsettings

from booknexus.accounts.tokens import prune_all_expired
from booknexus.circulation.privacy import Policy, apply_policy
from booknexus.db.engines import get_session_factory
from booknexus.operations.scripts import database_of


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="e.g. production.ini")
    parser.add_argument("--dry-run", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    policy = Policy.from_settings(get_appsettings(args.config_uri))
    with database_of(args.config_uri) as engine:
        if args.dry_run:
            with engine.connect() as connection:
                outer = connection.begin()
                # every batch in savepoints of one transaction, rolled back at the end
                factory = get_session_factory(connection)
                in_savepoints = lambda: factory(join_transaction_mode="create_savepoint")  # noqa: E731
                counts = apply_policy(in_savepoints, policy)
                counts["tokens_pruned"] = prune_all_expired(in_savepoints)
                outer.rollback()
        else:
            counts = apply_policy(get_session_factory(engine), policy)
            counts["tokens_pruned"] = prune_all_expired(get_session_factory(engine))
    prefix = "dry run, nothing changed: would have anonymised" if args.dry_run else "anonymised"
    days = f"loans {policy.loan_days} days, holds {policy.hold_days} days"
    print(f"{prefix}: {json.dumps(counts)} (policy: {days})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
