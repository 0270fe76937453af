"""Catalogue search: words in any order and case, accents folded, ranked, from an index.

Relevance comes in tiers, each a set of books disjoint from the others, listed in order and,
within a tier, by id (ties by id, as the issue asks, and a keyset a cursor can resume):

1. ``title``: every word in the title;
2. ``all``: every word in the title and author together (an author's name, mixed searches);
3. ``some_title``, then ``some``: some of the words, in the title, then anywhere (only for
   searches of several words);
4. ``near``: a near spelling (one letter inserted, dropped, changed or two swapped) of a word
   of five letters or more that the catalogue knows, when nothing better fills the page.

The last word matches as a prefix ("asim" finds Asimov), so results come as a reader types.
Words are what both databases index: letters and digits; anything else (``%``, ``_``,
quotes, backslashes) separates words and is never a wildcard or syntax. Folding may make
punctuation of a letter (``⑴`` folds to ``(1)``, ``ŉ`` to ``'n``) or nothing of it (``ﾞ``):
each folded word is quoted, so the database's own parser makes its tokens and nothing in it
is syntax, and a word that folds to nothing is dropped. A search that looks like an ISBN (10
or 13 digits, hyphens or spaces anywhere) finds the book by its ISBN only.

Each tier is read in id order at a cost bounded by the page or by its matches (``in_id_order``)
and later tiers run only while the page has room, so a page costs what its rows cost, not what
the catalogue holds. PostgreSQL uses its full-text search (a GIN index on a weighted tsvector:
title A, author B; one on the title's words alone) and a lexicon of indexed words; SQLite uses
FTS5 and its vocabulary table. Both are behind the same functions, and the same tests run on
both.
"""

import base64
import binascii
import re
import unicodedata
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import sqlalchemy.dialects.postgresql  # noqa: F401  (registers to_tsvector, used below)
from sqlalchemy import Select, String, and_, bindparam, func, literal_column, not_, select, text
from sqlalchemy.orm import Session

from booknexus.catalog.isbn import InvalidIsbn, equivalents, normalise
from booknexus.catalog.models import Book
from booknexus.refusals import Invalid

TIERS = ("isbn", "title", "all", "some_title", "some", "near")
WORD = re.compile(r"[^\W_]+")
ISBN_TYPED = re.compile(r"^[\dXx][\dXx\- ]*$")
NEAR_MIN_LENGTH = 5
NEAR_MAX_LENGTH = 64  # a word's near spellings grow with its length: 36 per letter, each as long
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def fold(word: str) -> str:
    """Lower case without accents: what both indexes store (for the near-spelling lexicon)."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class Search:
    words: tuple[str, ...]
    isbn: str | None = None

    @classmethod
    def parse(cls, q: str) -> "Search":
        digits = re.sub(r"[\- ]", "", q.strip()).upper()
        if ISBN_TYPED.match(q.strip()) and len(digits) in (10, 13):
            return cls(words=(), isbn=digits)
        return cls(words=tuple(folded for word in WORD.findall(q) if (folded := fold(word))))


def isbn_forms(typed: str) -> tuple[str, ...]:
    """A typed ISBN and, when it is a valid one, its ISBN-10 or -13 twin: books are stored in
    one form and found by either."""
    try:
        return equivalents(normalise(typed))
    except InvalidIsbn:
        return (typed,)  # a legacy row may hold an ISBN whose check digit is wrong


# --- the cursor: opaque to clients ------------------------------------------------------


def encode_cursor(tier: str, book_id: int) -> str:
    return base64.urlsafe_b64encode(f"{TIERS.index(tier)}.{book_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        tier, book_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(".")
        position = (int(tier), int(book_id))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        position = (-1, -1)
    if not 0 <= position[0] < len(TIERS) or position[1] < 0:
        raise Invalid("invalid_value", "cursor is not one this search returned.", {"field": "cursor"})
    return position


# --- the near spellings -----------------------------------------------------------------


def one_edit_away(word: str) -> set[str]:
    """Every string one insertion, deletion, substitution or transposition from ``word``."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    found = {a + b[1:] for a, b in splits if b}
    found |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    found |= {a + c + b[1:] for a, b in splits if b for c in ALPHABET}
    found |= {a + c + b for a, b in splits for c in ALPHABET}
    found.discard(word)
    return found


