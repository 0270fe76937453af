"""BookNexus: the back end of a library, as a Pyramid JSON API."""

from importlib.resources import files

from pyramid.config import Configurator
from pyramid_openapi3.exceptions import RequestValidationError, ResponseValidationError

from booknexus.api import json_renderer
from booknexus.errors import request_validation_error


def main(global_config, **settings):
    """The WSGI application."""
    with Configurator(settings=settings) as config:
        config.add_renderer("json", json_renderer())
        # engine, request.dbsession, one transaction per request, retries
        config.include("booknexus.db")
        # bearer tokens, roles, and every access rule
        config.include("booknexus.security")
        # request validation against the OpenAPI document, Swagger UI at /docs/
        config.include("pyramid_openapi3")
        config.pyramid_openapi3_spec(str(files("booknexus") / "openapi.yaml"), route="/openapi.yaml")
        config.pyramid_openapi3_add_explorer(route="/docs/")
        # our error shape replaces pyramid_openapi3's: commit its view first, then override
        config.commit()
        for invalid in (RequestValidationError, ResponseValidationError):
            config.add_exception_view(request_validation_error, context=invalid)
        # the document's request checks compiled once, openapi-core deciding the rest
        config.include("booknexus.validation")
        # one JSON error contract for every failure
        config.include("booknexus.errors")
        # the loan rules (limits, periods), read from the settings once
        config.include("booknexus.rules")
        # the domain: one package per concept, each registering its routes
        config.include("booknexus.health")
        config.include("booknexus.accounts")
        config.include("booknexus.users")
        config.include("booknexus.books")
        config.include("booknexus.checkouts")
        config.include("booknexus.holds")
        config.include("booknexus.log")
        # cleanup and constraint check at startup, retried while the database is away
        config.include("booknexus.startup")
        config.scan(ignore=["booknexus.scripts"])
    return config.make_wsgi_app()
