"""``request.bearer_identity``: the user and live token behind ``Authorization: Bearer``."""

from booknexus.accounts import tokens


class Identity:
    def __init__(self, user, token):
        self.user = user
        self.token = token
        # read now: after a rolled-back request the user is expired and detached
        self.user_id = user.id


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
    config.add_request_method(bearer_identity, "bearer_identity", reify=True)
