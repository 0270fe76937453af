"""Serve BookNexus (production.ini) or the baseline app with the same waitress settings.

    python bench/serve.py booknexus|baseline PORT

BENCH_APP_SETTINGS (JSON) overrides settings of production.ini's app, for a bench that
compares two settings of the same code.
"""

import configparser
import json
import logging
import os
import sys
from pathlib import Path

import waitress
from pyramid.config import Configurator
from pyramid.paster import get_app, get_appsettings, setup_logging

import booknexus

INI = str(Path(__file__).resolve().parent.parent / "production.ini")


def baseline_app():
    """A minimal Pyramid view returning a constant JSON body."""

    def constant(request):
        return {"id": 1, "title": "Dune", "author": "Frank Herbert", "copies": 2, "available": 1}

    with Configurator() as config:
        config.add_route("constant", "/constant/{id}")
        config.add_view(constant, route_name="constant", renderer="json")
    return config.make_wsgi_app()


def main():
    which, port = sys.argv[1], int(sys.argv[2])
    setup_logging(INI)
    # "Task queue depth is N" is the load generator doing its job, not news
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if which != "booknexus":
        app = baseline_app()
    elif "BENCH_APP_SETTINGS" in os.environ:
        app = booknexus.main({}, **{**get_appsettings(INI), **json.loads(os.environ["BENCH_APP_SETTINGS"])})
    else:
        app = get_app(INI)
    # production.ini's waitress settings, for both apps
    parser = configparser.ConfigParser()
    parser.read(INI)
    threads = int(parser["server:main"].get("threads", 4))
    waitress.serve(app, listen=f"127.0.0.1:{port}", threads=threads, _quiet=True)


if __name__ == "__main__":
    main()
