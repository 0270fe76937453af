"""Branches: the default one the upgrade makes, and librarians adding and changing others."""

from datetime import datetime

import pytest
import sqlalchemy as sa
import webtest
from alembic.config import Config
from conftest import (
    ROOT,
    Client,
    app_settings,
    bearer,
    close_app,
    database_url_env,
    downgrade,
    issue_token,
    librarian_token,
    migrate,
    started,
)
from helpers import error_code
from test_migrations import build_legacy, query

import booknexus.config
from alembic import command
from booknexus.branches.queries import default_branch
from booknexus.refusals import Refused

BRANCH_KEYS = ["id", "code", "name", "isPickupLocation", "isDefault", "createdAt", "updatedAt"]


def as_branch(body: dict, **expected) -> dict:
    """``expected`` with the timestamps the server gave ``body`` (checked to be timestamps)."""
    for key in ("createdAt", "updatedAt"):
        assert datetime.fromisoformat(body[key]).utcoffset() is not None
    return {**expected, "createdAt": body["createdAt"], "updatedAt": body["updatedAt"]}


def error_body(response) -> dict:
    error = dict(response.json["error"])
    assert error.pop("requestId")
    return error


def test_the_upgrade_made_the_default_branch(anonymous):
    page = anonymous.get("/branches", status=200).json
    main = page["items"][0]
    assert list(main) == BRANCH_KEYS
    assert page == {
        "items": [
            as_branch(main, id=1, code="MAIN", name="Main library", isPickupLocation=True, isDefault=True)
        ],
        "next": None,
    }
    assert main["createdAt"] == main["updatedAt"]
    assert anonymous.get("/branches/1", status=200).json == main


def test_create_read_list_and_page(testapp, anonymous):
    east = testapp.post_json("/branches", {"code": "east-1", "name": "East"}, status=201).json
    assert east == as_branch(
        east, id=east["id"], code="EAST-1", name="East", isPickupLocation=True, isDefault=False
    )
    store = testapp.post_json(
        "/branches", {"code": "STORE", "name": "Stack store", "isPickupLocation": False}, status=201
    ).json
    assert store == as_branch(
        store, id=store["id"], code="STORE", name="Stack store", isPickupLocation=False, isDefault=False
    )
    assert anonymous.get(f"/branches/{east['id']}", status=200).json == east
    assert anonymous.get(f"/branches/{store['id']}", status=200).json == store

    main = anonymous.get("/branches/1").json
    first = anonymous.get("/branches", {"limit": 2}, status=200).json
    assert first == {"items": [main, east], "next": east["id"]}
    second = anonymous.get("/branches", {"limit": 2, "after": first["next"]}, status=200).json
    assert second == {"items": [store], "next": None}
    assert anonymous.get("/branches", status=200).json == {"items": [main, east, store], "next": None}


def test_patch_changes_only_what_it_names(testapp, anonymous):
    east = testapp.post_json("/branches", {"code": "EAST", "name": "East"}, status=201).json
    path = f"/branches/{east['id']}"

    renamed = testapp.patch_json(path, {"name": "East library"}, status=200).json
    assert renamed == as_branch(
        renamed, id=east["id"], code="EAST", name="East library", isPickupLocation=True, isDefault=False
    )
    assert renamed["createdAt"] == east["createdAt"] and renamed["updatedAt"] > east["updatedAt"]

    closed = testapp.patch_json(path, {"isPickupLocation": False, "code": "east-2"}, status=200).json
    assert closed == as_branch(
        closed, id=east["id"], code="EAST-2", name="East library", isPickupLocation=False, isDefault=False
    )
    assert anonymous.get(path, status=200).json == closed
    # the default branch keeps its code but may change the rest
    main = testapp.patch_json("/branches/1", {"name": "Central", "isPickupLocation": False}, status=200).json
    assert (main["code"], main["name"], main["isPickupLocation"], main["isDefault"]) == (
        "MAIN",
        "Central",
        False,
        True,
    )


def test_a_code_is_unique_whatever_its_case(testapp, anonymous):
    east = testapp.post_json("/branches", {"code": "east", "name": "East"}, status=201).json
    taken = testapp.post_json("/branches", {"code": "East", "name": "Another"}, status=409)
    assert error_body(taken) == {
        "status": 409,
        "code": "branch_code_taken",
        "message": f"Branch {east['id']} has the code EAST.",
        "details": {"code": "EAST", "branchId": east["id"]},
    }
    default = testapp.post_json("/branches", {"code": "main", "name": "Another"}, status=409)
    assert error_body(default)["details"] == {"code": "MAIN", "branchId": 1}

    west = testapp.post_json("/branches", {"code": "WEST", "name": "West"}, status=201).json
    renamed_onto = testapp.patch_json(f"/branches/{west['id']}", {"code": "eAsT"}, status=409)
    assert error_code(renamed_onto) == "branch_code_taken"
    assert error_body(renamed_onto)["details"] == {"code": "EAST", "branchId": east["id"]}
    # a branch keeps its own code, typed in any case
    assert testapp.patch_json(f"/branches/{east['id']}", {"code": "east"}, status=200).json == east
    assert [branch["code"] for branch in anonymous.get("/branches").json["items"]] == ["MAIN", "EAST", "WEST"]


