"""booknexus-demo-data <ini>: a few users, books and loans, only if the database is empty."""

import argparse
import sys
from datetime import timedelta

from pyramid.paster import bootstrap, setup_logging
from sqlalchemy import func, select

from booknexus.books.models import Book
from booknexus.checkouts.models import Checkout
from booknexus.log import append as log
from booknexus.meta import utcnow
from booknexus.users.models import User

USERS = [("Ada Lovelace", "ada@example.org"), ("Alan Turing", "alan@example.org")]
BOOKS = [
    ("Dune", "Frank Herbert", "978-0441013593", 2),
    ("The Left Hand of Darkness", "Ursula K. Le Guin", "978-0441478125", 1),
    ("Neuromancer", "William Gibson", "978-0441569595", 3),
]


def load(session) -> bool:
    if session.scalar(select(func.count()).select_from(User)):
        return False
    users = [User(name=name, email=email) for name, email in USERS]
    books = [Book(title=t, author=a, isbn=i, copies=c) for t, a, i, c in BOOKS]
    session.add_all(users + books)
    session.flush()
    now = utcnow()
    checkout = Checkout(
        user_id=users[0].id, book_id=books[0].id, checked_out_at=now, due_at=now + timedelta(days=14)
    )
    session.add(checkout)
    session.flush()
    log.append(session, checkout, log.CHECKED_OUT)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="e.g. development.ini")
    args = parser.parse_args(argv)
    setup_logging(args.config_uri)
    with bootstrap(args.config_uri) as env:
        request = env["request"]
        with request.tm:
            loaded = load(request.dbsession)
    print("demo data loaded" if loaded else "database not empty: demo data left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
