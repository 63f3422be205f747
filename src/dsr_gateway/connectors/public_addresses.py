"""Where a webhook would really go: its host's addresses, resolved now, must all be public.

The rule is the domain's (`non_public_address`); this adds the DNS lookup a name needs. A name that
resolved to a public address when it was registered can point inside the network later, so every
delivery asks again. (A resolver that answers differently a moment later, between this lookup and the
connection, is not stopped by this; a forward proxy with its own allow-list is the stronger control.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from dsr_gateway.domain.webhooks import non_public_address

Resolver = Callable[[str, int], Awaitable[list[Any]]]


async def _system_resolver(host: str, port: int) -> list[Any]:
    return await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)


async def non_public_destination(url: str, resolve: Resolver = _system_resolver) -> str | None:
    """Why a request to `url` would reach a non-public address, or None. Resolution failures are left
    to the request itself (it fails with its own error)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    reason = non_public_address(host)
    if reason is not None:
        return reason
    try:
        infos = await resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    except OSError:
        return None
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if not address.is_global:
            return f"{host} resolves to {address}, not a public address"
    return None
