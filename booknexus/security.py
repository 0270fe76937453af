"""Who may do what: the bearer-token security policy and every access rule, in one place.

Principals: ``user:<id>`` and ``role:<role>`` for the bearer of a valid token.
- anonymous: health, the catalogue (GET /books, GET /books/{id}), logging in, the API docs;
- member: their own user (read, update except role and password), their own checkouts,
  holds and events (read), checking out, renewing, placing and cancelling holds for themselves;
- librarian: everything (ALL_PERMISSIONS).
Every view without an explicit permission needs ``manage``, which only librarians have, so
a new route is closed until a rule opens it.
"""

import json

from pyramid.authorization import (
    ALL_PERMISSIONS,
    ACLHelper,
    Allow,
    Authenticated,
    Everyone,
)
from sqlalchemy import select

from booknexus.accounts import tokens
from booknexus.checkouts.models import Checkout
from booknexus.holds.models import Hold
from booknexus.log.models import CheckoutEvent, HoldEvent
from booknexus.log.streams import STREAMS
from booknexus.users.models import LIBRARIAN, MEMBER  # noqa: F401  (re-exported)

MANAGE = "manage"  # the default permission: librarians only

LIBRARIAN_RULE = (Allow, f"role:{LIBRARIAN}", ALL_PERMISSIONS)


class Root:
    __acl__ = [LIBRARIAN_RULE, (Allow, Authenticated, "authenticated")]

    def __init__(self, request):
        self.request = request


class OwnedBy(Root):
    """A resource that belongs to one user (or to nobody known): the owner gets ``grants``."""

    grants: tuple[str, ...] = ()

    def owner(self) -> int | None:
        raise NotImplementedError

    @property
    def __acl__(self):
        owner = self.owner()
        rules = [LIBRARIAN_RULE]
        if owner is not None:
            rules.append((Allow, f"user:{owner}", self.grants))
        return rules


class UserResource(OwnedBy):
    """/users/{id}: members read and update themselves."""

    grants = ("view", "edit")

    def owner(self):
        return _int(self.request.matchdict.get("id"))


class RecordResource(OwnedBy):
    """A record named by the path's id, owned by its user; once deleted, its log still
    says whose it was."""

    record: type
    event: type

    def owner(self):
        record_id = _int(self.request.matchdict.get("id"))
        if record_id is None:
            return None
        session = self.request.dbsession
        owner = session.scalar(select(self.record.user_id).where(self.record.id == record_id))
        if owner is None:  # deleted: its history still belongs to its user
            key = self.event.__table__.c[STREAMS[self.record].key]
            owner = session.scalar(select(self.event.user_id).where(key == record_id).limit(1))
        return owner


class CheckoutResource(RecordResource):
    """/checkouts/{id}[/renew|/events]: members read and renew their own loans."""

    grants = ("view", "renew")
    record, event = Checkout, CheckoutEvent


class HoldResource(RecordResource):
    """/holds/{id}[/events]: members read and cancel their own holds."""

    grants = ("view", "cancel")
    record, event = Hold, HoldEvent


class LoansOf(OwnedBy):
    """/checkouts, /checkout-events: members list their own (``userId=<self>``) and check
    out for themselves (``{"userId": <self>}``)."""

    grants = ("view", "checkout")

    def owner(self):
        if self.request.method == "POST":
            return _int(_json_body(self.request).get("userId"))
        return _int(self.request.GET.get("userId"))


class HoldsOf(LoansOf):
    """/holds, /hold-events: members list their own holds and place holds for themselves."""

    grants = ("view", "hold")


MAX_ID = 2**31 - 1


def _int(value) -> int | None:
    """An id as the factories may look it up; anything else (validation answers it) is None."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= MAX_ID else None


def _json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class Identity:
    def __init__(self, user, token):
        self.user = user
        self.token = token


class BearerTokenPolicy:
    """Reads ``Authorization: Bearer <token>``; anything else is anonymous."""

    def identity(self, request) -> Identity | None:
        return request.bearer_identity

    def authenticated_userid(self, request):
        identity = self.identity(request)
        return identity.user.id if identity else None

    def permits(self, request, context, permission):
        principals = [Everyone]
        identity = self.identity(request)
        if identity is not None:
            principals += [Authenticated, f"user:{identity.user.id}", f"role:{identity.user.role}"]
        return ACLHelper().permits(context, principals, permission)

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


def bearer_token(request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def bearer_identity(request) -> Identity | None:
    token = bearer_token(request)
    if token is None:
        return None
    found = tokens.find(request.dbsession, token)
    return Identity(user=found[1], token=found[0]) if found else None


def includeme(config):
    """The security policy, the default permission and ``request.bearer_identity``."""
    config.set_security_policy(BearerTokenPolicy())
    config.set_root_factory(Root)
    config.set_default_permission(MANAGE)
    config.add_request_method(bearer_identity, "bearer_identity", reify=True)
