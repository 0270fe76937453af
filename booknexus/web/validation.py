"""Request validation compiled once from the OpenAPI document, with openapi-core as the judge.

pyramid_openapi3 asks openapi-core to unmarshal every request, and openapi-core walks the
document for each one: it resolves every ``$ref`` on the way to a parameter and builds a JSON
Schema validator per value, about half of the CPU of a cheap request. ``CompiledRequests``
reads the document once at startup: per operation, its parameters (how to cast each, its
default) and its body schema with the references inlined, compiled by fastjsonschema.

A request the compiled checks accept gets the result openapi-core would give (the same
parameters, defaults, body and security values). Anything else — an invalid value, a missing
parameter, a header or content type out of the ordinary — goes to openapi-core, so refused
requests get exactly openapi-core's errors and the 400 details stay what they were. The
compiled checks may refuse more than openapi-core (it then decides), never less: fastjsonschema
matches ``$`` at the very end only, our casts take plain digits and ``true``/``false``
only. With ``booknexus.validation_crosscheck`` (the tests) every accepted request is also
unmarshalled by openapi-core and the two results must be equal.
"""

import json
import re

import fastjsonschema
from openapi_core.datatypes import Parameters
from openapi_core.unmarshalling.request.datatypes import RequestUnmarshalResult
from pyramid.settings import asbool

PLAIN_INTEGER = re.compile(r"-?[0-9]+\Z")
BOOLEANS = {"true": True, "false": False}
OPENAPI_ONLY = ("nullable", "writeOnly", "readOnly", "example", "description", "deprecated")
KNOWN_FORMATS = ("int32", "int64")  # a request schema with any other format is not compiled


class Unusual(Exception):
    """Not for the compiled checks: openapi-core decides."""


