"""Who may do what on the admin pages: three roles, each allowed everything the one before
it is, and more. Pure, so the pages, the command line and the tests share one rule."""

from __future__ import annotations

from ..models import ROLES

SUPERVISOR, OPS, ADMIN = ROLES

WHAT_EACH_ROLE_ADDS = {
    SUPERVISOR: "calls, their timelines, the dashboard and live queues",
    OPS: "also flows: publish and roll back",
    ADMIN: "also users",
}


def allows(role: str | None, needed: str) -> bool:
    """True when `role` is `needed` or ranks above it; an unknown role is allowed nothing."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)


def parse_roles(text: str) -> frozenset[str]:
    """A comma-separated list of roles from config; unknown names are an error."""
    roles = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = roles - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(sorted(unknown))}; roles are "
                         f"{', '.join(ROLES)}")
    return roles
