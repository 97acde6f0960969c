"""Access to the services that ``create_app`` put on ``app.state``."""

from __future__ import annotations

from typing import cast

from fastapi import Request

from backend.services import Services


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)
