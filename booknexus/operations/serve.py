"""booknexus-serve <ini> [--workers N] [--bind HOST:PORT] [--threads T]: every core, one port.

A thin entry point over gunicorn (its documented custom-application API): N pre-forked
workers share one listening socket, each serving T threads (gunicorn's ``gthread``
worker); a worker that dies is replaced; SIGTERM stops accepting and lets the requests in
flight finish (up to ``graceful_timeout``) before the process exits; SIGHUP starts new
workers on the code on disk and stops the old ones. Defaults come from the ini:
``[booknexus:serve]`` (``workers``, ``graceful_timeout``), else ``[server:main]``'s
``listen`` and ``threads`` (waitress's, so ``pserve`` and this command serve the same
port), else one worker per core and 8 threads.

Each worker loads the app itself, after the fork (no ``preload_app``): its SQLAlchemy pool,
its startup thread and its connections are its own, never shared across a fork. The startup
work runs in each worker; the repair's advisory lock lets one worker do it while the others
find its cheap checks clean. Metrics are summed over the workers by prometheus-client's
multiprocess mode, in ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary directory unless set;
emptied at start either way, since counts of an earlier run are not this run's).

The master imports this module and the packages above it, and nothing else of the library:
whatever it imports, every worker inherits, SIGHUP's new ones too, so the code on disk would
not be loaded. The app (``booknexus.config``: Pyramid, openapi-core, SQLAlchemy, every part)
is imported in the workers only, by ``load``.

Nor may it import prometheus-client (or anything that does) before the directory is set: the
client picks its in-memory or file-backed values when first imported, and workers inherit the
choice from this process.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import plaster
from gunicorn.app.base import BaseApplication

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own name for it
DEFAULT_THREADS = 8


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def serving_options(config_uri: str, args: argparse.Namespace) -> dict:
    """gunicorn's settings: the command line over ``[booknexus:serve]`` over ``[server:main]``."""
    ours = plaster.get_settings(config_uri, "booknexus:serve")
    waitress = plaster.get_settings(config_uri, "server:main")
    bind = args.bind or ours.get("bind") or waitress.get("listen") or "127.0.0.1:6543"
    ini = str(Path(config_uri.split("#")[0]).resolve())
    return {
        "bind": bind.split(),  # waitress's listen may name several addresses
        "workers": args.workers or int(ours.get("workers") or default_workers()),
        "worker_class": "gthread",
        "threads": args.threads or int(ours.get("threads") or waitress.get("threads") or DEFAULT_THREADS),
        "graceful_timeout": int(ours.get("graceful_timeout", 30)),
        # a worker silent this long (stuck, not busy: gthread reports between requests) is replaced
        "timeout": int(ours.get("timeout", 60)),
        "preload_app": False,  # each worker builds its own app, engine and pool after the fork
        "proc_name": "booknexus",
        # the ini's logging sections, gunicorn's own lines included (logger gunicorn.error)
        "logconfig": ini,
        "errorlog": None,
        "child_exit": _forget_dead_worker_gauges,
    }


def _forget_dead_worker_gauges(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


class BookNexusServer(BaseApplication):
    def __init__(self, config_uri: str, options: dict):
        self.config_uri = config_uri
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)  # gunicorn >= 25: no gunicornc socket

    def load(self):
        from pyramid.paster import get_app  # in the worker, after the fork

        return get_app(self.config_uri)


def metrics_directory() -> tuple[Path, bool]:
    """The multiprocess directory, emptied; and whether it is ours to remove at exit."""
    given = os.environ.get(MULTIPROCESS_DIR_ENV)
    if not given:
        return Path(tempfile.mkdtemp(prefix="booknexus-metrics-")), True
    directory = Path(given)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return directory, False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config_uri", help="e.g. production.ini")
    parser.add_argument("--workers", type=int, help="processes (default: the ini, else one per core)")
    parser.add_argument("--bind", help="HOST:PORT (default: the ini's listen)")
    parser.add_argument("--threads", type=int, help="threads per worker (default: the ini, else 8)")
    args = parser.parse_args(argv)
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess directory was set")
    directory, ours = metrics_directory()
    os.environ[MULTIPROCESS_DIR_ENV] = str(directory)
    options = serving_options(args.config_uri, args)
    if ours:
        # gunicorn's hook runs in the master alone; a ``finally`` here would also run in
        # every worker as it exits (each is forked inside this call) and pull the directory
        # from under the others (seen on SIGHUP: the new workers failed to boot)
        options["on_exit"] = lambda server: shutil.rmtree(directory, ignore_errors=True)
    BookNexusServer(args.config_uri, options).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
