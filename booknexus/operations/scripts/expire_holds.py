"""booknexus-expire-holds <ini>: expire ready holds not picked up in time; pass their copies on.

Meant for a cron job or a systemd timer (every few minutes). Each book is settled in its own
short transaction under its row lock, exactly as a request touching that book would do it.
Requests do the same for the books they touch, so the job only bounds how long a lapsed
hold can keep a copy from the next reader.
"""

import argparse
import logging
import sys
from datetime import datetime

from pyramid.paster import get_appsettings

from booknexus.circulation.locks import lock_book
from booknexus.circulation.queue import books_with_lapsed_holds, settle
from booknexus.circulation.rules import Rules
from booknexus.db.engines import get_session_factory
from booknexus.db.schema import utcnow
from booknexus.operations.scripts import database_of
from booknexus.refusals import NotFound

log = logging.getLogger(__name__)


def expire_book(session_factory, book_id: int, limits: Rules, now: datetime) -> bool:
    """Settle one book in its own transaction; False if it is gone (deleted since the listing:
    its holds went with it, so there is nothing left to expire)."""
    with session_factory() as session, session.begin():
        try:
            book = lock_book(session, book_id)
        except NotFound:
            log.info("book %s was deleted since the listing: skipped", book_id)
            return False
        settle(session, book, limits, actor=None, now=now)
    return True


def expire_all(session_factory, limits: Rules) -> int:
    """Settle every book with a lapsed ready hold; returns how many books were settled."""
    now = utcnow()
    with session_factory() as session:
        book_ids = books_with_lapsed_holds(session, now)
    return sum(expire_book(session_factory, book_id, limits, now) for book_id in book_ids)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="e.g. production.ini")
    args = parser.parse_args(argv)
    limits = Rules.from_settings(get_appsettings(args.config_uri))
    with database_of(args.config_uri) as engine:
        settled = expire_all(get_session_factory(engine), limits)
    print(f"expired the lapsed holds of {settled} books and passed their copies on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
