from helpers import checkout, error_code, make_book, make_user


def test_create_book_defaults_and_availability(testapp):
    book = make_book(testapp, title="Dune", author="Frank Herbert")
    assert book["copies"] == 1 and book["available"] == 1 and book["isbn"] is None
    assert testapp.get(f"/books/{book['id']}").json == book


def test_available_counts_open_checkouts_only(testapp):
    book = make_book(testapp, copies=3)
    users = [make_user(testapp) for _ in range(2)]
    loans = [checkout(testapp, user, book) for user in users]
    assert testapp.get(f"/books/{book['id']}").json["available"] == 1
    testapp.post(f"/checkouts/{loans[0]['id']}/return")
    assert testapp.get(f"/books/{book['id']}").json["available"] == 2
    listed = testapp.get("/books", {"after": book["id"] - 1, "limit": 1}).json["items"]
    assert listed[0]["available"] == 2


def test_duplicate_isbn_is_409_but_many_books_without_isbn_are_fine(testapp):
    make_book(testapp, isbn="978-0441013593")
    response = testapp.post_json(
        "/books", {"title": "T", "author": "A", "isbn": "978-0441013593"}, status=409
    )
    assert error_code(response) == "isbn_taken"
    make_book(testapp)
    make_book(testapp, isbn=None)


def test_search_matches_title_or_author_ignoring_case(testapp):
    dune = make_book(testapp, title="Dune Messiah", author="Frank Herbert")
    hand = make_book(testapp, title="The Left Hand of Darkness", author="Ursula K. Le Guin")
    make_book(testapp, title="Neuromancer", author="William Gibson")

    def found(q):
        return [b["id"] for b in testapp.get("/books", {"q": q}).json["items"]]

    assert found("dUNE") == [dune["id"]]
    assert found("le guin") == [hand["id"]]
    assert found("%") == []  # wildcards are matched literally
    assert found("zzz-nothing") == []


def test_lowering_copies_below_open_loans_is_409(testapp):
    book = make_book(testapp, copies=2)
    for _ in range(2):
        checkout(testapp, make_user(testapp), book)
    response = testapp.patch_json(f"/books/{book['id']}", {"copies": 1}, status=409)
    assert response.json["error"] == {
        "status": 409,
        "code": "copies_on_loan",
        # since items, fewer copies withdraw items from the shelf: the refusal says how many are there
        "message": "Only 0 of the 2 copies are on the shelf (2 on loan); copies cannot drop to 1.",
        "details": {"copies": 1, "onShelf": 0, "onLoan": 2, "setAside": 0},
        "requestId": response.headers["X-Request-ID"],
    }
    assert testapp.get(f"/books/{book['id']}").json["copies"] == 2
    raised = testapp.patch_json(f"/books/{book['id']}", {"copies": 5, "title": "New"}).json
    assert (raised["copies"], raised["available"], raised["title"]) == (5, 3, "New")


def test_patch_isbn_to_taken_is_409_and_to_null_is_fine(testapp):
    make_book(testapp, isbn="111-1111111")
    book = make_book(testapp, isbn="222-2222222")
    response = testapp.patch_json(f"/books/{book['id']}", {"isbn": "111-1111111"}, status=409)
    assert error_code(response) == "isbn_taken"
    assert testapp.patch_json(f"/books/{book['id']}", {"isbn": None}).json["isbn"] is None


def test_copies_must_be_at_least_one(testapp):
    response = testapp.post_json("/books", {"title": "T", "author": "A", "copies": 0}, status=400)
    assert response.json["error"]["details"][0]["field"] == "copies"


def test_delete_book_removes_its_checkouts(testapp):
    book, other = make_book(testapp), make_book(testapp)
    user = make_user(testapp)
    gone = checkout(testapp, user, book)
    kept = checkout(testapp, user, other)
    testapp.delete(f"/books/{book['id']}", status=204)
    testapp.get(f"/books/{book['id']}", status=404)
    testapp.get(f"/checkouts/{gone['id']}", status=404)
    testapp.get(f"/checkouts/{kept['id']}", status=200)


def test_unknown_book_is_404(testapp):
    assert error_code(testapp.get("/books/424242", status=404)) == "book_not_found"
    assert error_code(testapp.delete("/books/424242", status=404)) == "book_not_found"
    assert error_code(testapp.patch_json("/books/424242", {"copies": 2}, status=404)) == "book_not_found"
