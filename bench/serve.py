"""Serve BookNexus (production.ini), the baseline app or the lean floor with the same
waitress settings.

    python bench/serve.py booknexus|baseline|lean PORT

BENCH_APP_SETTINGS (JSON) overrides settings of production.ini's app, for a bench that
compares two settings of the same code.
"""

import configparser
import json
import logging
import os
import sys
from pathlib import Path

import waitress
from pyramid.config import Configurator
from pyramid.paster import get_app, get_appsettings, setup_logging
from sqlalchemy import create_engine, text

import booknexus.config

INI = str(Path(__file__).resolve().parent.parent / "production.ini")


def baseline_app():
    """A minimal Pyramid view returning a constant JSON body."""

    def constant(request):
        return {"id": 1, "title": "Dune", "author": "Frank Herbert", "copies": 2, "available": 1}

    with Configurator() as config:
        config.add_route("constant", "/constant/{id}")
        config.add_view(constant, route_name="constant", renderer="json")
    return config.make_wsgi_app()


# The lean floor: the same reads as BookNexus's, each one statement on a pooled autocommit
# connection, in a Pyramid view with nothing else (no validation, no security, no ORM).
LEAN_READS = {
    "book": """SELECT b.id, b.title, b.author, b.isbn, b.copies, b."createdAt", b."updatedAt",
                 (SELECT count(*) FROM "Checkouts" c WHERE c."bookId" = b.id AND c."returnedAt" IS NULL),
                 (SELECT count(*) FROM "Holds" h WHERE h."bookId" = b.id AND h.status = 'ready')
               FROM "Books" b WHERE b.id = :id""",
    "search": """SELECT b.id, b.title, b.author, b.isbn, b.copies, b."createdAt", b."updatedAt",
                   (SELECT count(*) FROM "Checkouts" c WHERE c."bookId" = b.id AND c."returnedAt" IS NULL),
                   (SELECT count(*) FROM "Holds" h WHERE h."bookId" = b.id AND h.status = 'ready')
                 FROM "Books" b WHERE b."searchWords" @@ plainto_tsquery('simple', :q) ORDER BY b.id LIMIT :limit""",
    "loans": """SELECT id, "userId", "bookId", "checkedOutAt", "dueAt", "returnedAt", renewals, "createdAt", "updatedAt"
                FROM "Checkouts" WHERE "userId" = :user ORDER BY id LIMIT :limit""",
    "events": """SELECT id, "checkoutId", "userId", "bookId", type, "occurredAt", data
                 FROM "CheckoutEvents" ORDER BY id LIMIT :limit""",
}


def iso(value):
    return value.isoformat() if value is not None else None


def lean_app(url: str):
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=10)
    statements = {name: text(sql) for name, sql in LEAN_READS.items()}

    def rows(name: str, **parameters):
        with engine.connect() as connection:
            return connection.execute(statements[name], parameters).all()

    def book_json(row):
        return {
            "id": row[0],
            "title": row[1],
            "author": row[2],
            "isbn": row[3],
            "copies": row[4],
            "available": max(row[4] - row[7] - row[8], 0),
            "createdAt": iso(row[5]),
            "updatedAt": iso(row[6]),
        }

    def book(request):
        (row,) = rows("book", id=int(request.matchdict["id"]))
        return book_json(row)

    def search(request):
        return {"items": [book_json(row) for row in rows("search", q=request.params["q"], limit=21)][:20]}

    def loans(request):
        found = rows("loans", user=int(request.params["userId"]), limit=21)
        return {
            "items": [
                {
                    "id": r[0],
                    "userId": r[1],
                    "bookId": r[2],
                    "checkedOutAt": iso(r[3]),
                    "dueAt": iso(r[4]),
                    "returnedAt": iso(r[5]),
                    "renewals": r[6],
                    "createdAt": iso(r[7]),
                    "updatedAt": iso(r[8]),
                }
                for r in found[:20]
            ]
        }

    def events(request):
        found = rows("events", limit=21)
        return {
            "items": [
                {
                    "id": r[0],
                    "checkoutId": r[1],
                    "userId": r[2],
                    "bookId": r[3],
                    "type": r[4],
                    "occurredAt": iso(r[5]),
                    "data": r[6],
                }
                for r in found[:20]
            ]
        }

    with Configurator() as config:
        for name, pattern, view in (
            ("book", "/books/{id}", book),
            ("search", "/search", search),
            ("loans", "/checkouts", loans),
            ("events", "/checkout-events", events),
        ):
            config.add_route(name, pattern)
            config.add_view(view, route_name=name, renderer="json")
    return config.make_wsgi_app()


def main():
    which, port = sys.argv[1], int(sys.argv[2])
    setup_logging(INI)
    # "Task queue depth is N" is the load generator doing its job, not news
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if which == "lean":
        app = lean_app(os.environ["BOOKNEXUS_DATABASE_URL"])
    elif which != "booknexus":
        app = baseline_app()
    elif "BENCH_APP_SETTINGS" in os.environ:
        app = booknexus.config.main(
            {}, **{**get_appsettings(INI), **json.loads(os.environ["BENCH_APP_SETTINGS"])}
        )
    else:
        app = get_app(INI)
    # production.ini's waitress settings, for both apps
    parser = configparser.ConfigParser()
    parser.read(INI)
    threads = int(parser["server:main"].get("threads", 4))
    waitress.serve(app, listen=f"127.0.0.1:{port}", threads=threads, _quiet=True)


if __name__ == "__main__":
    main()