SEARCH_WORDS = literal_column('"Books"."searchWords"')  # generated by the database, not mapped
TITLE_WORDS = func.to_tsvector(literal_column("'simple'"), func.booknexus_fold(Book.title))  # as indexed
POSTGRESQL_KNOWN = text('SELECT word FROM "SearchWords" WHERE word = ANY(:candidates)')
SQLITE_KNOWN = 'SELECT term FROM "BookSearchWords" WHERE term IN ({})'


def near_spellings(session: Session, words: tuple[str, ...]) -> list[str]:
    """Words of the catalogue's lexicon one edit away from a searched word of five letters or
    more: every such string, looked up by the lexicon's key (a few hundred index probes)."""
    guessed = [word for word in words if NEAR_MIN_LENGTH <= len(word) <= NEAR_MAX_LENGTH]
    candidates = set().union(*(one_edit_away(word) for word in guessed))
    if not candidates:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return sorted(session.scalars(POSTGRESQL_KNOWN, {"candidates": sorted(candidates)}))
    names = {f"w{i}": candidate for i, candidate in enumerate(sorted(candidates))}
    statement = text(SQLITE_KNOWN.format(", ".join(f":{name}" for name in names)))
    return sorted(session.scalars(statement, names))


# --- the tiers --------------------------------------------------------------------------


# PostgreSQL: the words go to the database as one text, folded there as the index folds
# titles, then each is quoted: inside quotes only the quote and the backslash are tsquery
# syntax, and they are escaped after folding (folding makes quotes: "ŉ" is "'n"). The parser
# makes a quoted word's tokens (one that folds to several, as "x⑴y" does, is a phrase of
# them); one with none drops out of the query. Each starts with a space, so none is empty
# ('' is a syntax error). Every function here is immutable: the planner folds the query to a
# constant and plans for its words.
SEPARATOR = "\x01"  # between words: no word holds it, and folding leaves it as it is
_SEPARATOR = literal_column(r"E'\x01'")
_ESCAPES = (
    (literal_column(r"E'\\'"), literal_column(r"E'\\\\'")),  # a backslash, doubled
    (literal_column("''''"), literal_column("''''''")),  # a quote, doubled
)
_QUOTE_OPEN = literal_column("''' '")


def words_text(words) -> str:
    """Words (a search's, or near spellings) as one text, as ``tsquery_text`` takes them."""
    return SEPARATOR.join(words)


def _sql_string(value: str):
    return literal_column("'" + value.replace("'", "''") + "'")


def folded_and_escaped(words):
    """``words`` (a SQL text of ``words_text``) folded as the index folds titles, with quotes
    and backslashes escaped for quoted tsquery words."""
    escaped = func.booknexus_fold(words)
    for character, escape in _ESCAPES:
        escaped = func.replace(escaped, character, escape)
    return escaped


def tsquery_text(words, operator: str, weight: str = "", prefix_last: bool = True, escaped=None):
    """The text (for ``to_tsquery``) of a query for the words of ``words`` (a SQL text of
    ``words_text``, or its ``folded_and_escaped`` as ``escaped``) joined by ``operator``: the
    last as a prefix (``prefix_last``), each in the title (``weight`` "a")."""
    flags = f":{weight}" if weight else ""
    last = ":" + ("*" if prefix_last else "") + weight if prefix_last or weight else ""
    quoted = func.replace(
        folded_and_escaped(words) if escaped is None else escaped,
        _SEPARATOR,
        _sql_string(f"'{flags} {operator} ' "),
    )
    return _QUOTE_OPEN.concat(quoted).concat(_sql_string(f"'{last}"))


def fts5_expression(words, operator: str, column: str | None = None, prefix_last: bool = True) -> str:
    """SQLite: ``words`` joined by ``operator``, each an FTS5 string (its quotes doubled), so
    nothing in it is FTS5 syntax; the last as a prefix (``prefix_last``), in ``column``."""
    terms = [
        '"' + word.replace('"', '""') + '"' + ("*" if prefix_last and i == len(words) - 1 else "")
        for i, word in enumerate(words)
    ]
    expression = f" {operator} ".join(terms)
    return f"{column} : ({expression})" if column else expression


