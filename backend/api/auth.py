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


def _caller(request: Request, services: Services, presented: list[str], write: bool) -> None:
    """Every key presented must be valid (a wrong one beside a right one is refused, not ignored)."""
    settings = services.settings
    given = presented[0] if presented else None
    keys, admins = settings.api_key_list(), settings.admin_key_list()
    address = f"addr:{request.client.host if request.client else 'unknown'}"
    needed = admins if write and admins else keys + admins if keys else []
    if not needed:  # open: keys mean nothing, so the address is the caller (rotating keys gains nothing)
        _limit(request, address)
        return
    if not given:
        _limit(request, address)
        raise Unauthorized("this server needs an API key: Authorization: Bearer <key> or X-API-Key: <key>")
    if not all(_matches(key, needed) for key in presented):
        _limit(request, address)  # guessing keys costs from the guesser's own budget
        if write and all(_matches(key, keys + admins) for key in presented):
            raise Forbidden("this key may read but not write; writing needs an admin key")
        raise Unauthorized("the API key is not valid")
    _limit(request, f"key:{_digest(given)}")


def _presented(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> list[str]:
    return [key for key in (bearer.credentials if bearer else None, header) if key]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def require_key(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> None:
    _caller(request, services, _presented(bearer, header), write=False)


def session_owner(
    services: Annotated[Services, Depends(get_services)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> str:
    """Whose conversations a request sees: its key's digest, or "" where reading needs no key (then
    everyone shares them, whatever key a client sends). ``require_key`` on the router checked the key."""
    presented = _presented(bearer, header)
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
    _caller(request, services, _presented(bearer, header), write=True)
