"""Logins by outcome: a rise in failures or refusals is what an attack looks like."""

from prometheus_client import Counter

LOGINS = Counter(
    "booknexus_logins",
    "Attempts at POST /auth/tokens: succeeded, failed (wrong email or password), throttled",
    ["outcome"],
)
