"""Fuzz every operation from the app's own OpenAPI document (schemathesis, through WSGI).

Each generated request goes to the real app over a database of its own; the response must
not be a 5xx, and must match the document (status code, content type, body schema).
"""

from importlib.resources import files

import pytest
import schemathesis
from conftest import app_settings, close_app, librarian_token, started
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as oa_checks

import booknexus.config

pytestmark = pytest.mark.slow

CHECKS = [
    st_checks.not_a_server_error,
    oa_checks.status_code_conformance,
    oa_checks.content_type_conformance,
    oa_checks.response_schema_conformance,
    oa_checks.response_headers_conformance,
]


# the document the app serves at /openapi.yaml, read from its file (the WSGI loader leaves
# the FileResponse it fetches unclosed)
schema = schemathesis.openapi.from_path(files("booknexus") / "openapi.yaml")


@pytest.fixture
def fuzzed_app(backend, fresh_database):
    url = fresh_database(backend)
    app = started(booknexus.config.main({}, **app_settings(url)))
    app.token = librarian_token(url)  # fuzz as a librarian, who may call everything
    yield app
    close_app(app)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_document(case, fuzzed_app):
    case.call_and_validate(
        checks=CHECKS, app=fuzzed_app, headers={"Authorization": f"Bearer {fuzzed_app.token}"}
    )
