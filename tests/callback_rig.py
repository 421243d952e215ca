"""A rig for whole callback stories: the app, a movable clock, an RQ worker in this process
that runs what is due by that clock, and the callee's phone answering what Twilio's contract
(Prism) accepted."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import phonenumbers
from rq import SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from ivr_server.callback_jobs import use_context
from ivr_server.simulator import SimulatedCall, answer_outbound, fail_outbound
from ivr_server.simulator.queues import SimulatedQueues
from ivr_server.simulator.transport import InProcessTransport
from tests.prism import SeenRequest, TwilioApiMock

from .conftest import AUTH_TOKEN, OPEN_HOURS, PUBLIC_URL

ACCOUNT = "AC" + "0123456789abcdef" * 2
COMPANY_NUMBER = "+15005550006"


def new_york_number() -> str:
    """A valid Manhattan number of its own: the database outlives tests, and one active
    callback per number and queue would merge two tests' requests."""
    while True:
        number = f"+1212{secrets.randbelow(800) + 200}{secrets.randbelow(10000):04d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number


class MovableClock:
    def __init__(self, start: dt.datetime = OPEN_HOURS):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class CallbackRig:
    def __init__(self, app: Any, clock: MovableClock, api: TwilioApiMock):
        self.app, self.clock, self.api = app, clock, api
        self.services = app.extensions["ivr"]
        self.queues = SimulatedQueues()
        self.seen_calls = 0
        self.number = new_york_number()  # this test's caller

    @property
    def ctx(self) -> Any:
        return self.services.callbacks

    def call(self, from_: str | None = None, to: str = COMPANY_NUMBER) -> SimulatedCall:
        from_ = from_ or self.number
        return SimulatedCall(InProcessTransport(self.app, PUBLIC_URL), AUTH_TOKEN, from_=from_,
                             to=to, queues=self.queues)

    def work(self) -> list[Any]:
        """Run every callback job due by the clock, as `ivr worker` would at that time."""
        queue = self.ctx.callbacks.jobs.queue
        results = []
        use_context(self.ctx)
        try:
            for _ in range(20):
                registry = ScheduledJobRegistry(queue=queue)
                for job_id in registry.get_jobs_to_schedule(int(self.clock.now.timestamp())):
                    job = Job.fetch(job_id, connection=queue.connection)
                    registry.remove(job)
                    queue.enqueue_job(job)
                if queue.count == 0:
                    break
                ids = list(queue.job_ids)
                SimpleWorker([queue], connection=queue.connection).work(burst=True)
                results += [Job.fetch(i, connection=queue.connection).return_value()
                            for i in ids]
        finally:
            use_context(None)
        return results

    def placed_calls(self) -> list[SeenRequest]:
        return [r for r in self.api.requests
                if r.method == "POST" and r.path.endswith("/Calls.json")]

    def next_placed(self) -> SeenRequest:
        calls = self.placed_calls()
        assert len(calls) > self.seen_calls, "no new call was placed"
        self.seen_calls += 1
        return calls[self.seen_calls - 1]

    def answer(self, request: SeenRequest, answered_by: str = "human") -> SimulatedCall:
        assert request.status == 201, self.api.log_tail()
        return answer_outbound(InProcessTransport(self.app, PUBLIC_URL), AUTH_TOKEN,
                               request.form, answered_by=answered_by, queues=self.queues)

    def fail(self, request: SeenRequest, status: str) -> None:
        assert request.status == 201, self.api.log_tail()
        fail_outbound(InProcessTransport(self.app, PUBLIC_URL), AUTH_TOKEN, request.form,
                      status)

    def post(self, path: str, params: dict[str, str]) -> Any:
        """A raw webhook to the app, signed as Twilio signs."""
        from .conftest import sign

        return self.app.test_client().post(
            path, data=params, base_url=PUBLIC_URL,
            headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, params)})

    def request_for(self, call_sid: str) -> Any:
        rows = self.ctx.store.for_call(call_sid)
        assert rows, f"no callback request for {call_sid}"
        return rows[-1]
