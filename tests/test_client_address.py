"""The client's address behind a trusted proxy: the rightmost ``X-Forwarded-For`` entry that is
not a trusted proxy, for the login limit and the access log; a peer that is not trusted is the
client whatever it sends."""

import logging
from functools import cache

import pytest
import sqlalchemy as sa
import webtest
from conftest import app_settings, close_app

import booknexus.config
from booknexus.accounts.models import User
from booknexus.accounts.passwords import hash_password
from booknexus.web.client_address import DEFAULT, client_address, trusted_networks

LOCAL = trusted_networks(DEFAULT)  # 127.0.0.1 ::1, nginx on the same host
PASSWORD = "correct horse battery"


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # nginx's $proxy_add_x_forwarded_for appends the address it saw: that one is the client
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
        # whatever the client wrote itself is to the left of it, and proves nothing
        ("127.0.0.1", "10.9.9.9, 192.0.2.1, 198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "127.0.0.1, 198.51.100.7", "198.51.100.7"),  # not even a trusted address
        ("::1", "2001:db8::7", "2001:db8::7"),
        ("::1", "2001:DB8:0:0::7", "2001:db8::7"),  # one spelling per address: one count
        ("127.0.0.1", " 198.51.100.7 ,, ", "198.51.100.7"),  # blanks are not entries
        # a peer that is not trusted is the client: its X-Forwarded-For is ignored
        ("203.0.113.9", "198.51.100.7", "203.0.113.9"),
        ("2001:db8::9", "198.51.100.7", "2001:db8::9"),
        ("::ffff:203.0.113.9", "198.51.100.7", "203.0.113.9"),  # IPv4 on a dual-stack socket
        ("::ffff:127.0.0.1", "198.51.100.7", "198.51.100.7"),
        # no header, or only trusted hops: the furthest one
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "::1, 127.0.0.1", "::1"),
        # an entry that is not an address is not trusted: it is the client, never an error
        ("127.0.0.1", "not-an-address", "not-an-address"),
        ("127.0.0.1", "198.51.100.7, unknown", "unknown"),
        ("127.0.0.1", "unknown, 198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "198.51.100.7:4711", "198.51.100.7:4711"),
        ("127.0.0.1", "[2001:db8::7]", "[2001:db8::7]"),
        # a peer WSGI did not name (or could not) trusts nothing
        (None, "198.51.100.7", None),
        ("", "198.51.100.7", ""),
        ("garbage", "198.51.100.7", "garbage"),
    ],
)
def test_the_rightmost_untrusted_address_is_the_client(peer, forwarded_for, client):
    assert client_address(peer, forwarded_for, LOCAL) == client


def test_trusted_proxies_may_be_networks_and_hops_of_a_chain():
    trusted = trusted_networks("10.0.0.0/8, 2001:db8:ffff::/48 127.0.0.1")
    # client -> CDN edge (10.1.2.3) -> internal balancer (10.0.0.5) -> app
    assert client_address("10.0.0.5", "192.0.2.1, 198.51.100.7, 10.1.2.3", trusted) == "198.51.100.7"
    assert client_address("2001:db8:ffff::5", "2001:db8:1::7, 2001:db8:ffff::1", trusted) == "2001:db8:1::7"
    assert client_address("10.0.0.5", "192.0.2.1", trusted_networks("")) == "10.0.0.5"  # nobody trusted
    assert client_address("127.0.0.2", "192.0.2.1", trusted) == "127.0.0.2"  # 127.0.0.1 is one address


@pytest.mark.parametrize("setting", ["127.0.0.1 localhost", "10.0.0.5/8", "::1/129"])
def test_a_trusted_proxies_typo_stops_the_app_at_startup(setting):
    with pytest.raises(ValueError):
        trusted_networks(setting)


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)  # Argon2's 64 MiB once, not per reader and test


@pytest.fixture
def limited(fresh_database):
    """The app with a tight per-address limit, and two readers with passwords."""
    settings = {
        "booknexus.login_limit.per_account": "100 per 15 minutes",
        "booknexus.login_limit.per_address": "3 per 15 minutes",
        "booknexus.trusted_proxies": "127.0.0.1 ::1 10.0.0.0/8",
    }
    application = booknexus.config.main({}, **app_settings(fresh_database("sqlite"), **settings))
    with sa.orm.Session(application.registry["dbengine"]) as session, session.begin():
        for name in ("ann", "bob"):
            session.add(User(name=name, email=f"{name}@example.org", password_hash=password_hash()))
    yield application
    close_app(application)


def log_in(application, peer, forwarded_for=None, password=PASSWORD, email="ann@example.org", status=201):
    environ = {"REMOTE_ADDR": peer}
    if forwarded_for is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded_for
    client = webtest.TestApp(application, extra_environ=environ)
    return client.post_json("/auth/tokens", {"email": email, "password": password}, status=status)


def test_one_reader_behind_the_proxy_cannot_lock_the_others_out(limited):
    for email in ("ann", "bob", "nobody"):
        log_in(limited, "127.0.0.1", "198.51.100.7", "wrong guess", f"{email}@example.org", status=401)
    refused = log_in(limited, "127.0.0.1", "198.51.100.7", status=429)
    assert refused.json["error"]["details"]["limit"] == "address"
    # the same proxy, another reader: logs in
    assert log_in(limited, "127.0.0.1", "198.51.100.8").json["role"] == "member"
    # writing another address to the left of nginx's entry does not reset the count
    log_in(limited, "127.0.0.1", "192.0.2.50, 198.51.100.7", status=429)
    # a chain through two trusted hops names the same reader
    log_in(limited, "10.0.0.5", "198.51.100.7, 10.1.2.3", status=429)


def test_a_client_that_is_not_a_trusted_proxy_cannot_forge_its_address(limited):
    for n in range(3):
        log_in(limited, "203.0.113.9", f"198.51.100.{n}", "wrong guess", status=401)
    refused = log_in(limited, "203.0.113.9", "198.51.100.99", status=429)
    assert refused.json["error"]["details"]["limit"] == "address"
    log_in(limited, "203.0.113.10", "198.51.100.99")  # another peer is another client


def test_an_unparsable_forwarded_entry_is_the_client_not_a_500(limited):
    for _ in range(3):
        log_in(limited, "127.0.0.1", "198.51.100.7, unknown", "wrong guess", status=401)
    log_in(limited, "127.0.0.1", "198.51.100.7, unknown", status=429)
    log_in(limited, "127.0.0.1", "198.51.100.7")


def test_the_access_log_names_the_client_not_the_proxy(limited, caplog):
    with caplog.at_level(logging.INFO, logger="booknexus.access"):
        log_in(limited, "127.0.0.1", "192.0.2.50, 2001:db8::7")
        log_in(limited, "203.0.113.9", "2001:db8::7")
    clients = [(r.route, r.client) for r in caplog.records if r.name == "booknexus.access"]
    assert clients == [("/auth/tokens", "2001:db8::7"), ("/auth/tokens", "203.0.113.9")]
    assert "client=2001:db8::7 " in caplog.records[0].getMessage()
