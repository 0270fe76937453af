"""booknexus-create-librarian <ini> EMAIL [--name NAME] [--password-stdin]

Creates a librarian, or promotes an existing user to librarian, and sets the password,
read from a prompt (twice) or, with --password-stdin, from the first line of stdin. The email
names the account whatever its case; a reset password revokes the account's tokens.
Exit codes: 0 done, 1 refused (the anonymous reader; an email another account holds in
another case), 2 a password too short.
"""

import argparse
import getpass
import sys

from booknexus.accounts.librarians import create_or_promote_librarian
from booknexus.db.engines import get_session_factory
from booknexus.operations.scripts import database_of
from booknexus.refusals import Refused

MIN_LENGTH = 8


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise SystemExit("the passwords differ")
    return password


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config_uri", help="e.g. production.ini")
    parser.add_argument("email")
    parser.add_argument("--name")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    args = parser.parse_args(argv)
    password = read_password(args.password_stdin)
    if len(password) < MIN_LENGTH:
        print(f"the password must have at least {MIN_LENGTH} characters", file=sys.stderr)
        return 2
    with database_of(args.config_uri) as engine:
        try:
            with get_session_factory(engine)() as session, session.begin():
                user = create_or_promote_librarian(session, args.email, password, args.name)
                print(f"librarian {user.email} (user {user.id}) is ready")
        except Refused as refusal:  # rolled back: nothing changed
            print(f"refused ({refusal.code}): {refusal.message}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
