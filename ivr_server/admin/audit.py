"""The audit trail: who signed in, revealed a number, exported calls or changed a flow."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..models import AuditEvent

log = logging.getLogger("ivr_server.audit")


class Audit:
    def __init__(self, session_factory: sessionmaker[Session], clock: Callable[[], datetime]):
        self._sessions = session_factory
        self._clock = clock

    def record(self, username: str | None, action: str, target: str | None = None,
               **data: Any) -> None:
        """Write one entry; if the database refuses, the entry goes to the log instead."""
        try:
            with self._sessions.begin() as db:
                db.add(AuditEvent(at=self._clock(), username=username, action=action,
                                  target=(target or "")[:200] or None, data=data))
        except SQLAlchemyError as exc:
            log.error("audit entry not stored (%s): %s %s %s %s", exc, username, action,
                      target, data)

    def recent(self, *, action: str | None = None, target: str | None = None,
               limit: int = 50) -> list[AuditEvent]:
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if action:
            query = query.where(AuditEvent.action == action)
        if target:
            query = query.where(AuditEvent.target == target)
        with self._sessions() as db:
            rows = list(db.scalars(query))
            db.expunge_all()
            return rows
