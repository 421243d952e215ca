"""What the admin pages need, made once in init_admin and found through the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flask import current_app

from .audit import Audit
from .throttle import LoginThrottle
from .users import UserStore

if TYPE_CHECKING:
    from .. import Services


@dataclass
class AdminServices:
    ivr: Services  # the webhook side's services: database, Redis, flows, queues, clock
    users: UserStore
    audit: Audit
    throttle: LoginThrottle
    reveal_roles: frozenset[str]
    page_size: int
    zone: ZoneInfo
    assets: Any = None  # assets.Vendored: which vendored JS/CSS files are present

    def may_reveal(self, role: str | None) -> bool:
        return role in self.reveal_roles


def admin_services() -> AdminServices:
    return current_app.extensions["ivr_admin"]
