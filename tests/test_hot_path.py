"""The hot path's shortcuts keep their promises: the compiled request checks cover every
operation of the document (the read side's promises: tests/test_reads.py)."""

import dataclasses

from openapi_core.datatypes import Parameters
from openapi_core.unmarshalling.request.datatypes import RequestUnmarshalResult
from pyramid.request import Request
from pyramid_openapi3.wrappers import PyramidOpenAPIRequest


def test_every_operation_of_the_document_is_compiled(app):
    validator = app.registry.settings["pyramid_openapi3"]["request_validator"]
    document = app.registry.settings["pyramid_openapi3"]["spec"].read_value()
    operations = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert set(validator.operations) == operations
    routes = {route.pattern for route in app.routes_mapper.get_routes()}
    assert {path for path, _ in operations} <= routes  # looked up by the route's pattern


def test_the_compiled_checks_hand_back_what_openapi_core_hands_back(app):
    """booknexus.web.validation builds openapi-core's own result types for pyramid_openapi3: if
    a new release changes them (fields, classes), this fails before any request does."""
    assert {field.name for field in dataclasses.fields(RequestUnmarshalResult)} >= {
        "errors",
        "body",
        "parameters",
        "security",
    }
    assert {field.name for field in dataclasses.fields(Parameters)} >= {"query", "path", "header", "cookie"}
    request = Request.blank("/books?limit=3")
    request.matched_route = next(r for r in app.routes_mapper.get_routes() if r.name == "books")
    request.matchdict = {}
    request.registry = app.registry
    validator = app.registry.settings["pyramid_openapi3"]["request_validator"]
    result = validator.unmarshal(PyramidOpenAPIRequest(request))
    assert isinstance(result, RequestUnmarshalResult) and result.errors == []
    assert isinstance(result.parameters, Parameters)
    assert result.parameters.query == {"limit": 3, "sort": "relevance"}  # defaults applied
