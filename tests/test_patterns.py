"""Input that means what it says: the document's patterns, ISBNs, one paging protocol."""

from importlib.resources import files

import fastjsonschema
import pytest
import regress
import yaml
from helpers import error_code, make_book

from booknexus.catalog.isbn import InvalidIsbn, equivalents, normalise

SAMPLES = ("a", "a@b", "0306406152", "ISBN 978-0-06-088328-7", "abc-XYZ_09")
CODE_POINTS = [*range(0x3100), 0xFEFF, 0xFFEF]


DOCUMENT = object()  # not None: a nullable enum lists null, which must not reload the document


def document_patterns(node=DOCUMENT) -> set[str]:
    if node is DOCUMENT:
        node = yaml.safe_load((files("booknexus") / "openapi.yaml").read_text())
    found = set()
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            found.add(node["pattern"])
        for value in node.values():
            found |= document_patterns(value)
    elif isinstance(node, list):
        for value in node:
            found |= document_patterns(value)
    return found


def candidates():
    for point in CODE_POINTS:
        c = chr(point)
        yield c
        for sample in SAMPLES:
            yield c + sample
            yield sample[:1] + c + sample[1:]
            yield sample + c


@pytest.mark.parametrize("pattern", sorted(document_patterns()))
def test_every_pattern_means_the_same_in_ecma_262_and_in_the_servers_checks(pattern):
    """JSON Schema's regex dialect is ECMA-262; the server's compiled checks (fastjsonschema)
    run Python's re. Where the two differ (Python's \\s also matches \\x1c-\\x1f), a client
    trusting the document is refused. (openapi-core, deciding refusals, runs ECMA-262 itself
    through regress.)"""
    ecma = regress.Regex(pattern)
    python = fastjsonschema.compile({"type": "string", "pattern": pattern})
    differ = [s for s in candidates() if (ecma.find(s) is not None) != accepts(python, s)]
    assert not differ, [ascii(s) for s in differ[:10]]


def accepts(validate, value: str) -> bool:
    try:
        validate(value)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def test_the_schemathesis_counterexample_is_refused_by_the_document_and_the_server(testapp):
    response = testapp.post_json("/users", {"name": "X", "email": "\u00a1\u00ed@\u001e"}, status=400)
    assert error_code(response) == "invalid_request"
    assert regress.Regex(next(p for p in document_patterns() if "@" in p)).find("\u00a1\u00ed@\u001e") is None


@pytest.mark.parametrize(
    "entered, stored",
    [
        ("978-0-06-088328-7", "9780060883287"),
        ("978 0 06 088328 7", "9780060883287"),
        ("ISBN 978-0-06-088328-7", "9780060883287"),
        ("isbn-13: 9780060883287", "9780060883287"),
        ("0-306-40615-2", "0306406152"),
        ("ISBN-10 0-8044-2957-x", "080442957X"),
    ],
)
def test_isbns_in_any_printed_form_are_stored_normalised(testapp, entered, stored):
    book = make_book(testapp, isbn=entered)
    assert book["isbn"] == stored
    assert testapp.get(f"/books/{book['id']}").json["isbn"] == stored


@pytest.mark.parametrize(
    "entered", ["978-0-06-088328-8", "0-306-40615-3", "----------", "1234567890123", "97800608832870"]
)
def test_a_wrong_isbn_is_a_400_naming_the_field(testapp, entered):
    response = testapp.post_json("/books", {"title": "T", "author": "A", "isbn": entered}, status=400)
    error = response.json["error"]
    assert (error["code"], error["details"]) == ("invalid_isbn", {"field": "isbn", "value": entered}) or (
        error["code"] == "invalid_request" and error["details"][0]["field"] == "isbn"
    )
    book = make_book(testapp)
    patched = testapp.patch_json(f"/books/{book['id']}", {"isbn": entered}, status=400).json["error"]
    assert patched["code"] in ("invalid_isbn", "invalid_request")
    assert testapp.get(f"/books/{book['id']}").json["isbn"] is None


def test_an_isbn_10_and_its_isbn_13_are_the_same_book(testapp):
    book = make_book(testapp, isbn="0-306-40615-2")
    taken = testapp.post_json(
        "/books", {"title": "T", "author": "A", "isbn": "978-0-306-40615-7"}, status=409
    )
    assert (error_code(taken), taken.json["error"]["details"]) == ("isbn_taken", {"isbn": "9780306406157"})
    found = testapp.get("/books", {"q": "978 0 306 40615 7"}).json["items"]
    assert [b["id"] for b in found] == [book["id"]]


def test_isbn_rules():
    assert normalise("ISBN 0-306-40615-2") == "0306406152"
    assert equivalents("0306406152") == ("0306406152", "9780306406157")
    assert equivalents("9780306406157") == ("9780306406157", "0306406152")
    assert equivalents("9791090636071") == ("9791090636071",)
    for wrong in ("0306406153", "9780306406158", "978030640615", "abcdefghij"):
        with pytest.raises(InvalidIsbn):
            normalise(wrong)


def test_every_list_pages_with_after_a_ranked_search_too(testapp):
    """One protocol: the next of any page goes back as after; cursor stays as an alias."""
    ids = [make_book(testapp, title=f"Paging protocol {n}", author="Same")["id"] for n in range(5)]
    seen, after = [], None
    while True:
        page = testapp.get(
            "/books", {"q": "paging protocol", "limit": 2, **({"after": after} if after else {})}
        )
        seen += [b["id"] for b in page.json["items"]]
        after = page.json["next"]
        if after is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(ids)
    first = testapp.get("/books", {"q": "paging protocol", "limit": 2}).json
    by_alias = testapp.get("/books", {"q": "paging protocol", "limit": 2, "cursor": first["next"]}).json
    by_after = testapp.get("/books", {"q": "paging protocol", "limit": 2, "after": first["next"]}).json
    assert by_alias == by_after
    both = testapp.get("/books", {"q": "x", "after": first["next"], "cursor": first["next"]}, status=400)
    assert both.json["error"]["details"] == {"field": "cursor"}
    by_id = testapp.get("/books", {"limit": 1, "after": str(ids[0])}).json["items"]
    assert [b["id"] for b in by_id] == [ids[1]] or by_id[0]["id"] > ids[0]
    assert error_code(testapp.get("/books", {"after": first["next"]}, status=400)) == "invalid_value"
