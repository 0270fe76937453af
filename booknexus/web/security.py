"""Who is asking: the bearer-token security policy (the roles, permissions and resources'
base it judges with are the accounts' vocabulary: ``booknexus.accounts.roles``).

The bearer is found by ``request.bearer_identity`` (``booknexus.accounts.identity``); each
concept describes its own resources (``accounts.resources``, ``circulation.resources``).
Principals: ``user:<id>`` and ``role:<role>`` for the bearer of a valid token.
- anonymous: health, the catalogue (GET /books, GET /books/{id}), logging in, the API docs;
- member: their own user (read; update, but not the role, and the password only with the
  current one), their own checkouts, holds and events (read), checking out, renewing,
  placing and cancelling holds for themselves;
- librarian: everything (ALL_PERMISSIONS).
Every view without an explicit permission needs ``manage``, which only librarians have, so
a new route is closed until a rule opens it.
"""

import json

from pyramid.authorization import ACLHelper, Authenticated, Everyone

from booknexus.accounts.roles import MANAGE, Root


def json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def known_actor(request) -> int | None:
    """The bearer's user id if this request has already looked its token up (the lookup is
    reified); never a lookup of its own, so the access log adds no query, nor a failure."""
    identity = request.__dict__.get("bearer_identity")
    return identity.user_id if identity is not None else None


class BearerTokenPolicy:
    """Reads ``Authorization: Bearer <token>``; anything else is anonymous."""

    def identity(self, request):
        return request.bearer_identity

    def authenticated_userid(self, request):
        identity = self.identity(request)
        return identity.user_id if identity else None

    def permits(self, request, context, permission):
        principals = [Everyone]
        identity = self.identity(request)
        if identity is not None:
            principals += [Authenticated, f"user:{identity.user_id}", f"role:{identity.role}"]
        return ACLHelper().permits(context, principals, permission)

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


def includeme(config):
    """The security policy and the default permission."""
    config.set_security_policy(BearerTokenPolicy())
    config.set_root_factory(Root)
    config.set_default_permission(MANAGE)