def _matches(dialect: str, query, words=None):
    """Books matching ``query``: a tsquery's text (SQL) on PostgreSQL, an FTS5 expression on
    SQLite."""
    if dialect == "postgresql":
        tsquery = func.to_tsquery(literal_column("'simple'"), query)
        return (SEARCH_WORDS if words is None else words).op("@@")(tsquery)
    # unique: one statement holds several of these, each with its own query
    query = bindparam("q", query, unique=True)
    fts = select(text("rowid")).select_from(text('"BookSearch"'))
    return Book.id.in_(fts.where(text('"BookSearch" MATCH :q').bindparams(query)))


def conditions(session: Session, search: Search, near: list[str] | None = None, looked_up=False) -> dict:
    """Each tier's condition on "Books" (the near tier's only once its words are known): as
    tested row by row, or (``looked_up``) as the search index finds the same books. On
    PostgreSQL the words are bound at execution (``condition_params``)."""
    if search.isbn:
        digits = func.upper(func.replace(func.replace(Book.isbn, "-", ""), " ", ""))  # as indexed
        return {"isbn": digits.in_(isbn_forms(search.isbn))}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _postgresql_conditions(looked_up, bool(near))
    words = search.words
    title = in_title = _matches(dialect, fts5_expression(words, "AND", column="title"))
    every = _matches(dialect, fts5_expression(words, "AND"))
    some = _matches(dialect, fts5_expression(words, "OR"))
    some_title = some_in_title = _matches(dialect, fts5_expression(words, "OR", column="title"))
    nearby = _matches(dialect, fts5_expression(near, "OR", prefix_last=False)) if near else None
    return _tiers(title, in_title, every, some, some_title, some_in_title, nearby)


def condition_params(search: Search, near: list[str] | None = None) -> dict:
    """The values ``conditions`` binds at execution on PostgreSQL (SQLite's are in the
    expressions themselves)."""
    return {"words": words_text(search.words), "near": words_text(near or ())}


@cache
def _postgresql_conditions(looked_up: bool, near: bool) -> dict:
    """PostgreSQL's conditions, built once per shape: the search's words and near spellings
    are parameters (``condition_params``), so a request builds no expressions of its own."""
    escaped = folded_and_escaped(bindparam("words", type_=String))

    def query(operator, weight=""):
        return tsquery_text(None, operator, weight, escaped=escaped)

    # a row's stored weights tell a title match cheaply; the index can't (it would recheck
    # every book with the word, and a word common among authors is rare in titles), so
    # lookups use the title's own index
    in_title = _matches("postgresql", query("&", weight="a"))
    some_in_title = _matches("postgresql", query("|", weight="a"))
    title = _matches("postgresql", query("&"), TITLE_WORDS) if looked_up else in_title
    some_title = _matches("postgresql", query("|"), TITLE_WORDS) if looked_up else some_in_title
    every = _matches("postgresql", query("&"))
    some = _matches("postgresql", query("|"))
    near_words = bindparam("near", type_=String)
    nearby = _matches("postgresql", tsquery_text(near_words, "|", prefix_last=False)) if near else None
    return _tiers(title, in_title, every, some, some_title, some_in_title, nearby)


def _tiers(title, in_title, every, some, some_title, some_in_title, nearby) -> dict:
    return {
        "title": title,
        "all": and_(every, not_(in_title)),
        "every": every,
        "some_title": and_(some_title, not_(every)),
        "some": and_(some, not_(some_in_title), not_(every)),
        "near": and_(nearby, not_(some)) if nearby is not None else None,
    }


def matching_rows(session: Session, statement: Select, q: str, wanted: int, after_id: int | None):
    """The unranked search (``sort=id``): the first ``wanted`` rows of ``statement`` after
    ``after_id`` whose book has that ISBN or every word."""
    search = Search.parse(q)
    if not search.isbn and not search.words:
        return []
    condition = conditions(session, search)["isbn" if search.isbn else "every"]
    after_id = -1 if after_id is None else after_id
    filtered = statement.where(condition)
    with planned_for_its_words(session):
        return in_id_order(
            session, filtered, lambda: filtered, after_id, wanted, {}, condition_params(search)
        )


# --- id order at a cost bounded by the page or by the matches ----------------------------

WINDOW = 5000  # books walked in id order before a condition is taken for a rare one


