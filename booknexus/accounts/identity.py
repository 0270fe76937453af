"""``request.bearer_identity``: the user and live token behind ``Authorization: Bearer``."""

from booknexus.accounts import tokens


class Identity:
    """Who the bearer is: their user's id and role, and the token's id (values, not objects:
    nothing to load, nothing to expire when a request rolls back)."""

    def __init__(self, user_id: int, role: str, token_id: int):
        self.user_id = user_id
        self.role = role
        self.token_id = token_id


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
    return Identity(found.user_id, found.role, found.token_id) if found else None


def includeme(config):
    config.add_request_method(bearer_identity, "bearer_identity", reify=True)
