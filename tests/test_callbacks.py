"""Whole callback stories: a caller on hold asks for a call back (or hangs up after a long
wait), keeps their place, and is called back once, at a decent hour, through Twilio's REST
contract (Prism); the callee's phone is the simulator, the worker is RQ in this process."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from callbacks.states import State
from ivr_server import create_app
from ivr_server.callback_jobs import run, use_context
from ivr_server.callback_reconcile import reconcile
from ivr_server.simulator import new_sid
from tests.prism import TwilioApiMock

from .callback_rig import ACCOUNT, COMPANY_NUMBER, CallbackRig, MovableClock, new_york_number
from .helpers import call_events

FLOW = """\
flow: cb
start: hold
callbacks:
  start: returning
  voicemail: Hello from Example Co, returning your call. We will try you again later.
nodes:
  hold:
    type: enqueue
    queue: billing
    say: Please hold for billing.
    announce: null
    hold: [{pause: 20}]
    offer_callback: {after: 40, key: "1"}
    abandon_callback: 120
    callback: book
    fallback: sorry
  book:
    type: callback
    say: "Thank you. We will call you back {{ callback.when }}."
    fallback: sorry
  returning:
    type: say
    text: "Hello, this is Example Co returning your call about {{ callback.context.topic }}."
    next: back_in_line
  back_in_line:
    type: enqueue
    queue: billing
    announce: null
    fallback: sorry
  sorry: {type: hangup, say: "Sorry, we cannot call you back. Goodbye."}
