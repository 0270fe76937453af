"""The security vocabulary: roles, the default permission and the resources' base.

Principals: ``user:<id>`` and ``role:<role>`` for the bearer of a valid token (the policy that
finds them is ``booknexus.web.security``). Every view without an explicit permission needs
``manage``, which only librarians have, so a new route is closed until a rule opens it.
"""

from pyramid.authorization import ALL_PERMISSIONS, Allow, Authenticated

MANAGE = "manage"  # the default permission: librarians only
MEMBER = "member"
LIBRARIAN = "librarian"

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


MAX_ID = 2**31 - 1


def as_id(value) -> int | None:
    """An id as the factories may look it up; anything else (validation answers it) is None."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= MAX_ID else None
