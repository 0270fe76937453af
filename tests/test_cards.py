"""Library cards: a reader's card number, set by librarians, unique whatever its case, and
found by the desk's scan (``GET /users?cardNumber=``)."""

import pytest
import sqlalchemy as sa
from conftest import Client, issue_token
from helpers import error_code, make_user


def test_a_librarian_issues_a_card_and_the_desk_finds_its_reader(testapp):
    ada = make_user(testapp, cardNumber="LIB-000123")
    assert ada["cardNumber"] == "LIB-000123"
    make_user(testapp)  # another reader, without a card
    for scanned in ("LIB-000123", "lib-000123"):  # scanners and keyboards disagree on case
        page = testapp.get("/users", {"cardNumber": scanned}).json
        assert page == {"items": [testapp.get(f"/users/{ada['id']}").json], "next": None}
    assert testapp.get("/users", {"cardNumber": "LIB-999999"}).json == {"items": [], "next": None}


def test_one_card_one_reader_whatever_its_case(testapp):
    ada = make_user(testapp, cardNumber="A-1")
    refused = testapp.post_json(
        "/users", {"name": "Grace", "email": "grace@example.org", "cardNumber": "a-1"}, status=409
    ).json["error"]
    assert (refused["code"], refused["details"]) == (
        "card_number_taken",
        {"cardNumber": "a-1", "userId": ada["id"]},
    )
    grace = make_user(testapp)
    response = testapp.patch_json(f"/users/{grace['id']}", {"cardNumber": "A-1"}, status=409)
    assert error_code(response) == "card_number_taken"
    # the card's own reader may have it reprinted in another case; a card taken away frees it
    assert testapp.patch_json(f"/users/{ada['id']}", {"cardNumber": "a-1"}).json["cardNumber"] == "a-1"
    assert testapp.patch_json(f"/users/{ada['id']}", {"cardNumber": None}).json["cardNumber"] is None
    assert testapp.patch_json(f"/users/{grace['id']}", {"cardNumber": "A-1"}).json["cardNumber"] == "A-1"


@pytest.mark.parametrize("card", ["", "A 1", "A_1", "Ä1", "1" * 33, "A-1\n"])
def test_a_card_number_outside_the_barcode_alphabet_is_invalid(testapp, card):
    response = testapp.post_json(
        "/users", {"name": "Ada", "email": "ada@example.org", "cardNumber": card}, status=400
    )
    assert error_code(response) == "invalid_request"
    assert response.json["error"]["details"][0]["field"] == "cardNumber"


def test_only_librarians_set_cards_and_look_readers_up_by_card(app, dbconnection, dbsession, testapp):
    member, token = issue_token(dbsession, role="member")
    dbsession.commit()
    me = Client(app, dbconnection, token)
    assert (
        error_code(me.patch_json(f"/users/{member.id}", {"cardNumber": "MINE-1"}, status=403)) == "forbidden"
    )
    assert me.patch_json(f"/users/{member.id}", {"name": "Still me"}).json["cardNumber"] is None
    me.get("/users", {"cardNumber": "MINE-1"}, status=403)
    Client(app, dbconnection).get("/users", {"cardNumber": "MINE-1"}, status=401)


def test_the_database_refuses_a_second_card_of_another_case(testapp, dbconnection):
    make_user(testapp, cardNumber="HAND-7")
    with pytest.raises(sa.exc.IntegrityError):
        dbconnection.execute(
            sa.text(
                'INSERT INTO "Users" (name, email, role, "keepHistory", "cardNumber", "createdAt", "updatedAt") '
                "VALUES ('By hand', 'hand@example.org', 'member', false, 'hand-7', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    dbconnection.rollback()
