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

import json
import os
import random

import pytest
import sqlalchemy as sa
from helpers import make_book

from booknexus.catalog import search
from booknexus.catalog.models import Book
from booknexus.catalog.models import Book
from booknexus.catalog.search import Search

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("BOOKNEXUS_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
BMP = range(0x10000)
SURROGATES = range(0xD800, 0xE000)  # a URL's UTF-8 cannot carry them (see test_surrogates_...)
# a code point alone, inside a word, at a word's ends, as a word before and after another
CONTEXTS = ("{}", "x{}y", "{}x", "x{}", "dune {}", "{} dune", "{}{}")
HTTP_SAMPLES = 1500  # random strings per backend through the app


@pytest.fixture(scope="module")
def seed():
    print(f"search fuzz seed: {SEED} (BOOKNEXUS_FUZZ_SEED={SEED} replays this run)")
    return SEED


def searched_words() -> dict[tuple[str, ...], str]:
    """Every distinct word list the search parses out of a BMP code point in each context,
    with one string it came from."""
    found: dict[tuple[str, ...], str] = {}
    for code_point in BMP:
        for context in CONTEXTS:
            q = context.format(chr(code_point), chr(code_point))
            words = Search.parse(q).words
            if words:  # no words: no query is built (the search finds nothing)
                found.setdefault(words, q)
    return found


def described(failures: list[tuple[str, str]]) -> str:
    code_points = sorted({f"U+{ord(c):04X}" for q, _ in failures for c in q if c not in "xydune "})
    return f"{len(failures)} strings fail, from {len(code_points)} code points {code_points[:60]}: " + (
        "; ".join(f"{q!r}: {error}" for q, error in failures[:10])
    )


# --- every code point of the BMP, through the database's own query parser ---------------------


TSQUERY_ERROR = """
CREATE FUNCTION pg_temp.tsquery_error(queries text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE query text;
BEGIN
    FOREACH query IN ARRAY queries LOOP
        PERFORM to_tsquery('simple', query);
    END LOOP;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLERRM;
END $$"""


def postgresql_failures(session, found: dict) -> list[tuple[str, str]]:
    """The strings whose query, in any form the search builds, PostgreSQL refuses: one
    statement over all of them (each row's error caught by a function of this session)."""
    session.execute(sa.text(TSQUERY_ERROR))
    rows = sa.func.unnest(sa.bindparam("words", type_=sa.ARRAY(sa.Text))).table_valued(
        "words", with_ordinality="i"
    )
    forms = [
        search.tsquery_text(rows.c.words, operator, weight, prefix_last)
        for operator in ("&", "|")
        for weight in ("", "a")
        for prefix_last in (True, False)
    ]
    statement = sa.select(rows.c.i, sa.func.pg_temp.tsquery_error(sa.array(forms))).select_from(rows)
    items = list(found.items())
    texts = [search.words_text(words) for words, _ in items]
    failures = []
    for i, error in session.execute(statement, {"words": texts}):
        if error is not None:
            failures.append((items[i - 1][1], error))
    return failures


FTS5_ERRORS = """SELECT j.key FROM json_each(:expressions) AS j
                 WHERE EXISTS (SELECT 1 FROM "BookSearch" WHERE "BookSearch" MATCH j.value)"""


def sqlite_failures(session, found: dict) -> list[tuple[str, str]]:
    """The strings whose FTS5 expression, in any form the search builds, SQLite refuses:
    checked in batches; a batch that fails is checked expression by expression."""
    expressions = [
        (q, search.fts5_expression(words, operator, column, prefix_last))
        for words, q in found.items()
        for operator in ("AND", "OR")
        for column in (None, "title")
        for prefix_last in (True, False)
    ]
    failures = []
    for start in range(0, len(expressions), 20000):
        batch = expressions[start : start + 20000]
        try:
            with session.begin_nested():
                session.execute(sa.text(FTS5_ERRORS), {"expressions": json.dumps([e for _, e in batch])})
            continue
        except sa.exc.DBAPIError:
            pass
        for q, expression in batch:
            try:
                with session.begin_nested():
                    session.execute(sa.text(FTS5_ERRORS), {"expressions": json.dumps([expression])})
            except sa.exc.DBAPIError as exc:
                failures.append((q, str(exc.orig)))
    return failures


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
    """A few pieces: random BMP code points (surrogates left out: see below), catalogue
    words, spaces, and ASCII punctuation, at most the API's 255 characters."""
    pieces = []
    for _ in range(rng.randint(1, 8)):
        kind = rng.random()
        if kind < 0.5:
            length = rng.randint(1, 4)
            pieces.append(
                "".join(
                    chr(rng.choice((rng.randrange(0xD800), rng.randrange(0xE000, 0x10000))))
                    for _ in range(length)
                )
            )
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
    assert not failures, f"seed {seed}: " + described(failures)


def test_surrogates_cannot_reach_the_search(anonymous):
    """A lone surrogate is not a character UTF-8 can encode: a URL carrying its bytes
    (%ED%A0%80) is refused before any search runs, never answered 500."""
    response = anonymous.get("/books?q=%ED%A0%80", expect_errors=True)
    assert response.status_int < 500, response.status