def test_the_default_branch_keeps_its_code(testapp, anonymous):
    refused = testapp.patch_json("/branches/1", {"code": "CENTRAL"}, status=409)
    assert error_body(refused) == {
        "status": 409,
        "code": "default_branch_code",
        "message": (
            "Branch 1 is the default branch (booknexus.branch.default_code = MAIN); "
            "change the setting before its code."
        ),
        "details": {"id": 1, "code": "MAIN"},
    }
    assert anonymous.get("/branches/1").json["code"] == "MAIN"
    assert testapp.patch_json("/branches/1", {"code": "main"}, status=200).json["code"] == "MAIN"


INVALID_CREATES = {
    "no code": {"name": "East"},
    "no name": {"code": "EAST"},
    "empty code": {"code": "", "name": "East"},
    "code of 17": {"code": "A" * 17, "name": "East"},
    "space in code": {"code": "EA ST", "name": "East"},
    "underscore in code": {"code": "EA_ST", "name": "East"},
    "letter beyond ASCII": {"code": "ÉST", "name": "East"},
    "code not a string": {"code": 12, "name": "East"},
    "null code": {"code": None, "name": "East"},
    "empty name": {"code": "EAST", "name": ""},
    "blank name": {"code": "EAST", "name": " \t\u00a0"},
    "name of 256": {"code": "EAST", "name": "x" * 256},
    "NUL in name": {"code": "EAST", "name": "East\u0000"},
    "pickup not a boolean": {"code": "EAST", "name": "East", "isPickupLocation": "yes"},
    "unknown field": {"code": "EAST", "name": "East", "isDefault": True},
}


@pytest.mark.parametrize("body", INVALID_CREATES.values(), ids=INVALID_CREATES.keys())
def test_invalid_branches_are_refused(testapp, anonymous, body):
    before = anonymous.get("/branches").json
    assert error_code(testapp.post_json("/branches", body, status=400)) == "invalid_request"
    assert anonymous.get("/branches").json == before


INVALID_UPDATES = {
    "nothing": {},
    "empty code": {"code": ""},
    "code of 17": {"code": "A" * 17},
    "slash in code": {"code": "EAST/1"},
    "null code": {"code": None},
    "blank name": {"name": "   "},
    "null name": {"name": None},
    "pickup null": {"isPickupLocation": None},
    "id": {"id": 2},
}


@pytest.mark.parametrize("body", INVALID_UPDATES.values(), ids=INVALID_UPDATES.keys())
def test_invalid_changes_are_refused(testapp, anonymous, body):
    before = anonymous.get("/branches/1").json
    assert error_code(testapp.patch_json("/branches/1", body, status=400)) == "invalid_request"
    assert anonymous.get("/branches/1").json == before


def test_an_unknown_branch_is_404(testapp, anonymous):
    expected = {
        "status": 404,
        "code": "branch_not_found",
        "message": "No branch with id 999.",
        "details": {"id": 999},
    }
    assert error_body(anonymous.get("/branches/999", status=404)) == expected
    assert error_body(testapp.patch_json("/branches/999", {"name": "Nowhere"}, status=404)) == expected
    assert error_code(anonymous.get("/branches/0", status=400)) == "invalid_request"


def test_members_and_anonymous_read_but_do_not_write(app, dbconnection, dbsession, anonymous):
    _, token = issue_token(dbsession, role="member")
    member = Client(app, dbconnection, token)
    before = anonymous.get("/branches").json
    assert member.get("/branches", status=200).json == before
    assert member.get("/branches/1", status=200).json == before["items"][0]

    body = {"code": "EAST", "name": "East"}
    assert error_code(member.post_json("/branches", body, status=403)) == "forbidden"
    assert error_code(member.patch_json("/branches/1", {"name": "Mine"}, status=403)) == "forbidden"
    assert error_code(anonymous.post_json("/branches", body, status=401)) == "authentication_required"
    assert error_code(anonymous.patch_json("/branches/1", {"name": "Mine"}, status=401)) == (
        "authentication_required"
    )
    assert anonymous.get("/branches").json == before


