"""API keys and rate limits.

With ``BYLINE_API_KEYS`` set, a request must carry one of them (or an admin key); with
``BYLINE_ADMIN_KEYS`` set, only those may write. Every request that passes is counted against
its caller's rate limit: the key (hashed), or the client address where no key is configured.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from backend.api.deps import get_services
from backend.api.limits import RateLimiter
from backend.core.errors import Forbidden, TooManyRequests, Unauthorized
from backend.services import Services

_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


def _matches(given: str, keys: list[str]) -> bool:
    # Compared with every key in constant time, so timing tells nothing about which one was close.
    return any([hmac.compare_digest(given.encode(), key.encode()) for key in keys])


def _limit(request: Request, who: str) -> None:
    limiter: RateLimiter | None = request.app.state.limiter
    if limiter is None:
        return
    wait = limiter.take(who)
    if wait > 0:
        raise TooManyRequests(f"too many requests; try again in {wait} s", retry_after_s=wait)


def check_caller(request: Request, services: Services, write: bool) -> None:
    """Every key presented must be valid (a wrong one beside a right one is refused, not ignored).

    Failed attempts are counted against the connecting address (forwarded headers only count where
    ``api.trusted_proxies`` names the proxy), so guessing keys costs from the guesser's own budget."""
    settings = services.settings
    presented = presented_keys(request)
    keys, admins = settings.api_key_list(), settings.admin_key_list()
    address = f"addr:{request.client.host if request.client else 'unknown'}"
    needed = admins if write and admins else keys + admins if keys else []
    if not needed:  # open: keys mean nothing, so the address is the caller (rotating keys gains nothing)
        _limit(request, address)
        return
    if not presented:
        _limit(request, address)
        raise Unauthorized("this server needs an API key: Authorization: Bearer <key> or X-API-Key: <key>")
    if not all(_matches(key, needed) for key in presented):
        _limit(request, address)
        if write and all(_matches(key, keys + admins) for key in presented):
            raise Forbidden("this key may read but not write; writing needs an admin key")
        raise Unauthorized("the API key is not valid")
    _limit(request, f"key:{_digest(presented[0])}")


def presented_keys(request: Request) -> list[str]:
    """Every key the request carries: each X-API-Key header and each bearer token, however many repeat.

    Read from the raw headers, since FastAPI's security helpers see only the first of a repeated header."""
    keys = [value.strip() for value in request.headers.getlist("x-api-key")]
    for value in request.headers.getlist("authorization"):
        scheme, _, credentials = value.strip().partition(" ")
        if scheme.lower() == "bearer":
            keys.append(credentials.strip())
    return [key for key in keys if key]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def require_key(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> None:
    """The key check of every reading route (the security parameters put the schemes in the schema)."""
    check_caller(request, services, write=False)


def session_owner(request: Request, services: Annotated[Services, Depends(get_services)]) -> str:
    """Whose conversations a request sees: its key's digest, or "" where reading needs no key (then
    everyone shares them, whatever key a client sends). ``require_key`` on the router checked the key."""
    presented = presented_keys(request)
    if not presented or not services.settings.api_key_list():
        return ""
    return _digest(presented[0])


Owner = Annotated[str, Depends(session_owner)]


def require_admin(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> None:
    check_caller(request, services, write=True)
