"""Failed logins, limited per account and per client address, with the ``limits`` library.

A refused attempt is answered 429 with ``Retry-After`` before any password is hashed, so a
crowd of guesses costs the server no Argon2 work and no memory. Only failures count: a
reader who logs in at the first try never meets the limit, and a successful login clears
their account's failures.

The counts live in memory by default (``booknexus.login_limit.storage = memory://``): they
are a throttle, not a record, and need survive nothing: a restart that forgets them gives
an attacker one more window, which the limit allows anyway. Each process counts its own,
so N workers admit up to N times the limit; a shared store (``redis://host:6379`` with the
``redis`` extra, ``pip install booknexus[redis]``; any URI ``limits`` knows) makes the counts
one across workers and hosts. The address is ``request.client_addr`` (``web.client_address``):
the reader's, not the proxy's.
"""

import math
import time

from limits import parse, storage, strategies

from booknexus.refusals import Throttled

DEFAULTS = {
    "booknexus.login_limit.storage": "memory://",
    "booknexus.login_limit.per_account": "5 per 15 minutes",
    "booknexus.login_limit.per_address": "30 per 15 minutes",
}


class LoginThrottle:
    def __init__(self, settings: dict):
        def setting(name: str) -> str:
            return settings.get(name, DEFAULTS[name])

        # one shared store, several libraries (or test runs): each its own keys; passed only when
        # set, as not every store takes it
        prefix = settings.get("booknexus.login_limit.key_prefix")
        options = {"key_prefix": prefix} if prefix else {}
        # a store that cannot be reached raises limits' own StorageError, whatever the store
        # (the API answers it 503, as an unreachable database)
        options["wrap_exceptions"] = True
        self.limiter = strategies.MovingWindowRateLimiter(
            storage.storage_from_string(setting("booknexus.login_limit.storage"), **options)
        )
        self.per_account = parse(setting("booknexus.login_limit.per_account"))
        self.per_address = parse(setting("booknexus.login_limit.per_address"))

    def _limits(self, account: str, address: str | None):
        yield self.per_account, "account", account.lower()
        if address:
            yield self.per_address, "address", address

    def ensure_allowed(self, account: str, address: str | None) -> None:
        """Refused (429 in the API) if the account or the address has used up its failures."""
        for item, kind, key in self._limits(account, address):
            if not self.limiter.test(item, kind, key):
                reset = self.limiter.get_window_stats(item, kind, key).reset_time
                wait = max(1, math.ceil(reset - time.time()))
                raise Throttled(
                    "too_many_attempts",
                    f"Too many failed attempts for this {kind}; retry in {wait} seconds.",
                    {"limit": kind, "retryAfter": wait},
                    retry_after=wait,
                )

    def failed(self, account: str, address: str | None) -> None:
        for item, kind, key in self._limits(account, address):
            self.limiter.hit(item, kind, key)

    def succeeded(self, account: str) -> None:
        self.limiter.clear(self.per_account, "account", account.lower())


def login_throttle(request) -> LoginThrottle:
    return request.registry["booknexus.login_throttle"]


def includeme(config):
    config.registry["booknexus.login_throttle"] = LoginThrottle(config.get_settings())
