"""Search answers every string a client can send, on both databases: no 500, whatever is typed.

Folding a search (lower case, compatibility decomposition, accents dropped) can turn a letter
into syntax: U+2474 ``⑴`` folds to ``(1)``, U+0149 ``ŉ`` to ``'n``, U+FF9E ``ﾞ`` to nothing.
Three proofs that no such word leaks into the database's query syntax:

- every code point of the Basic Multilingual Plane, alone and inside words, parsed as the
  search parses it and turned into each form of query the search can build (a tsquery on
  PostgreSQL, an FTS5 expression on SQLite), checked by the database's own parser in a few
  set-based statements (surrogates included: the domain function sees Python strings);
- the strings of the issue, through the real WSGI app;
- random strings of random code points through the real WSGI app, ranked and unranked. The
  seed is random per run and printed (``BOOKNEXUS_FUZZ_SEED=<seed>`` replays a run).
"""

import functools
import json
import os
import random
import unicodedata

import pytest
import sqlalchemy as sa
from helpers import make_book

from booknexus.catalog import search
from booknexus.catalog.models import Book
from booknexus.catalog.search import Search

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("BOOKNEXUS_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
BMP = range(0x10000)
# a code point alone, inside a word, as the last word (a prefix) and the first, doubled
CONTEXTS = ("{}", "x{}y", "dune {}", "{} dune", "{}{}")
HTTP_SAMPLES = 250  # random strings per backend through the app
CHARACTERS = [c for c in map(chr, BMP) if not "\ud800" <= c <= "\udfff"]  # what a URL can carry
# half of the random code points from those whose folding does most: compatibility
# decompositions (⑴, ﾞ) and modifier letters (ʼ), one in a hundred of which folded to syntax
# or to nothing before quoting
FOLDING = [
    c for c in CHARACTERS if unicodedata.decomposition(c).startswith("<") or unicodedata.category(c) == "Lm"
]


@pytest.fixture(scope="module")
def seed():
    print(f"search fuzz seed: {SEED} (BOOKNEXUS_FUZZ_SEED={SEED} replays this run)")
    return SEED


@functools.cache
def searched_words() -> dict[tuple[str, ...], str]:
    """Every distinct word list the search parses out of a BMP code point in each context,
    with the first string it came from."""
    found: dict[tuple[str, ...], str] = {}
    for code_point in BMP:
        for context in CONTEXTS:
            q = context.format(chr(code_point), chr(code_point))
            words = Search.parse(q).words
            if words:  # no words: no query is built (the search finds nothing)
                found.setdefault(words, q)
    return found


def described(failures: list[tuple[tuple[str, ...], str]]) -> str:
    """The failing word lists, and every code point that parses to one of them."""
    failing = {words for words, _ in failures}
    code_points = sorted(
        code_point
        for code_point in BMP
        if any(
            Search.parse(context.format(chr(code_point), chr(code_point))).words in failing
            for context in CONTEXTS
        )
    )
    return f"{len(failures)} word lists refused, from {len(code_points)} code points: " + (
        " ".join(f"U+{c:04X}" for c in code_points[:100])
        + "; e.g. "
        + "; ".join(f"{searched_words()[words]!r}: {error}" for words, error in failures[:10])
    )


def in_batches(items: list, check, size: int = 40000) -> list:
    """The items that fail ``check`` (which raises when any item of those it is given fails):
    checked in batches, a failing batch halved until its failures are found."""

    def failing(batch):
        try:
            check(batch)
            return []
        except sa.exc.DBAPIError as exc:
            if len(batch) == 1:
                return [(batch[0], str(exc.orig).splitlines()[0])]
        return failing(batch[: len(batch) // 2]) + failing(batch[len(batch) // 2 :])

    return [
        failure for start in range(0, len(items), size) for failure in failing(items[start : start + size])
    ]


# --- every code point of the BMP, through the database's own query parser ---------------------

# the richest form (weights, a prefix) and the plainest (the near spellings'); a word's quoted
# text, where anything could leak, is the same in every form
PG_FORMS = (("&", "a", True), ("|", "", False))
FTS5_FORMS = (("AND", "title", True),)  # one form: SQLite checks a word's quoting as fast as PG checks two


def postgresql_failures(session, found: dict) -> list:
    """The word lists whose tsquery, in each form the search builds, PostgreSQL refuses."""
    rows = sa.func.unnest(sa.bindparam("words", type_=sa.ARRAY(sa.Text))).table_valued("words")
    escaped = sa.select(search.folded_and_escaped(rows.render_derived().c.words).label("escaped")).lateral()
    tsqueries = [
        sa.func.to_tsquery(
            sa.literal_column("'simple'"), search.tsquery_text(None, *form, escaped=escaped.c.escaped)
        )
        for form in PG_FORMS
    ]
    statement = (
        sa.select(sa.func.count())
        .select_from(rows.render_derived())
        .join(escaped, sa.true())
        .where(sa.or_(*(tsquery.is_(None) for tsquery in tsqueries)))
    )

    def check(batch):
        with session.begin_nested():
            session.execute(statement, {"words": [search.words_text(words) for words in batch]})

    return in_batches(list(found), check)


FTS5_CHECK = """SELECT count(*) FROM json_each(:expressions) AS j
                WHERE EXISTS (SELECT 1 FROM "BookSearch" WHERE "BookSearch" MATCH j.value)"""


def sqlite_failures(session, found: dict) -> list:
    """The word lists whose FTS5 expression, in each form the search builds, SQLite refuses."""

    def check(batch):
        expressions = [search.fts5_expression(words, *form) for words in batch for form in FTS5_FORMS]
        with session.begin_nested():
            session.execute(sa.text(FTS5_CHECK), {"expressions": json.dumps(expressions)})

    return in_batches(list(found), check)


def test_every_bmp_code_point_alone_and_in_words_is_a_valid_query(backend, dbsession):
    dbsession.add(Book(title="Dune", author="Frank Herbert"))  # FTS5 parses a MATCH only when
    dbsession.flush()  # there are rows to match: give it one
    found = searched_words()
    assert len(found) > 100000  # most code points are letters or digits: words of their own
    check = postgresql_failures if backend == "postgresql" else sqlite_failures
    failures = check(dbsession, found)
    assert not failures, described(failures)


# --- through the real app ---------------------------------------------------------------


@pytest.mark.parametrize(
    "q", ["⑴", "ﾞ", "x⑴y", "dune ⑴", "ŉ", "ʼ", "dune ŉ", "ﾞ dune", "⒜⒝", "x\u02bcy", "\ufdfa" * 200]
)
def test_folded_syntax_and_empty_words_answer_200(anonymous, q):
    for sort in ("relevance", "id"):
        response = anonymous.get("/books", {"q": q, "sort": sort})
        assert response.status_int == 200 and response.json["items"] == []


def random_query(rng: random.Random, words: list[str]) -> str:
    """A few pieces: random code points (surrogates left out: see the last test), catalogue
    words, spaces and ASCII punctuation; at most the API's 255 characters."""
    pieces = []
    for _ in range(rng.randint(1, 8)):
        kind = rng.random()
        if kind < 0.5:
            pool = FOLDING if rng.random() < 0.5 else CHARACTERS
            pieces.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 4))))
        elif kind < 0.8:
            pieces.append(rng.choice(words))
        else:
            pieces.append(rng.choice(" -'\"():*&|!<>\\%_"))
    return "".join(pieces)[:255]


