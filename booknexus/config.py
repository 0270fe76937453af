"""The application factory, ``main``: one ``config.include`` per part."""

from importlib.resources import files

from pyramid.config import Configurator
from pyramid_openapi3.exceptions import RequestValidationError, ResponseValidationError

from booknexus.web.api import json_renderer
from booknexus.web.errors import request_validation_error


def main(global_config, **settings):
    """The WSGI application."""
    with Configurator(settings=settings) as config:
        config.add_renderer("json", json_renderer())
        # request ids, the access log and the request metrics, once per request
        config.include("booknexus.web.observe")
        config.include("booknexus.web.client_address")  # request.client_addr, through trusted proxies
        # engine, request.dbsession, one transaction per request, retries
        config.include("booknexus.web.db")
        # the bearer-token security policy and the default permission
        config.include("booknexus.web.security")
        # request validation against the OpenAPI document, Swagger UI at /docs/
        config.include("pyramid_openapi3")
        config.pyramid_openapi3_spec(str(files("booknexus") / "openapi.yaml"), route="/openapi.yaml")
        config.pyramid_openapi3_add_explorer(route="/docs/")
        # our error shape replaces pyramid_openapi3's: commit its view first, then override
        config.commit()
        for invalid in (RequestValidationError, ResponseValidationError):
            config.add_exception_view(request_validation_error, context=invalid)
        # the document's request checks compiled once, openapi-core deciding the rest
        config.include("booknexus.web.validation")
        # one JSON error contract for every failure
        config.include("booknexus.web.errors")
        config.include("booknexus.web.health")
        config.include("booknexus.web.metrics")
        # the web pages: Jinja2 templates, static files, the pages' security headers
        config.include("booknexus.web.pages")
        # the library, one package per boundary: readers and librarians, the catalogue,
        # the branches, circulation (loans, holds, the queue, the rules, the logs), operations (startup)
        config.include("booknexus.accounts")
        config.include("booknexus.catalog")
        config.include("booknexus.branches")
        config.include("booknexus.circulation")
        config.include("booknexus.operations")
        config.scan(ignore=["booknexus.operations.scripts"])
    return config.make_wsgi_app()
