"""Where Byline may send a request of its own: the SSRF rule of followed sources, their pages and webhooks.

A URL someone gives Byline (a feed to follow, a webhook) must not make the server reach what only it can
reach: its loopback, the private network behind it, a cloud's link-local metadata address. Every address a
host name resolves to is checked, and each redirect again; ``follow.allow_networks`` names the networks
that are allowed anyway (tests allow loopback, a newsroom its intranet).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from backend.core.errors import InvalidRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(InvalidRequest):
    """A URL Byline will not fetch or post to: its scheme, or an address it resolves to."""

    title = "URL refused"


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``"127.0.0.0/8, ::1/128"``; raises ``ValueError`` naming the entry that is no network."""
    networks = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a network (write 10.0.0.0/8 or ::1/128)") from exc
    return tuple(networks)


def is_public(address: Address) -> bool:
    """Reachable from the open internet: not private, loopback, link-local, multicast, reserved or unspecified."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def address_allowed(address: Address, allowed: Sequence[Network] = ()) -> bool:
    return is_public(address) or any(address in network for network in allowed if network.version == address.version)


def check_url(url: str, allowed: Sequence[Network] = (), *, resolve: bool = True) -> list[Address]:
    """The addresses ``url``'s host resolves to, once every one of them is shown to be allowed.

    Raises ``Refused`` for a scheme other than http(s), a URL with credentials, a host that does not
    resolve, or any resolved address outside the public internet and ``allowed``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused(f"only http and https URLs are fetched, not {parts.scheme or 'a URL without a scheme'!r}")
    if parts.username or parts.password:
        raise Refused("URLs with a user name or password are refused")
    host = parts.hostname
    if not host:
        raise Refused(f"no host in {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise Refused(f"bad port in {url!r}") from exc
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"the host {host!r} does not resolve") from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    for address in addresses:
        if not address_allowed(address, allowed):
            raise Refused(
                f"{host} resolves to {address}, a private, loopback or link-local address; Byline does not fetch"
                " such URLs unless BYLINE_FOLLOW__ALLOW_NETWORKS names the network"
            )
    return addresses


TRACKING_PREFIXES = ("utm_",)
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid", "_ga", "_gl"}
    | {"_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "wt_mc", "cmpid", "ocid"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """One spelling per URL: lower-case scheme and host, no default port, no fragment, no tracking parameters.

    The path and the other parameters stay exactly as given (order included): servers may tell them apart."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if parts.hostname is not None:
        host = parts.hostname  # lower-cased by urlsplit
        if ":" in host:
            host = f"[{host}]"
        userinfo = netloc.rpartition("@")[0]
        netloc = (f"{userinfo}@" if userinfo else "") + host
        if port is not None and port != _DEFAULT_PORTS.get(scheme):
            netloc += f":{port}"
    query = "&".join(p for p in parts.query.split("&") if p and not _tracking(p.partition("=")[0]))
    return urlunsplit((scheme, netloc, parts.path, query, ""))


def checked_url(url: str, allowed: Sequence[Network] = ()) -> str:
    """``url`` in its canonical spelling, once ``check_url`` has allowed it (``Refused`` otherwise): what a
    source Byline is asked to follow is stored as."""
    canonical = canonical_url(url.strip())
    check_url(canonical, allowed)
    return canonical


def _tracking(name: str) -> bool:
    name = name.lower()
    return name.startswith(TRACKING_PREFIXES) or name in TRACKING_PARAMS
