"""Persistence, the bottom layer: the declarative base and types (``schema``), engines and
sessions (``engines``), time limits (``timeouts``), the pool's metrics (``pool_metrics``).

It knows nothing of the library above it, nor of HTTP.
"""