def test_the_database_keeps_codes_upper_case(dbconnection):
    """A row written by hand cannot hold a code the API would never store (its unique
    constraint would then miss a pair that differs only in case)."""
    columns = '(code, name, "isPickupLocation", "createdAt", "updatedAt")'
    # a code too long is PostgreSQL's varchar(16) refusing it (a DataError) before the check
    for code in ("east", "EA ST", "", "A" * 17):
        with pytest.raises((sa.exc.IntegrityError, sa.exc.DataError)), dbconnection.begin_nested():
            dbconnection.execute(
                sa.text(f'INSERT INTO "Branches" {columns} VALUES (:code, :name, true, :now, :now)'),
                {"code": code, "name": "By hand", "now": datetime.fromisoformat("2026-12-01T10:00:00+00:00")},
            )
    assert dbconnection.exec_driver_sql('SELECT code FROM "Branches"').scalars().all() == ["MAIN"]


def test_default_branch_is_the_settings_code(dbsession):
    assert default_branch(dbsession, {}).id == 1
    assert default_branch(dbsession, {"booknexus.branch.default_code": " main "}).id == 1
    with pytest.raises(Refused) as refused:
        default_branch(dbsession, {"booknexus.branch.default_code": "EAST"})
    assert (refused.value.code, refused.value.details) == ("default_branch_missing", {"code": "EAST"})


def test_is_default_follows_the_setting(backend, fresh_database):
    url = fresh_database(backend)
    token = librarian_token(url)
    app = started(booknexus.config.main({}, **app_settings(url, **{"booknexus.branch.default_code": "east"})))
    try:
        client = webtest.TestApp(app, extra_environ=bearer(token))
        east = client.post_json("/branches", {"code": "EAST", "name": "East"}, status=201).json
        assert east["isDefault"] is True
        assert [(b["code"], b["isDefault"]) for b in client.get("/branches").json["items"]] == [
            ("MAIN", False),
            ("EAST", True),
        ]
        # MAIN is no longer the default: its code may change; EAST's may not
        assert client.patch_json("/branches/1", {"code": "OLD-MAIN"}, status=200).json["code"] == "OLD-MAIN"
        refused = client.patch_json(f"/branches/{east['id']}", {"code": "WEST"}, status=409)
        assert error_code(refused) == "default_branch_code"
    finally:
        close_app(app)


def test_a_default_code_that_is_not_a_code_stops_the_app(tmp_path):
    settings = app_settings(
        f"sqlite:///{tmp_path / 'never.sqlite'}", **{"booknexus.branch.default_code": "a b"}
    )
    with pytest.raises(ValueError, match="booknexus.branch.default_code"):
        booknexus.config.main({}, **settings)


def migration_ini(tmp_path, **settings) -> Config:
    """An ini with nothing but the app's settings given (and where the revisions are)."""
    lines = "".join(f"booknexus.branch.{key} = {value}\n" for key, value in settings.items())
    ini = tmp_path / "branches.ini"
    ini.write_text(
        "[app:main]\nuse = egg:booknexus\nsqlalchemy.url = sqlite://\n"
        f"{lines}\n[alembic]\nscript_location = {ROOT / 'alembic'}\n"
    )
    return Config(str(ini))


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"default_code": " east-1 ", "default_name": "East Branch"}, ("EAST-1", "East Branch")),
        ({}, ("MAIN", "Main library")),
    ],
    ids=["configured", "no settings"],
)
def test_an_empty_database_upgrades_with_the_configured_default(
    backend, empty_database, tmp_path, settings, expected
):
    url = empty_database(backend)
    with database_url_env(url):
        command.upgrade(migration_ini(tmp_path, **settings), "head")
    assert query(url, 'SELECT id, code, name, "isPickupLocation" FROM "Branches"') == [(1, *expected, True)]


@pytest.mark.slow
@pytest.mark.parametrize("settings", [{"default_code": "not a code"}, {"default_name": " "}])
def test_a_bad_default_setting_stops_the_upgrade_before_the_table(
    backend, empty_database, tmp_path, settings
):
    url = empty_database(backend)
    migrate(url, "0015")
    with database_url_env(url), pytest.raises(ValueError, match="booknexus.branch.default_"):
        command.upgrade(migration_ini(tmp_path, **settings), "head")
    engine = sa.create_engine(url)
    assert "Branches" not in sa.inspect(engine).get_table_names()
    engine.dispose()


@pytest.mark.slow
def test_a_legacy_database_upgraded_gets_the_default_branch(backend, empty_database):
    url = empty_database(backend)
    build_legacy(url, "sequelize")
    migrate(url)
    assert query(url, 'SELECT id, code, name, "isPickupLocation" FROM "Branches"') == [
        (1, "MAIN", "Main library", True)
    ]
    downgrade(url, "0015")
    engine = sa.create_engine(url)
    assert "Branches" not in sa.inspect(engine).get_table_names()
    engine.dispose()
    members = query(url, "SELECT count(*) FROM \"Users\" WHERE role = 'member'")
    assert members == [(3,)]  # the library's data stays
    migrate(url)
    assert query(url, 'SELECT code, name FROM "Branches"') == [("MAIN", "Main library")]
