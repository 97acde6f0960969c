"""API keys: when ``BYLINE_API_KEYS`` is set, a request must carry one of them."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from backend.api.deps import get_services
from backend.core.errors import Unauthorized
from backend.services import Services

_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


def require_key(
    services: Annotated[Services, Depends(get_services)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> None:
    keys = services.settings.api_key_list()
    if not keys:
        return
    given = (bearer.credentials if bearer else None) or header
    if not given:
        raise Unauthorized("this server needs an API key: Authorization: Bearer <key> or X-API-Key: <key>")
    # Compared with every key in constant time, so timing tells nothing about which one was close.
    matched = [hmac.compare_digest(given.encode(), key.encode()) for key in keys]
    if not any(matched):
        raise Unauthorized("the API key is not valid")
