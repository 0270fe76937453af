"""The web pages' machinery: Jinja2 templates (autoescaped, undefined names an error), the
static files (cache-busted, cached for a year), and the headers every page carries.

Pages are server-rendered and work without JavaScript; each concept's ``pages`` module holds
its own, calling the same domain code as its JSON views. The JSON API is untouched: these
headers go on HTML responses only.
"""

import hashlib
from importlib.resources import files

from pyramid.events import NewResponse, subscriber
from pyramid.static import QueryStringConstantCacheBuster

STATIC = "booknexus:static/"
A_YEAR = 365 * 24 * 3600

# no inline script or style anywhere: the one script and the one stylesheet are files of ours
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def static_token() -> str:
    """A digest of every static file: a new release's files get new URLs, so a year's caching
    never serves a stale stylesheet."""
    digest = hashlib.sha256()
    for path in sorted(files("booknexus").joinpath("static").iterdir(), key=lambda path: path.name):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@subscriber(NewResponse)
def page_headers(event):
    response = event.response
    if response.content_type == "text/html":
        response.headers.update(PAGE_HEADERS)


def includeme(config):
    config.add_settings({"jinja2.undefined": "strict", "jinja2.autoescape": "true"})
    config.include("pyramid_jinja2")
    config.add_jinja2_renderer(".html")
    config.add_jinja2_search_path("booknexus:templates", name=".html")
    config.add_static_view("static", STATIC, cache_max_age=A_YEAR)
    config.add_cache_buster(STATIC, QueryStringConstantCacheBuster(static_token()))
