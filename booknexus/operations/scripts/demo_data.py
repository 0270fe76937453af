"""booknexus-demo-data <ini>: a few users with library cards, books with their items, a loan
and a hold, only if the database is empty."""

import argparse
import sys

from pyramid.paster import get_appsettings
from sqlalchemy import func, select

from booknexus.accounts.librarians import create_or_promote_librarian
from booknexus.accounts.models import ANONYMOUS_READER, User
from booknexus.accounts.passwords import hash_password
from booknexus.branches.queries import default_branch
from booknexus.catalog.isbn import normalise
from booknexus.catalog.models import Book
from booknexus.circulation import commands
from booknexus.circulation.inventory import add_copies, barcode_prefix
from booknexus.circulation.rules import Rules
from booknexus.db.engines import get_session_factory
from booknexus.operations.scripts import database_of

USERS = [("Ada Lovelace", "ada@example.org", "C-0001"), ("Alan Turing", "alan@example.org", "C-0002")]
# demo credentials, printed by `make run`: for a local demo only
LIBRARIAN = ("Lena Librarian", "librarian@example.org", "librarian-demo-pass")
MEMBER_PASSWORD = "member-demo-pass"  # Ada's
BOOKS = [
    ("Dune", "Frank Herbert", "978-0441013593", 2),
    ("The Left Hand of Darkness", "Ursula K. Le Guin", "978-0441478125", 1),
    ("Neuromancer", "William Gibson", "978-0441569595", 3),
]


def load(session, settings: dict) -> bool:
    # empty but for the anonymous reader every database has (revision 0010)
    if session.scalar(select(func.count()).select_from(User).where(User.role != ANONYMOUS_READER)):
        return False
    users = [User(name=name, email=email, card_number=card) for name, email, card in USERS]
    users[0].password_hash = hash_password(MEMBER_PASSWORD)
    books = [Book(title=t, author=a, isbn=normalise(i), copies=c) for t, a, i, c in BOOKS]
    session.add_all(users + books)
    session.flush()
    branch = default_branch(session, settings).id
    for book in books:
        add_copies(session, book, book.copies, branch, barcode_prefix(settings))
    # through the commands, as the desk would: Ada has Dune out, Alan waits for it
    rules = Rules.from_settings(settings)
    commands.check_out(session, None, users[0].id, books[0].id, branch, rules=rules)
    commands.check_out(session, None, users[0].id, books[0].id, branch, rules=rules)
    commands.place_hold(session, None, users[1].id, books[0].id, branch, rules=rules)
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
            loaded = load(session, get_appsettings(args.config_uri))
    print("demo data loaded" if loaded else "database not empty: demo data left out")
    print(f"demo librarian: {LIBRARIAN[1]} / {LIBRARIAN[2]}")
    print(f"demo member:    {USERS[0][1]} / {MEMBER_PASSWORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
