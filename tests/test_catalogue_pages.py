"""The public catalogue's pages through the real WSGI app, on both databases: search, a book's
page with its availability in words, the pages' security headers and the cache-busted static
files. (The browser tests, axe-core and keyboard flows come with the desk: issue 28.)"""

from html.parser import HTMLParser

from helpers import make_book


class Page(HTMLParser):
    """What a test reads off a page: its headings, links, live regions and text."""

    def __init__(self, html: str):
        super().__init__()
        self.tags, self.text, self.links, self.h1, self.status = [], [], [], [], []
        self._open: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._open.append((tag, attrs))
        if tag == "a":
            self.links.append(attrs.get("href"))

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if not data.strip():
            return
        self.text.append(data.strip())
        inside = [tag for tag, _ in self._open]
        if "h1" in inside:
            self.h1.append(data.strip())
        if any(attrs.get("role") == "status" for _, attrs in self._open):
            self.status.append(" ".join(data.split()))

    @property
    def words(self) -> str:
        return " ".join(self.text)


def test_search_finds_ranked_books_with_their_availability_in_words(testapp, anonymous):
    east = testapp.post_json("/branches", {"code": "EAST", "name": "East branch"}).json["id"]
    dune = make_book(testapp, title="Dune", author="Frank Herbert", copies=2)
    testapp.post_json("/items", {"bookId": dune["id"], "barcode": "EAST-DUNE", "homeBranchId": east})
    make_book(testapp, title="Dune Messiah", author="Frank Herbert")
    make_book(testapp, title="Emma", author="Jane Austen")
    response = anonymous.get("/", {"q": "dune"})
    assert response.content_type == "text/html"
    page = Page(response.text)
    assert page.h1 == ["Search the catalogue"]
    assert page.status == ["2 results for “dune”"]
    assert "Emma" not in page.words
    assert (
        "2 of 2 available at Main library" in page.words and "1 of 1 available at East branch" in page.words
    )
    assert f"/catalogue/books/{dune['id']}" in " ".join(filter(None, page.links))
    nothing = Page(anonymous.get("/", {"q": "zzzqqq"}).text)
    assert nothing.status[0].startswith("Nothing found for “zzzqqq”")


def test_results_page_by_links(testapp, anonymous):
    for n in range(23):
        make_book(testapp, title=f"Atlas {n}", author="Cartographer")
    first = Page(anonymous.get("/", {"q": "atlas"}).text)
    assert first.status == ["20 results on this page for “atlas”"]
    (next_link,) = [link for link in first.links if link and "after=" in link]
    second = Page(anonymous.get(next_link).text)
    assert second.status == ["3 results for “atlas”"]
    assert not [link for link in second.links if link and "after=" in link]
    forged = Page(anonymous.get("/", {"q": "atlas", "after": "not-a-cursor"}).text)
    assert "That page of results no longer exists" in forged.words


def test_a_books_page_and_one_that_is_not_there(testapp, anonymous):
    book = make_book(testapp, title="Middlemarch", author="George Eliot", isbn="978-0141439549", copies=1)
    page = Page(anonymous.get(f"/catalogue/books/{book['id']}").text)
    assert page.h1 == ["Middlemarch"]
    assert "George Eliot" in page.words and "9780141439549" in page.words
    assert "1 of 1 available at Main library" in page.words
    for missing in ("999999", "abc", "99999999999999999999"):
        gone = anonymous.get(f"/catalogue/books/{missing}", status=404)
        assert gone.content_type == "text/html" and Page(gone.text).h1 == ["No such book"]


def test_pages_escape_what_readers_type_and_carry_strict_headers(testapp, anonymous):
    make_book(testapp, title="<script>alert(1)</script>", author="Mallory")
    response = anonymous.get("/", {"q": "<script>alert(1)</script>\x00"})
    assert "<script>alert(1)</script>" not in response.text  # escaped, in the results and the box
    assert "&lt;script&gt;" in response.text
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in response.text.replace("&lt;script&gt;", "")  # no inline script at all
    # the JSON API does not get the pages' headers
    assert "Content-Security-Policy" not in anonymous.get("/books").headers


def test_the_stylesheet_is_cache_busted_and_cached_for_a_year(anonymous):
    page = Page(anonymous.get("/").text)
    (href,) = [
        attrs["href"] for tag, attrs in page.tags if tag == "link" and attrs.get("rel") == "stylesheet"
    ]
    assert "/static/booknexus.css?x=" in href
    css = anonymous.get(href)
    assert css.content_type == "text/css"
    assert css.cache_control.max_age == 365 * 24 * 3600


def test_every_page_has_one_h1_a_skip_link_and_a_language(testapp, anonymous):
    book = make_book(testapp)
    for url in ("/", "/?q=book", f"/catalogue/books/{book['id']}", "/catalogue/books/0", "/accessibility"):
        response = anonymous.get(url, status="*")
        page = Page(response.text)
        assert len(page.h1) == 1, url
        assert ("html", {"lang": "en"}) in page.tags
        assert page.links[0] == "#main" and ("main", {"id": "main", "tabindex": "-1"}) in page.tags
        labelled = {attrs.get("for") for tag, attrs in page.tags if tag == "label"}
        fields = {attrs.get("id") for tag, attrs in page.tags if tag == "input"}
        assert fields <= labelled, url
        assert any(link.endswith("/accessibility") for link in page.links if link)  # from every page
