"""Console scripts. Each takes an ini file; BOOKNEXUS_DATABASE_URL overrides its URL."""

import contextlib

from pyramid.paster import get_appsettings, setup_logging

import booknexus.models  # noqa: F401  (every mapped class, so relationships and foreign keys resolve)
from booknexus.db.engines import get_engine


@contextlib.contextmanager
def database_of(config_uri: str):
    """The ini's logging set up, and an engine on its database (under the bulk commands'
    time limits), disposed of afterwards."""
    setup_logging(config_uri)
    engine = get_engine(get_appsettings(config_uri), bulk=True)
    try:
        yield engine
    finally:
        engine.dispose()