"""


@pytest.fixture
def rig(config, flows_dir, twilio_api: TwilioApiMock):  # noqa: ANN001, ANN201
    # The database outlives tests: a queue of this test's own keeps their callbacks apart.
    queue = f"billing-{new_sid('')[:10]}"
    (flows_dir / "cb.yaml").write_text(FLOW.replace("{{ callback.context.topic }}", "billing")
                                       .replace("queue: billing", f"queue: {queue}"))
    clock = MovableClock()
    cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                               numbers={COMPANY_NUMBER: "cb"}, settings=config.flows.settings)
           .with_section("twilio", account_sid=ACCOUNT, api_base_url=twilio_api.base_url)
           .with_section("sms", from_number=COMPANY_NUMBER)
           .with_section("callbacks", from_number=COMPANY_NUMBER, time_zone="America/New_York",
                         business_hours={"mon-fri": "09:00-17:00"}, attempts=3,
                         retry_delays="300,900", on_machine="retry"))
    app = create_app(cfg, clock=clock)
    twilio_api.clear()
    services = app.extensions["ivr"]
    services.queues.set_agents(queue, 1, clock.now.timestamp() - 3600)
    rig = CallbackRig(app, clock, twilio_api)
    rig.queue = queue
    yield rig
    services.redis.close()


def _on_hold(rig: CallbackRig, from_: str | None = None):  # noqa: ANN202
    caller = rig.call(from_)
    caller.dial()
    assert caller.waiting_for == "queue"
    return caller


def _accept_offer(rig: CallbackRig, from_: str | None = None):  # noqa: ANN202
    caller = _on_hold(rig, from_)
    heard = caller.wait(45)
    rig.clock.advance(45)
    assert any("Press 1 to be called back" in h for h in heard), heard
    caller.press("1")
    return caller


def test_a_caller_who_accepts_the_offer_is_told_when_and_texted(rig):
    caller = _accept_offer(rig)

    assert any(h.startswith("Thank you. We will call you back") for h in caller.heard)
    assert caller.ended or caller.waiting_for is None
    row = rig.request_for(caller.call_sid)
    assert row.state == State.SCHEDULED and row.number == rig.number
    assert row.queue == rig.queue and row.reason == "offer"
    texts = rig.services.sms_store.messages_for_call(caller.call_sid)
    assert [t.kind for t in texts] == ["callback_confirmed"]
    assert "we'll call you back" in texts[0].body


def test_the_callback_is_placed_when_their_place_reaches_an_agent_and_runs_the_branch(rig):
    caller = _accept_offer(rig)
    rig.work()

    placed = rig.next_placed()
    fields = placed.fields
    assert fields["To"] == rig.number and fields["From"] == COMPANY_NUMBER
    assert fields["Url"].startswith("https://ivr.example.test/voice/callback/answer?cb=")
    assert fields["MachineDetection"] == "DetectMessageEnd"
    assert placed.form["StatusCallbackEvent"] == ["initiated", "completed"]

    callee = rig.answer(placed)
    assert "Hello, this is Example Co returning your call about billing." in callee.heard
    assert callee.waiting_for == "queue"  # back in line, ahead of anyone who came later
    assert rig.request_for(caller.call_sid).state == State.CONNECTED
    callee.taken_by_agent(90)
    callee.hangup()

    row = rig.request_for(caller.call_sid)
    assert row.state == State.COMPLETED and row.attempts == 1
    kinds = [e.kind for e in call_events(rig.app, caller.call_sid)]
    for step in ("callback_offered", "callback_accepted", "callback_requested",
                 "callback_scheduled", "callback_dialing", "callback_call_placed",
                 "callback_answered", "callback_completed"):
        assert step in kinds, (step, kinds)


def test_a_callback_waits_while_callers_who_came_first_are_still_waiting(rig):
    first = _on_hold(rig, new_york_number())
    rig.clock.advance(5)
    caller = _accept_offer(rig)
    assert first.waiting_for == "queue"
    rig.clock.advance(1)  # the worker looks at the line in batches, a second apart
    assert rig.work() and rig.placed_calls() == []  # someone who came first still waits

    first.taken_by_agent(30)  # the agent takes them: the line moved
    rig.clock.advance(30)
    first.hangup()
    rig.work()
    assert len(rig.placed_calls()) == 1
    assert rig.request_for(caller.call_sid).state == State.DIALING


def test_busy_then_no_answer_are_retried_with_the_queues_delays_then_given_up(rig):
    caller = _accept_offer(rig)
    rig.work()
    rig.fail(rig.next_placed(), "busy")
    row = rig.request_for(caller.call_sid)
    assert row.state == State.SCHEDULED and row.last_outcome == "busy"
    assert (row.due_at - rig.clock.now).total_seconds() == pytest.approx(300, abs=1)

    rig.work()
    assert len(rig.placed_calls()) == 1  # not before its time
    rig.clock.advance(300)
    rig.work()
    rig.fail(rig.next_placed(), "no-answer")
    rig.clock.advance(900)
    rig.work()
    rig.fail(rig.next_placed(), "no-answer")

    row = rig.request_for(caller.call_sid)
    assert row.state == State.FAILED and row.attempts == 3
    rig.clock.advance(3600)
    rig.work()
    assert len(rig.placed_calls()) == 3


def test_an_answering_machine_gets_the_message_and_a_later_retry(rig):
    caller = _accept_offer(rig)
    rig.work()
    machine = rig.answer(rig.next_placed(), answered_by="machine_end_beep")
    assert machine.heard == ["Hello from Example Co, returning your call. We will try you "
                             "again later."]
    assert machine.ended
    row = rig.request_for(caller.call_sid)
    assert row.state == State.SCHEDULED and row.last_outcome == "machine"


def test_retries_never_fall_outside_business_hours(rig):
    rig.clock.advance(3600 * 6.75)  # 16:45 in New York: a quarter of an hour left today
    caller = _accept_offer(rig)
    rig.work()
    rig.fail(rig.next_placed(), "busy")  # retry in 5 minutes: 16:50, still open
    rig.clock.advance(300)
    rig.work()
    rig.fail(rig.next_placed(), "no-answer")  # 15 minutes more would be 17:05: closed
    rig.clock.advance(900)
    rig.work()
    assert len(rig.placed_calls()) == 2
    row = rig.request_for(caller.call_sid)
    local = row.due_at.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 0)
    assert local.date() == dt.date(2026, 11, 25)  # the next business morning


def test_a_request_made_after_hours_waits_for_the_morning_and_the_caller_hears_so(rig):
    rig.clock.advance(3600 * 8)  # 18:00 in New York: closed
    caller = _accept_offer(rig)
    assert any("tomorrow after 9 AM" in h for h in caller.heard), caller.heard
    rig.work()
    assert rig.placed_calls() == []


def test_a_caller_who_hangs_up_after_a_long_wait_is_called_back_automatically(rig):
    caller = _on_hold(rig)
    caller.wait(20)
    rig.clock.advance(130)
    caller.elapsed += 110  # they held on for over two minutes in all
    caller.hangup()
    row = rig.request_for(caller.call_sid)
    assert row.reason == "abandoned" and row.state == State.SCHEDULED


def test_a_short_wait_or_a_withheld_number_gets_no_automatic_callback(rig):
    quick = _on_hold(rig, new_york_number())
    quick.hangup()
    assert rig.ctx.store.for_call(quick.call_sid) == []
    hidden = _on_hold(rig, "anonymous")
    hidden.elapsed += 300
    hidden.hangup()
    assert rig.ctx.store.for_call(hidden.call_sid) == []
    kinds = [e.kind for e in call_events(rig.app, hidden.call_sid)]
    assert "callback_not_booked" in kinds


def test_a_second_request_merges_into_the_first_and_keeps_the_earlier_place(rig):
    first = _accept_offer(rig)
    second = _accept_offer(rig)
    assert rig.request_for(first.call_sid).id == rig.ctx.store.active(rig.number)[0].id
    assert rig.ctx.store.for_call(second.call_sid) == []
    assert len(rig.ctx.store.active(rig.number)) == 1
    kinds = [e.kind for e in call_events(rig.app, second.call_sid)]
    assert "callback_merged" in kinds
    rig.work()
    assert len(rig.placed_calls()) == 1


def test_texting_cancel_cancels_the_pending_callback(rig):
    caller = _accept_offer(rig)
    response = rig.post("/sms/incoming", {"From": rig.number, "To": COMPANY_NUMBER,
                                      "Body": "Cancel", "MessageSid": "SM" + "1" * 32,
                                      "AccountSid": ACCOUNT})
    assert response.status_code == 200
    assert "call back is cancelled" in response.get_data(as_text=True)
    assert rig.request_for(caller.call_sid).state == State.CANCELLED
    rig.work()
    assert rig.placed_calls() == []


def test_calling_in_again_and_reaching_an_agent_cancels_the_callback(rig):
    caller = _accept_offer(rig)
    rig.services.queues.set_agents(rig.queue, 0, rig.clock.now.timestamp())
    again = _on_hold(rig)
    again.taken_by_agent(60)
    rig.clock.advance(1)
    rig.work()  # the worker cancels it, a second later (the webhook only notes it)
    assert rig.request_for(caller.call_sid).state == State.CANCELLED
    assert rig.placed_calls() == []


def test_an_answer_for_a_cancelled_attempt_is_ended_politely(rig):
    caller = _accept_offer(rig)
    rig.work()
    placed = rig.next_placed()
    row = rig.request_for(caller.call_sid)
    rig.ctx.store.move(row.id, State.CANCELLED, rig.clock.now, kind="callback_cancelled",
                       expect=[State.DIALING], data={"why": "test"})
    callee = rig.answer(placed)
    assert callee.heard == ["Sorry, this call is no longer needed. Goodbye."]


def test_a_job_that_runs_twice_places_one_call(rig):
    caller = _accept_offer(rig)
    row = rig.request_for(caller.call_sid)
    use_context(rig.ctx)
    try:
        rig.clock.now = max(rig.clock.now, row.due_at)
        first = run(row.id, row.seq)
        again = run(row.id, row.seq)  # RQ retried it, or a second worker had it too
    finally:
        use_context(None)
    assert (first, again) == ("placed", "stale")
    assert len(rig.placed_calls()) == 1
    assert rig.request_for(caller.call_sid).attempts == 1


def test_ops_list_and_cancel_callbacks_from_the_shell(rig, config):  # noqa: ANN001
    from click.testing import CliRunner

    from ivr_server.cli import main

    from .conftest import ROOT

    caller = _accept_offer(rig)
    row = rig.request_for(caller.call_sid)
    env = {"DATABASE_URL": config.database_url, "REDIS_URL": config.redis.url}
    base = ["--config", str(ROOT / "config.toml"), "callbacks"]
    listed = CliRunner().invoke(main, [*base, "list", "--queue", rig.queue], env=env)
    assert listed.exit_code == 0, listed.output
    assert f"{row.id:>6}  scheduled" in listed.output and rig.number[-4:] in listed.output
    assert rig.number[:-4] not in listed.output  # masked
    cancelled = CliRunner().invoke(main, [*base, "cancel", str(row.id)], env=env)
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    assert rig.request_for(caller.call_sid).state == State.CANCELLED
    again = CliRunner().invoke(main, [*base, "cancel", str(row.id)], env=env)
    assert again.exit_code != 0 and "only requested or scheduled" in again.output


SERVED_JOB = "ivr_server.callback_jobs.served"


def _served_jobs(rig: CallbackRig) -> list[Job]:
    queue = rig.ctx.callbacks.jobs.queue
    registry = ScheduledJobRegistry(queue=queue)
    jobs = [Job.fetch(i, connection=queue.connection) for i in registry.get_job_ids()]
    return [j for j in [*jobs, *queue.jobs] if j.func_name == SERVED_JOB]


def test_callers_back_with_an_agent_have_their_callbacks_cancelled_by_one_batch(rig):
    numbers = [new_york_number() for _ in range(3)]
    booked = [_accept_offer(rig, number) for number in numbers]
    rig.services.queues.set_agents(rig.queue, 0, rig.clock.now.timestamp())  # none dialled
    for number in numbers:  # each calls again, and an agent takes them this time
        _on_hold(rig, number).taken_by_agent(30)

    assert len(_served_jobs(rig)) == 1  # three callers answered: one job for the worker
    assert all(rig.request_for(c.call_sid).state == State.SCHEDULED for c in booked)
    rig.clock.advance(1)
    rig.work()
    assert [rig.request_for(c.call_sid).state for c in booked] == [State.CANCELLED] * 3
    assert rig.placed_calls() == []


def test_notes_whose_batch_job_was_lost_are_handled_by_the_reconciler(rig):
    caller = _accept_offer(rig)
    rig.services.queues.set_agents(rig.queue, 0, rig.clock.now.timestamp())
    served = rig.ctx.callbacks.jobs.served
    served.note(rig.queue, rig.number, "CA" + "9" * 32, rig.clock.now)
    for job in _served_jobs(rig):  # the job went with a worker, or Redis lost it
        ScheduledJobRegistry(queue=rig.ctx.callbacks.jobs.queue).remove(job)
        job.delete()

    assert rig.queue in served.queues_with_notes()
    reconcile(rig.ctx)
    assert rig.request_for(caller.call_sid).state == State.CANCELLED
    assert rig.queue not in served.queues_with_notes()
    served.note(rig.queue, "", "", rig.clock.now)  # the next line movement gets a job again
    assert len(_served_jobs(rig)) == 1
