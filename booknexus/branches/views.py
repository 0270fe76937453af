from functools import partial

from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import select

from booknexus.branches.models import Branch, normalise_code
from booknexus.branches.queries import (
    configured_default,
    ensure_code_free,
    ensure_default_keeps_its_code,
    get_branch,
)
from booknexus.branches.serialize import serialize_branch
from booknexus.web.api import api_view, keyset_page, path_id, query_params


def serializer(request):
    return partial(serialize_branch, default_code=configured_default(request.registry.settings))


@api_view(route_name="branches", request_method="GET", permission=NO_PERMISSION_REQUIRED)
def list_branches(request):
    params = query_params(request)
    return keyset_page(
        request.dbsession,
        select(Branch),
        Branch.id,
        params["limit"],
        params.get("after"),
        serializer(request),
    )


@api_view(route_name="branches", request_method="POST")
def create_branch(request):
    body = request.openapi_validated.body
    code = normalise_code(body["code"])
    ensure_code_free(request.dbsession, code)  # Refused: 409 branch_code_taken
    branch = Branch(code=code, name=body["name"], is_pickup_location=body.get("isPickupLocation", True))
    request.dbsession.add(branch)
    request.dbsession.flush()
    request.response.status_int = 201
    return serializer(request)(branch)


@api_view(route_name="branch", request_method="GET", permission=NO_PERMISSION_REQUIRED)
def show_branch(request):
    return serializer(request)(get_branch(request.dbsession, path_id(request)))


@api_view(route_name="branch", request_method="PATCH")
def update_branch(request):
    body = request.openapi_validated.body
    branch = get_branch(request.dbsession, path_id(request))
    if "code" in body:
        code = normalise_code(body["code"])
        ensure_default_keeps_its_code(branch, code, request.registry.settings)
        ensure_code_free(request.dbsession, code, branch.id)
        branch.code = code
    if "name" in body:
        branch.name = body["name"]
    if "isPickupLocation" in body:
        branch.is_pickup_location = body["isPickupLocation"]
    request.dbsession.flush()
    return serializer(request)(branch)
