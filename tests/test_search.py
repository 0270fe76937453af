"""Catalogue search on both databases: ranking, accents, prefixes, ISBNs, misspellings,
literal punctuation, ranked paging, the unranked order, and a legacy catalogue indexed."""

import uuid

import pytest
import sqlalchemy as sa
from conftest import app_settings, close_app, migrate, started
from helpers import error_code, make_book

import booknexus.config
from booknexus.catalog import search
from booknexus.catalog.search import Search, one_edit_away


@pytest.fixture(autouse=True, params=["walked", "looked up"])
def window(request, monkeypatch):
    """Each search both ways a page is read in id order: the test catalogues are smaller than
    a window, so they are walked; a window of one book sends the rest to the search index."""
    if request.param == "looked up":
        monkeypatch.setattr(search, "WINDOW", 1)
    return request.param


def word() -> str:
    """A word no other book holds (letters only, as titles have)."""
    return "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def titles(testapp, q: str, **params) -> list[str]:
    return [b["title"] for b in testapp.get("/books", {"q": q, "limit": 100, **params}).json["items"]]


def test_ranking_title_then_author_then_some_words_then_id(testapp):
    w, x = word(), word()
    in_author = make_book(testapp, title="Sand", author=f"{w.title()} Smith")
    first = make_book(testapp, title=f"{w.title()}", author="Frank Herbert")
    both_words = make_book(testapp, title=f"{w.title()} {x.title()}", author="Frank Herbert")
    later = make_book(testapp, title=f"Children of {w.title()}", author="Frank Herbert")
    across = make_book(testapp, title=f"{x.title()}", author=f"{w.title()} Jones")
    make_book(testapp, title="Unrelated", author="Nobody")

    assert titles(testapp, w) == [
        first["title"],
        both_words["title"],
        later["title"],
        in_author["title"],
        across["title"],
    ]
    # every word in the title, then every word across title and author, then some words
    assert titles(testapp, f"{x} {w}") == [
        both_words["title"],
        across["title"],
        first["title"],
        later["title"],
        in_author["title"],
    ]
    assert titles(testapp, w.upper()) == titles(testapp, w)  # any case


def test_accents_are_folded_both_ways(testapp):
    w = word()
    book = make_book(testapp, title=f"Cien años {w}", author="Gabriel García Márquez")
    for q in ("garcia marquez", "GARCÍA márquez", f"anos {w}", "Garcia Marquez"):
        assert book["title"] in titles(testapp, q), q
    make_book(testapp, title=f"Ångström Çedilla {w}", author="Anon")
    assert titles(testapp, f"angstrom cedilla {w}")[:1] == [f"Ångström Çedilla {w}"]


def test_last_word_matches_as_a_prefix(testapp):
    w = word()
    book = make_book(testapp, title=f"Foundation {w}", author="Isaac Asimov")
    assert book["title"] in titles(testapp, f"{w} asim")
    assert book["title"] in titles(testapp, w[:4])
    assert book["title"] not in titles(testapp, f"asim {w[:4]}x")  # only the last word is a prefix


@pytest.mark.parametrize(
    "typed", ["978-0-441-17271-9", "9780441172719", "978 0441 172719", " 978-0441172719 "]
)
def test_isbn_in_any_form_finds_its_book(testapp, typed):
    book = make_book(testapp, title="Dune", author="Frank Herbert", isbn="978-0-441-17271-9")
    make_book(testapp, title="Dune Messiah", author="Frank Herbert", isbn="9780441172696")
    found = testapp.get("/books", {"q": typed}).json["items"]
    assert [b["id"] for b in found] == [book["id"]]
    x = make_book(testapp, title="Old", author="A", isbn="0-306-40615-2")
    assert [b["id"] for b in testapp.get("/books", {"q": "030640615 2"}).json["items"]] == [x["id"]]


def test_one_slip_in_a_long_word_is_forgiven_below_exact_matches(testapp):
    stem = word()[:6]
    exact = make_book(testapp, title=f"{stem}q Street", author="Someone")  # literally what is typed
    near = make_book(testapp, title="Reanimator", author=f"Herbert {stem}")
    assert titles(testapp, f"{stem}q") == [exact["title"], near["title"]]  # exact first, then the slip
    typed_short = stem[:3] + stem[4:]  # one letter dropped
    assert near["title"] in titles(testapp, typed_short)
    swapped = stem[:2] + stem[3] + stem[2] + stem[4:]
    assert near["title"] in titles(testapp, swapped)
    far = stem[:2] + "qq" + stem[4:]  # two slips: not near
    assert near["title"] not in titles(testapp, far)
    short = make_book(testapp, title="Dune", author=word())
    assert short["title"] not in titles(testapp, "dnue")  # four letters: too short to guess


def test_near_spellings_are_one_edit():
    assert {"herbert", "asimov"} <= one_edit_away("herbrt") | one_edit_away("asimv")
    assert "herbert" not in one_edit_away("hrbrt")


def test_empty_q_is_no_filter(testapp):
    make_book(testapp)
    everything = testapp.get("/books", {"limit": 100}).json
    assert testapp.get("/books", {"q": "", "limit": 100}).json == everything
    assert testapp.get("/books", {"q": "   ", "limit": 100}).json == everything