def inline(schema, document: dict):
    """``schema`` with every local ``$ref`` replaced by what it points at and OpenAPI 3.0's own
    keywords turned into JSON Schema (``nullable`` admits null)."""
    if isinstance(schema, list):
        return [inline(item, document) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return inline(target, document)
    if schema.get("format") not in (None, *KNOWN_FORMATS):
        raise ValueError(f"format {schema['format']!r} is not compiled; teach booknexus.web.validation")
    result = {key: inline(value, document) for key, value in schema.items() if key not in OPENAPI_ONLY}
    result.pop("format", None)
    if schema.get("nullable") and "type" in result:
        result["type"] = [result["type"], "null"]
    return result


def compile_schema(schema: dict):
    # OpenAPI 3.0's schemas are JSON Schema draft 4's (1.0 is not an integer there);
    # defaults are openapi-core's to apply, and it applies them to the top level only
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", **schema}
    return fastjsonschema.compile(draft4, use_default=False)


class Parameter:
    def __init__(self, spec: dict, document: dict):
        self.name = spec["name"]
        self.location = spec["in"]
        self.required = spec.get("required", False)
        self.allow_empty = spec.get("allowEmptyValue", False)
        schema = inline(spec["schema"], document)
        self.type = schema.get("type")
        if self.type not in ("integer", "boolean", "string"):
            raise ValueError(f"parameter {self.name}: type {self.type!r} is not compiled")
        self.has_default = "default" in schema
        self.default = schema.get("default")
        self.check = compile_schema(schema)

    def value_of(self, raw: str):
        if raw == "" and not self.allow_empty:
            raise Unusual
        if self.type == "integer":
            if not PLAIN_INTEGER.match(raw):
                raise Unusual
            value = int(raw)
        elif self.type == "boolean":
            if raw not in BOOLEANS:
                raise Unusual
            value = BOOLEANS[raw]
        else:
            value = raw
        try:
            self.check(value)
        except fastjsonschema.JsonSchemaException:
            raise Unusual from None
        return value


class Operation:
    def __init__(self, path_item: dict, operation: dict, document: dict):
        # an operation's parameters override its path's of the same name and place
        listed = inline(path_item.get("parameters", []) + operation.get("parameters", []), document)
        specs = {(p["name"], p["in"]): p for p in listed}
        if any(location not in ("path", "query") for _, location in specs):
            raise ValueError("only path and query parameters are compiled")
        self.path = [Parameter(spec, document) for (_, location), spec in specs.items() if location == "path"]
        self.query = [
            Parameter(spec, document) for (_, location), spec in specs.items() if location == "query"
        ]
        security = operation.get("security", document.get("security", []))
        self.security = [list(requirement) for requirement in security]
        schemes = document.get("components", {}).get("securitySchemes", {})
        for requirement in self.security:
            for name in requirement:
                if schemes[name] != {**schemes[name], "type": "http", "scheme": "bearer"}:
                    raise ValueError(f"security scheme {name}: only http bearer is compiled")
        body = operation.get("requestBody")
        self.body = None
        if body is not None:
            if set(body["content"]) != {"application/json"}:
                raise ValueError("only application/json bodies are compiled")
            schema = inline(body["content"]["application/json"]["schema"], document)
            self.body = compile_schema(schema)
            self.body_defaults = {
                name: prop["default"]
                for name, prop in schema.get("properties", {}).items()
                if "default" in prop
            }

    def unmarshal(self, request) -> RequestUnmarshalResult:
        """What openapi-core would answer for a request these checks accept; Unusual otherwise."""
        security = self.security_values(request)
        path = {p.name: p.value_of(request.matchdict[p.name]) for p in self.path}
        query = {}
        arguments = request.GET
        for parameter in self.query:
            raws = arguments.getall(parameter.name)
            if len(raws) > 1 or (not raws and parameter.required):
                raise Unusual
            if raws:
                query[parameter.name] = parameter.value_of(raws[0])
            elif parameter.has_default:
                query[parameter.name] = parameter.default
        body = None
        if self.body is not None:
            if request.content_type != "application/json" or not request.body:
                raise Unusual
            try:
                body = self.body(json.loads(request.body))
            except (ValueError, fastjsonschema.JsonSchemaException):
                raise Unusual from None
            if isinstance(body, dict):
                body = {**self.body_defaults, **body}  # the document's defaults are scalars
        return RequestUnmarshalResult(
            errors=[], body=body, parameters=Parameters(query=query, path=path), security=security
        )

    def security_values(self, request) -> dict:
        if not self.security:
            return {}
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            raise Unusual
        return {name: credentials for name in self.security[0]}


class CompiledRequests:
    """pyramid_openapi3's ``request_validator``: compiled checks first, openapi-core otherwise."""

    def __init__(self, document: dict, openapi_core_unmarshaller, crosscheck: bool = False):
        self.judge = openapi_core_unmarshaller
        self.crosscheck = crosscheck
        self.operations = {
            (path, method.upper()): Operation(item, operation, document)
            for path, item in document["paths"].items()
            for method, operation in item.items()
            if method in ("get", "put", "post", "delete", "patch")
        }

    def unmarshal(self, openapi_request) -> RequestUnmarshalResult:
        request = openapi_request.request
        route = request.matched_route
        operation = self.operations.get((route.pattern, request.method)) if route else None
        if operation is None or request.script_name:
            return self.judge.unmarshal(openapi_request)
        try:
            result = operation.unmarshal(request)
        except Unusual:
            return self.judge.unmarshal(openapi_request)
        if self.crosscheck:
            judged = self.judge.unmarshal(openapi_request)
            assert judged == result, f"compiled {result} but openapi-core {judged}"
        return result


def includeme(config):
    """Put the compiled checks in front of pyramid_openapi3's unmarshaller (after its spec is
    registered: call after ``config.commit()``)."""
    settings = config.get_settings()
    api = settings["pyramid_openapi3"]
    document = api["spec"].read_value()
    crosscheck = asbool(settings.get("booknexus.validation_crosscheck", False))
    api["request_validator"] = CompiledRequests(document, api["request_validator"], crosscheck)
