"""Browser tests (a package, so its conftest is not the suite's own ``conftest``)."""
