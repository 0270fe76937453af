from pyramid.httpexceptions import HTTPNoContent
from sqlalchemy import select

from booknexus.accounts import queries, tokens
from booknexus.accounts.models import ANONYMOUS_READER, User
from booknexus.accounts.passwords import hash_password, verify_password
from booknexus.accounts.queries import (
    ensure_not_last_librarian,
    ensure_not_the_anonymous_reader,
    get_user,
)
from booknexus.accounts.roles import MANAGE, MEMBER
from booknexus.accounts.serialize import serialize_user
from booknexus.accounts.throttle import login_throttle
from booknexus.circulation.commands import remove_user
from booknexus.circulation.locks import lock_user_and_librarians
from booknexus.web.api import api_view, keyset_page, path_id, query_params
from booknexus.web.errors import ApiError


def ensure_email_free(request, email: str, user_id: int | None = None) -> None:
    queries.ensure_email_free(request.dbsession, email, user_id)  # Refused: 409 email_taken


@api_view(route_name="users", request_method="GET")
def list_users(request):
    params = query_params(request)
    users = select(User) if params.get("anonymous") else select(User).where(User.role != ANONYMOUS_READER)
    if params.get("cardNumber") is not None:  # the desk scans a card: its reader, or nobody
        users = users.where(queries.carries_card(params["cardNumber"]))
    return keyset_page(
        request.dbsession,
        users,
        User.id,
        params["limit"],
        params.get("after"),
        serialize_user,
    )


@api_view(route_name="users", request_method="POST")
def create_user(request):
    body = request.openapi_validated.body
    ensure_email_free(request, body["email"])
    if "cardNumber" in body:
        queries.ensure_card_free(request.dbsession, body["cardNumber"])
    user = User(
        name=body["name"],
        email=body["email"],
        role=body.get("role", MEMBER),
        card_number=body.get("cardNumber"),
    )
    if "password" in body:
        user.password_hash = hash_password(body["password"])
    request.dbsession.add(user)
    request.dbsession.flush()
    request.response.status_int = 201
    return serialize_user(user)


@api_view(route_name="user", request_method="GET", permission="view")
def show_user(request):
    return serialize_user(get_user(request.dbsession, path_id(request)))


@api_view(route_name="user", request_method="PATCH", permission="edit")
def update_user(request):
    body = request.openapi_validated.body
    for field, what in (("role", "a role"), ("cardNumber", "a library card")):
        if field in body and not request.has_permission(MANAGE):
            raise ApiError(403, "forbidden", f"Only a librarian may set {what}.")
    if "role" in body:  # booknexus.circulation.locks: with every librarian, for the last-librarian rule
        user = lock_user_and_librarians(request.dbsession, path_id(request))
    else:
        user = get_user(request.dbsession, path_id(request))
    ensure_not_the_anonymous_reader(user)
    if body.get("role", user.role) != user.role:
        ensure_not_last_librarian(request.dbsession, user)
    if "email" in body:
        ensure_email_free(request, body["email"], user.id)
    if body.get("cardNumber") is not None:
        queries.ensure_card_free(request.dbsession, body["cardNumber"], user.id)
    for field, attribute in (
        ("name", "name"),
        ("email", "email"),
        ("role", "role"),
        ("keepHistory", "keep_history"),
        ("cardNumber", "card_number"),  # null takes the card away (lost, withdrawn)
    ):
        if field in body:
            setattr(user, attribute, body[field])
    if "password" in body:
        change_password(request, user, body["password"], body.get("currentPassword"))
    request.dbsession.flush()
    return serialize_user(user)


def change_password(request, user: User, password: str, current: str | None) -> None:
    """Your own password takes your current one (throttled like a login); a librarian sets
    anyone else's. Every other token of the account is revoked: one taken with the old
    password, a stolen one too, stops working. The token that made the change stays, if it
    is the account's own."""
    own = request.authenticated_userid == user.id
    if own:
        if current is None:
            raise ApiError(
                400,
                "current_password_required",
                "Give your current password (currentPassword) to change it.",
                {"field": "currentPassword"},
            )
        throttle = login_throttle(request)
        throttle.ensure_allowed(user.email, request.client_addr)
        if not verify_password(user.password_hash, current):
            throttle.failed(user.email, request.client_addr)
            raise ApiError(403, "wrong_password", "The current password is not right.")
    elif not request.has_permission(MANAGE):  # the edit permission already means: own, or librarian
        raise ApiError(403, "forbidden", "Only a librarian may set another user's password.")
    user.password_hash = hash_password(password)
    tokens.revoke_all(request.dbsession, user.id, keep=request.identity.token_id if own else None)


@api_view(route_name="user", request_method="DELETE")
def delete_user(request):
    remove_user(request.dbsession, request.authenticated_userid, path_id(request), registry=request.registry)
    return HTTPNoContent()
