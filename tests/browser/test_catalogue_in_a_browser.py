"""The public catalogue in Chromium: searched and read by keyboard alone, with JavaScript off,
at 320 px, and checked by axe-core's WCAG 2.x A/AA rules."""

import pytest

from browser.axe_check import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def stock(site) -> dict:
    east = site.request("POST", "/branches", {"code": "EAST", "name": "East branch"})[1]
    dune = site.request("POST", "/books", {"title": "Dune", "author": "Frank Herbert", "copies": 2})[1]
    site.request("POST", "/items", {"bookId": dune["id"], "barcode": "EAST-1", "homeBranchId": east["id"]})
    site.request("POST", "/books", {"title": "Emma", "author": "Jane Austen", "copies": 1})
    return dune


def test_search_and_open_a_book_by_keyboard_alone(site, page):
    dune = stock(site)
    page.goto(site.url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    page.keyboard.press("Enter")  # to the content...
    page.keyboard.press("Tab")  # ...whose first field is the search box
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("dune")
    page.keyboard.press("Enter")
    page.wait_for_url("**/?q=dune")
    assert page.get_by_role("status").inner_text() == "1 result for “dune”"
    for _ in range(10):  # Tab on to the first result
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Dune":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/catalogue/books/{dune['id']}")
    assert page.locator("h1").inner_text() == "Dune"
    assert "2 of 2 available at Main library" in page.inner_text("main")
    assert "1 of 1 available at East branch" in page.inner_text("main")


def test_the_same_search_with_javascript_off(site, page_without_js):
    stock(site)
    page = page_without_js
    page.goto(site.url + "/")
    page.fill("#q", "austen")
    page.press("#q", "Enter")
    page.wait_for_url("**/?q=austen")
    assert page.locator(".results h2").all_inner_texts() == ["Emma"]


def test_the_catalogue_reflows_at_320_pixels_and_shows_focus(site, page):
    stock(site)
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(site.url + "/?q=dune")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320  # no sideways scrolling
    page.focus("#q")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    button = page.locator("form.search button").bounding_box()
    assert button["height"] >= 24 and button["width"] >= 24


def test_axe_finds_no_wcag_a_or_aa_violation_on_any_catalogue_page(site, page):
    dune = stock(site)
    for path in (
        "/",
        "/?q=dune",
        "/?q=nothing-like-it",
        f"/catalogue/books/{dune['id']}",
        "/catalogue/books/0",
    ):
        page.goto(site.url + path)
        assert axe_violations(page) == [], path
