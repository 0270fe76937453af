"""The client's address, ``request.client_addr``: the connection's peer, or the address a trusted
proxy says it connected from.

Behind nginx the peer (``REMOTE_ADDR``) is the proxy, the same for every reader. When the peer is
one of ``booknexus.trusted_proxies`` (addresses or networks, default ``127.0.0.1 ::1``), the
``X-Forwarded-For`` chain is read from the right, each trusted hop passed over, and the first
entry that is not trusted is the client, as Werkzeug's ProxyFix and Warehouse's ProxyFixer do:
entries to its left were written by the client and prove nothing. An entry that is not an
address is untrusted too, so it is the client, never an error. WebOb's own ``client_addr``
believes the leftmost entry, which anyone can write: this one replaces it.
"""

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "booknexus.trusted_proxies"
DEFAULT = "127.0.0.1 ::1"
REGISTRY_KEY = "booknexus.trusted_proxies"


def trusted_networks(setting: str) -> tuple[Network, ...]:
    """The networks of a setting like ``127.0.0.1 ::1 10.0.0.0/8`` (spaces or commas between);
    a typo stops the app at startup (ValueError) rather than trusting something else."""
    return tuple(ipaddress.ip_network(item) for item in setting.replace(",", " ").split())


def parsed(value: str) -> Address | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:  # a dual-stack listener's IPv4 peer
        return address.ipv4_mapped
    return address


def client_address(peer: str | None, forwarded_for: str | None, trusted: Iterable[Network]) -> str | None:
    """The rightmost address of ``forwarded_for`` + ``peer`` that is not a trusted proxy (the
    leftmost when every one is), normalised (``2001:DB8:0::1`` is ``2001:db8::1``)."""
    trusted = tuple(trusted)

    def is_trusted(address: Address | None) -> bool:
        return address is not None and any(address in network for network in trusted)

    peer_address = parsed(peer) if peer else None
    if not is_trusted(peer_address):
        return str(peer_address) if peer_address else peer
    client = str(peer_address)
    entries = [entry.strip() for entry in (forwarded_for or "").split(",")]
    for entry in reversed([entry for entry in entries if entry]):
        address = parsed(entry)
        if not is_trusted(address):
            return str(address) if address else entry
        client = str(address)
    return client


def client_addr(request) -> str | None:
    return client_address(
        request.environ.get("REMOTE_ADDR"),
        request.environ.get("HTTP_X_FORWARDED_FOR"),
        request.registry[REGISTRY_KEY],
    )


def includeme(config):
    config.registry[REGISTRY_KEY] = trusted_networks(config.get_settings().get(SETTING, DEFAULT))
    config.add_request_method(client_addr, "client_addr", reify=True)
