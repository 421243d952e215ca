"""Durable SMS records: every message either way, opt-outs, and post-call surveys.

Opt-outs are keyed by the E.164 number (sms.numbers.normalise), so "(415) 555-0100" and
"+1 415 555 0100" are one person; they are kept for good and checked before every send.
A survey is asked at most once per call (a unique call SID), so a retried status callback
or a second web process cannot ask twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import bindparam, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .db import engine_of, without_waiting_for_disk
from .models import SmsMessage, SmsOptOut, SmsSurvey

# Built once: the webhooks' statements (a call's end, a wait text) run on a plain connection.
_OPTED_OUT = select(SmsOptOut.opted_out).where(SmsOptOut.number == bindparam("number"))
_SURVEY_STATE = select(
    select(func.max(SmsSurvey.asked_at)).where(SmsSurvey.number == bindparam("number"))
    .scalar_subquery(), _OPTED_OUT.scalar_subquery())
_ADD_MESSAGE = insert(SmsMessage.__table__).returning(SmsMessage.__table__.c.id)
_ADD_SURVEY = insert(SmsSurvey.__table__)


class SmsStore:
    def __init__(self, session_factory: sessionmaker[Session]):
        self.session_factory = session_factory
        self.engine = engine_of(session_factory)
        # One-statement reads need no BEGIN and ROLLBACK around them: one round trip.
        self.reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    # -- opt-outs --------------------------------------------------------------------------

    def set_opt_out(self, number: str, opted_out: bool, keyword: str, at: dt.datetime) -> bool:
        """Record STOP (True) or START (False) sent at `at`; True if that changed the
        number's state. A word older than the last change is too late (a STOP kept through
        an outage, replayed after the START sent after it): the texter's latest word wins."""
        with self.session_factory.begin() as db:
            row = db.get(SmsOptOut, number, with_for_update=True)
            if row is not None and (row.opted_out == opted_out or row.changed_at > at):
                return False
            if row is None:
                db.add(SmsOptOut(number=number, opted_out=opted_out, keyword=keyword[:20],
                                 changed_at=at))
            else:
                row.opted_out, row.keyword, row.changed_at = opted_out, keyword[:20], at
            return True

    def opted_out(self, number: str) -> bool:
        with self.reader.connect() as db:
            return bool(db.execute(_OPTED_OUT, {"number": number}).scalar())

    # -- messages --------------------------------------------------------------------------

    def add_message(self, *, direction: str, kind: str, to_number: str, from_number: str,
                    body: str, status: str, at: dt.datetime, call_sid: str | None = None,
                    message_sid: str | None = None) -> int:
        with self.engine.begin() as db:
            without_waiting_for_disk(db)  # lost in a crash: the text is not sent, that's all
            return db.execute(_ADD_MESSAGE, {
                "direction": direction, "kind": kind, "to_number": to_number,
                "from_number": from_number, "body": body, "status": status,
                "call_sid": call_sid, "message_sid": message_sid, "created_at": at,
                "updated_at": at}).scalar_one()

    def update_message(self, message_id: int, *, status: str, at: dt.datetime,
                       message_sid: str | None = None, error_code: int | None = None,
                       error: str | None = None, durable: bool = True) -> None:
        """`durable=False` for news a crash may forget safely (a `sent` that reverts to
        `sending` is settled with Twilio before any second send)."""
        with self.session_factory.begin() as db:
            if not durable:
                without_waiting_for_disk(db)
            row = db.get(SmsMessage, message_id)
            if row is None:
                return
            row.status, row.updated_at = status, at
            if message_sid:
                row.message_sid = message_sid
            if error_code is not None or error:
                row.error_code, row.error = error_code, (error or "")[:500] or None

    def claim_sent(self, message_id: int, sids: Sequence[str], at: dt.datetime) -> str | None:
        """Record the first of `sids` (Twilio's, earliest first) that no other of our
        messages holds as this `sending` message's, now sent; None when all are taken.

        One transaction: on PostgreSQL it first locks the number's `sending` messages, so
        two workers settling texts to one number take turns (the second sees the first's
        claim); SQLite writes one transaction at a time, each UPDATE checking and taking."""
        with self.session_factory.begin() as db:
            row = db.get(SmsMessage, message_id)
            if row is None or row.status != "sending":
                return None
            if db.get_bind().dialect.name == "postgresql":
                db.execute(select(SmsMessage.id).where(
                    SmsMessage.to_number == row.to_number, SmsMessage.status == "sending",
                    SmsMessage.direction == "outbound").with_for_update())
            other = SmsMessage.__table__.alias("other")
            for sid in sids:
                taken = exists().where(other.c.message_sid == sid, other.c.id != message_id)
                done = db.execute(update(SmsMessage).where(
                    SmsMessage.id == message_id, SmsMessage.status == "sending", ~taken,
                ).values(status="sent", message_sid=sid, updated_at=at)
                    .execution_options(synchronize_session=False))
                if done.rowcount:
                    return sid
            return None

    def status_by_sid(self, message_sid: str, status: str, at: dt.datetime,
                      error_code: int | None = None) -> bool:
        """A delivery status callback; False for a message we never sent."""
        with self.session_factory.begin() as db:
            row = db.scalars(select(SmsMessage).where(
                SmsMessage.message_sid == message_sid)).first()
            if row is None:
                return False
            row.status, row.updated_at = status, at
            if error_code is not None:
                row.error_code = error_code
            return True

    def pending_outbound(self, statuses: Sequence[str], before: dt.datetime,
                         limit: int = 500) -> list[SmsMessage]:
        """Outbound texts still in one of `statuses` that were queued before `before`."""
        with self.session_factory() as db:
            return list(db.scalars(select(SmsMessage).where(
                SmsMessage.status.in_(statuses), SmsMessage.direction == "outbound",
                SmsMessage.created_at < before).order_by(SmsMessage.id).limit(limit)))

    def message(self, message_id: int) -> SmsMessage | None:
        with self.session_factory() as db:
            return db.get(SmsMessage, message_id)

    def last_outbound(self, number: str, before: dt.datetime | None = None
                      ) -> SmsMessage | None:
        """The latest text we sent (or replied) to a number: what a reply answers.
        `before`: for a reply handled late, the latest sent before it arrived."""
        stmt = select(SmsMessage).where(
            SmsMessage.to_number == number, SmsMessage.direction == "outbound",
            SmsMessage.status != "refused")
        if before is not None:
            stmt = stmt.where(SmsMessage.created_at <= before)
        with self.session_factory() as db:
            return db.scalars(stmt.order_by(SmsMessage.id.desc())).first()

    def inbound_stored(self, message_sid: str) -> bool:
        """A reply with this Twilio MessageSid is stored already (a replay repeats it)."""
        with self.reader.connect() as db:
            return db.execute(select(exists().where(
                SmsMessage.message_sid == message_sid,
                SmsMessage.direction == "inbound"))).scalar() is True

    def messages_for_call(self, call_sid: str) -> list[SmsMessage]:
        with self.session_factory() as db:
            return list(db.scalars(select(SmsMessage).where(SmsMessage.call_sid == call_sid)
                                   .order_by(SmsMessage.id)))

    # -- surveys ---------------------------------------------------------------------------

    def survey_state(self, number: str) -> tuple[dt.datetime | None, bool]:
        """(when the number was last surveyed, whether it opted out), in one round trip: what
        a call's end needs to decide on a survey."""
        with self.reader.connect() as db:
            last, opted_out = db.execute(_SURVEY_STATE, {"number": number}).one()
        return last, bool(opted_out)

    def start_survey(self, number: str, call_sid: str, at: dt.datetime) -> bool:
        """Claim the survey for this call; False if it was already asked."""
        try:
            with self.engine.begin() as db:
                without_waiting_for_disk(db)  # lost in a crash: at worst a second survey
                db.execute(_ADD_SURVEY, {"number": number, "call_sid": call_sid, "asked_at": at})
        except IntegrityError:
            return False
        return True

    def open_survey(self, number: str, since: dt.datetime) -> str | None:
        """The call SID of the number's latest unanswered survey asked after `since`."""
        with self.session_factory() as db:
            return db.scalar(select(SmsSurvey.call_sid).where(
                SmsSurvey.number == number, SmsSurvey.score.is_(None),
                SmsSurvey.asked_at >= since).order_by(SmsSurvey.asked_at.desc()).limit(1))

    def answer_survey(self, number: str, score: int, at: dt.datetime) -> str | None:
        """Store a score against the number's latest unanswered survey; its call SID."""
        with self.session_factory.begin() as db:
            survey = db.scalars(select(SmsSurvey)
                                .where(SmsSurvey.number == number, SmsSurvey.score.is_(None))
                                .order_by(SmsSurvey.asked_at.desc())).first()
            if survey is None:
                return None
            survey.score, survey.answered_at = score, at
            return survey.call_sid