def test_random_strings_answer_200(testapp, anonymous, seed):
    catalogue = ["Dune", "Children of Dune", "Foundation and Empire", "Cien años de soledad"]
    for title in catalogue:
        make_book(testapp, title=title, author="Frank Herbert")
    words = ["dune", "dunes", "herbert", "herbrt", "foundation", "años", "anos", "du", ""]
    rng = random.Random(seed)
    failures = []
    for _ in range(HTTP_SAMPLES):
        q = random_query(rng, words)
        sort = rng.choice(("relevance", "relevance", "id"))
        response = anonymous.get("/books", {"q": q, "sort": sort, "limit": 5}, expect_errors=True)
        if response.status_int != 200:
            failures.append((q, f"{sort}: {response.status}"))
    code_points = sorted({f"U+{ord(c):04X}" for q, _ in failures for c in q if not c.isascii()})
    assert not failures, f"seed {seed}: {len(failures)} answered 5xx, of {code_points[:60]}: {failures[:10]}"


def test_surrogates_cannot_reach_the_search(anonymous):
    """A lone surrogate is not a character UTF-8 can encode: a URL carrying its bytes
    (%ED%A0%80) is refused before any search runs, never answered 500."""
    for url in ("/books?q=%ED%A0%80", "/books?q=%FF", "/checkouts?userId=%C3", "/books/%FF"):
        response = anonymous.get(url, expect_errors=True)
        assert response.status_int < 500, (url, response.status)
        assert response.json["error"]["code"] in ("invalid_encoding", "not_found"), (url, response.json)
    assert anonymous.get("/books?q=%ED%A0%80", status=400).json["error"]["code"] == "invalid_encoding"