@contextmanager
def planned_for_its_words(session: Session):
    """Plans made for each search's own words, on one worker, for the statements inside.

    A tier's best plan depends on its words (a rare word: the search index; a common one:
    the key in id order). psycopg prepares a statement once it has run five times on a
    connection, and PostgreSQL may then keep one generic plan for every word, many times
    slower on a large catalogue than a plan made for the word (docs/performance.md).
    ``force_custom_plan`` plans every execution for its values. No parallel workers either:
    the planner overestimates prefixes and starts workers to read ten rows, which costs more
    than the read.
    A search page runs in one read transaction (``booknexus.web.reads.snapshot``), where
    ``SET LOCAL`` ends with it; on an autocommit connection the settings are made for the
    connection and reset after."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    untransacted = session.get_bind().get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    scope = "" if untransacted else "LOCAL "
    session.execute(
        text(
            f"SET {scope}max_parallel_workers_per_gather = 0; SET {scope}plan_cache_mode = force_custom_plan"
        )
    )
    try:
        yield
    finally:
        if untransacted:
            session.execute(text("RESET max_parallel_workers_per_gather; RESET plan_cache_mode"))


def _window_end(session: Session, after_id: int) -> int | None:
    """The id of the WINDOW-th book after ``after_id`` (None when fewer remain): an index-only
    walk of the primary key."""
    return session.scalar(
        select(Book.id).where(Book.id > after_id).order_by(Book.id).offset(WINDOW - 1).limit(1)
    )


def in_id_order(
    session: Session,
    walk: Select,
    lookup: Callable[[], Select],
    after_id: int,
    wanted: int,
    window_ends: dict,
    params: dict,
) -> list:
    """The first ``wanted`` rows of ``walk`` with ids above ``after_id``, in id order;
    ``lookup()`` selects the same rows through the search index (built only when needed).

    ``ORDER BY id LIMIT n`` alone leaves the planner to guess how many books match; it guesses
    badly for prefixes and for words outside its statistics, and walks the whole primary key for
    a word that matches ten books. So the walk is bounded: the first WINDOW books after the
    cursor are filtered in id order (a common word fills the page there); when they hold too few
    matches the word is rare, and the rest come from the search index (``ORDER BY id + 0``
    cannot use the key's order, so the planner takes the index's matches and sorts those).
    ``window_ends`` caches the window per cursor across the tiers of one page; ``params`` are
    the conditions' values (``condition_params``)."""
    if after_id not in window_ends:
        window_ends[after_id] = _window_end(session, after_id)
    window_end = window_ends[after_id]
    walked = walk.where(Book.id > after_id)
    if window_end is not None:
        walked = walked.where(Book.id <= window_end)
    rows = session.execute(walked.order_by(Book.id).limit(wanted), params).all()
    if len(rows) == wanted or window_end is None:
        return rows
    rest = lookup().where(Book.id > window_end).order_by(Book.id + 0).limit(wanted - len(rows))
    return rows + session.execute(rest, params).all()


def tiers_of(search: Search) -> tuple[str, ...]:
    if search.isbn:
        return ("isbn",)
    if not search.words:
        return ()
    if len(search.words) == 1:
        return ("title", "all", "near")
    return ("title", "all", "some_title", "some", "near")


def search_page(session: Session, statement: Select, q: str, limit: int, cursor: str | None):
    """One page of ``statement`` (which selects Book.id first) filtered and ranked by ``q``:
    the rows and the cursor of the next page (None on the last)."""
    with planned_for_its_words(session):
        return _search_page(session, statement, Search.parse(q), limit, cursor)


def _search_page(session: Session, statement: Select, search: Search, limit: int, cursor: str | None):
    start_tier, after_id = decode_cursor(cursor) if cursor else (0, -1)
    rows: list = []
    near = None
    window_ends: dict = {}
    walks = None  # every tier's condition, built once a page (building costs more than running)
    for tier in tiers_of(search):
        index = TIERS.index(tier)
        if index < start_tier:
            continue
        if tier == "near":
            near = near_spellings(session, search.words)
            if not near:
                continue
            walks = None
        walks = walks or conditions(session, search, near)
        walk = statement.where(walks[tier])

        def lookup(tier=tier, near=near):
            return statement.where(conditions(session, search, near, looked_up=True)[tier])

        tier_after = after_id if index == start_tier else -1
        found = in_id_order(
            session,
            walk,
            lookup,
            tier_after,
            limit + 1 - len(rows),
            window_ends,
            condition_params(search, near),
        )
        rows += [(tier, row) for row in found]
        if len(rows) > limit:
            break
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1][0], rows[-1][1][0]) if more else None
    return [row for _, row in rows], next_cursor
