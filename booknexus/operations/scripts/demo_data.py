"""booknexus-demo-data <ini>: a few users, books and loans, only if the database is empty."""

import argparse
import sys
from datetime import timedelta

from sqlalchemy import func, select

from booknexus.accounts.librarians import create_or_promote_librarian
from booknexus.accounts.models import ANONYMOUS_READER, User
from booknexus.accounts.passwords import hash_password
from booknexus.catalog.isbn import normalise
from booknexus.catalog.models import Book
from booknexus.circulation.eventlog import append as eventlog
from booknexus.circulation.models import Checkout
from booknexus.db.engines import get_session_factory
from booknexus.db.schema import utcnow
from booknexus.operations.scripts import database_of

USERS = [("Ada Lovelace", "ada@example.org"), ("Alan Turing", "alan@example.org")]
# demo credentials, printed by `make run`: for a local demo only
LIBRARIAN = ("Lena Librarian", "librarian@example.org", "librarian-demo-pass")
MEMBER_PASSWORD = "member-demo-pass"  # Ada's
BOOKS = [
    ("Dune", "Frank Herbert", "978-0441013593", 2),
    ("The Left Hand of Darkness", "Ursula K. Le Guin", "978-0441478125", 1),
    ("Neuromancer", "William Gibson", "978-0441569595", 3),
]


def load(session) -> bool:
    # empty but for the anonymous reader every database has (revision 0010)
    if session.scalar(select(func.count()).select_from(User).where(User.role != ANONYMOUS_READER)):
        return False
    users = [User(name=name, email=email) for name, email in USERS]
    users[0].password_hash = hash_password(MEMBER_PASSWORD)
    books = [Book(title=t, author=a, isbn=normalise(i), copies=c) for t, a, i, c in BOOKS]
    session.add_all(users + books)
    session.flush()
    now = utcnow()
    checkout = Checkout(
        user_id=users[0].id, book_id=books[0].id, checked_out_at=now, due_at=now + timedelta(days=14)
    )
    session.add(checkout)
    session.flush()
    eventlog.append(session, checkout, eventlog.CHECKED_OUT, actor=None)
    name, email, password = LIBRARIAN
    create_or_promote_librarian(session, email, password, name)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="e.g. development.ini")
    args = parser.parse_args(argv)
    # a session of its own, committed here: a script is no request (a bootstrapped request
    # is a GET, which the app serves read-only, outside any transaction)
    with database_of(args.config_uri) as engine:
        with get_session_factory(engine)() as session, session.begin():
            loaded = load(session)
    print("demo data loaded" if loaded else "database not empty: demo data left out")
    print(f"demo librarian: {LIBRARIAN[1]} / {LIBRARIAN[2]}")
    print(f"demo member:    {USERS[0][1]} / {MEMBER_PASSWORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
