from setuptools import find_packages, setup

# Ranges are what the code was tested with where it builds on a library's behaviour beyond
# its most stable API; requirements.lock (make lock) pins the exact versions installed.
requires = [
    "pyramid>=2.0,<3",
    "waitress>=3.0",
    # web.metrics subclasses QueuePool (its public connect()) and listens to pool events
    "SQLAlchemy>=2.0,<2.2",
    "alembic>=1.13",
    "zope.sqlalchemy>=3.1,<5",
    "transaction>=4.0",
    "pyramid_tm>=2.5",
    "pyramid_retry>=2.1,<3",  # web.observe asks it is_error_retryable
    "psycopg[binary]>=3.1",
    # booknexus.web.validation hands pyramid_openapi3 openapi-core's own result types:
    # ranges it was tested with (tests/test_hot_path.py fails loudly if the types change)
    "pyramid_openapi3>=0.19,<0.23",
    "openapi-core>=0.19,<0.24",
    "argon2-cffi>=23.1",
    "fastjsonschema>=2.19",
    "limits>=5.0",  # failed-login throttle
    "regress>=2024.1",  # openapi-core then reads the document's patterns as ECMA-262, as it must
    # booknexus-serve: gunicorn's custom-application API (BaseApplication) and gthread workers
    "gunicorn>=23.0,<28",
    # GET /metrics; multiprocess mode across booknexus-serve's workers
    "prometheus-client>=0.20,<1",
    # the JSON log lines of production.ini (pythonjsonlogger.json.JsonFormatter, new in 3.1)
    "python-json-logger>=3.1,<5",
    "pyramid_jinja2>=2.10,<3",  # the catalogue's and the desk's pages, server-rendered
]

# booknexus.login_limit.storage = redis://...: the counts shared by every worker and host
redis_requires = ["limits[redis]>=5.0"]

tests_require = [
    *redis_requires,  # tests/test_login_limit_shared.py, on a real Redis
    "pytest>=8.0",
    "pytest-xdist>=3.5",  # make test runs on every core
    "webtest>=3.0",
    "playwright>=1.50",  # the browser tests, driving Debian's Chromium (never a downloaded browser)
    "hypothesis>=6.100",
    "schemathesis>=4.0",
    "ruff>=0.5",
    "import-linter>=2.0",  # make lint: the package layers (.importlinter)
    "pip-tools>=7.4",  # make lock / make lock-check: requirements.lock from this file
]

setup(
    name="booknexus",
    version="0.1.0",
    description="BookNexus: the back end of a library (users, books, checkouts, holds) as a Pyramid JSON API",
    python_requires=">=3.11",
    packages=find_packages(exclude=["tests"]),
    include_package_data=True,
    package_data={"booknexus": ["openapi.yaml", "templates/*.html", "templates/*/*.html", "static/*"]},
    zip_safe=False,
    install_requires=requires,
    extras_require={"redis": redis_requires, "testing": tests_require},
    entry_points={
        "paste.app_factory": ["main = booknexus.config:main"],
        "console_scripts": [
            "booknexus-demo-data = booknexus.operations.scripts.demo_data:main",
            "booknexus-check = booknexus.operations.scripts.check:main",
            "booknexus-cleanup = booknexus.operations.scripts.cleanup:main",
            "booknexus-fix-fk = booknexus.operations.scripts.fix_fk:main",
            "booknexus-create-librarian = booknexus.operations.scripts.create_librarian:main",
            "booknexus-expire-holds = booknexus.operations.scripts.expire_holds:main",
            "booknexus-anonymise = booknexus.operations.scripts.anonymise:main",
            "booknexus-serve = booknexus.operations.serve:main",
        ],
    },
)