def test_punctuation_is_matched_literally_never_as_a_wildcard(testapp):
    w = word()
    pure = make_book(testapp, title=f"100% Pure {w}", author="A")
    snake = make_book(testapp, title=f"snake_case {w}", author="B")
    obrien = make_book(testapp, title=f"O'Brien's Tale {w}", author="C")
    slash = make_book(testapp, title=f"Back\\slash {w}", author="D")
    for q in ("%", "_", "'", '"', "\\", "%%", "*", "(", ":", "&|!", "' --"):
        assert testapp.get("/books", {"q": q}).json["items"] == [], q  # not everything
    assert testapp.get("/books", {"q": "' OR 1=1 --"}).status_int == 200  # words "or", "1": no syntax
    assert titles(testapp, f"100% {w}")[:1] == [pure["title"]]
    assert titles(testapp, f"snake_case {w}")[:1] == [snake["title"]]
    assert titles(testapp, f"o'brien's {w}")[:1] == [obrien["title"]]
    assert titles(testapp, f"back\\slash {w}")[:1] == [slash["title"]]
    assert titles(testapp, f'"{w}" 100%')[:1] == [pure["title"]]


def test_paging_through_a_ranked_result_has_no_duplicates_or_gaps(testapp):
    w, x = word(), word()
    for i in range(4):
        make_book(testapp, title=f"{w} {x} {i}", author="A")
        make_book(testapp, title=f"{w} {i}", author=f"{x} B")
        make_book(testapp, title=f"{x} only {i}", author="C")
        make_book(testapp, title=f"Other {i}", author=f"{w}z")  # a near spelling: the last tier
    whole = testapp.get("/books", {"q": f"{w} {x}", "limit": 100}).json
    assert whole["next"] is None
    seen, cursor = [], None
    while True:
        params = {"q": f"{w} {x}", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = testapp.get("/books", params).json
        seen += [b["id"] for b in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert seen == [b["id"] for b in whole["items"]] and len(seen) == len(set(seen)) == 16


def test_cursor_and_after_are_checked(testapp):
    assert error_code(testapp.get("/books", {"q": "dune", "cursor": "bm9wZQ"}, status=400)) == "invalid_value"
    refused = testapp.get("/books", {"q": "dune", "cursor": "!!"}, status=400)  # not a cursor's alphabet
    assert (
        error_code(refused) == "invalid_request" and refused.json["error"]["details"][0]["field"] == "cursor"
    )
    assert error_code(testapp.get("/books", {"q": "dune", "after": 3}, status=400)) == "invalid_value"
    assert error_code(testapp.get("/books", {"cursor": "MC4x"}, status=400)) == "invalid_value"


def test_sort_by_id_lists_books_with_every_word(testapp):
    w, x = word(), word()
    a = make_book(testapp, title=f"{x} {w}", author="A")
    b = make_book(testapp, title=f"{w}", author=f"{x}")
    make_book(testapp, title=f"{w} alone", author="C")
    page = testapp.get("/books", {"q": f"{w} {x}", "sort": "id", "limit": 1}).json
    assert [i["id"] for i in page["items"]] == [a["id"]] and page["next"] == a["id"]
    rest = testapp.get("/books", {"q": f"{w} {x}", "sort": "id", "after": page["next"]}).json
    assert [i["id"] for i in rest["items"]] == [b["id"]] and rest["next"] is None


def test_changes_to_a_book_are_searchable_at_once(testapp):
    w, x = word(), word()
    book = make_book(testapp, title=w, author="A")
    testapp.patch_json(f"/books/{book['id']}", {"title": x})
    assert titles(testapp, w) == [] and titles(testapp, x) == [x]
    testapp.delete(f"/books/{book['id']}", status=204)
    assert titles(testapp, x) == []


def test_search_parses_words_and_isbns():
    assert Search.parse("García-Márquez's 100%") == Search(words=("garcia", "marquez", "s", "100"))
    assert Search.parse("0-306-40615-2").isbn == "0306406152"
    assert Search.parse("1984").isbn is None and Search.parse("1984").words == ("1984",)
    # folding may make punctuation of a letter (quoted for the database) or nothing (dropped)
    assert Search.parse("\uff9e dune \u2474 \u0149") == Search(words=("dune", "(1)", "\u02bcn"))


def test_adopted_legacy_catalogue_is_indexed_by_the_migration(backend, empty_database):
    from test_migrations import build_legacy

    url = empty_database(backend)
    build_legacy(url, "sequelize")  # books "Book 1".."Book 3" by "Author 1".."Author 3"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE \"Books\" SET title = 'El otoño del patriarca', isbn = '978-84-376-0494-7' WHERE id = 2"
        )
    engine.dispose()
    migrate(url)
    app = started(booknexus.config.main({}, **app_settings(url)))
    try:
        import webtest

        client = webtest.TestApp(app)
        assert [b["id"] for b in client.get("/books", {"q": "otono patri"}).json["items"]] == [2]
        assert [b["id"] for b in client.get("/books", {"q": "9788437604947"}).json["items"]] == [2]
        assert [b["id"] for b in client.get("/books", {"q": "author 3"}).json["items"]][:1] == [3]
    finally:
        close_app(app)
