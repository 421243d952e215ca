"""A flow file overwritten with a broken one while many calls run: the calls in progress go
on with their version, new calls get the last good one, the refusal is logged as
`file:line: message`, and the fixed file goes live. One call and one broken edit are in
test_flow_versions.py; this is the same under load, mid-call, with the file churning."""

from __future__ import annotations

import itertools
import logging
import re
import threading
from pathlib import Path

from ivr_server.simulator.caller import SimulatedCall

OLD_PROMPT = "For billing, press 1."
NEW_PROMPT = "For bills and payments, press 1."
ACCOUNT = "Please key in your eight digit account number."
GOOD_ACCOUNT_NUMBER = "12345674"  # passes the Luhn check
REFUSED = re.compile(r"company\.yaml:\d+: ")


def variants(flows_dir: Path) -> dict[str, str]:
    good = (flows_dir / "company.yaml").read_text()
    assert OLD_PROMPT in good and f"prompt: {ACCOUNT}" in good and "goto: account_number" in good
    return {
        "old": good,
        "new": good.replace(OLD_PROMPT, NEW_PROMPT),
        "bad yaml": good.replace(f"prompt: {ACCOUNT}", f'prompt: "{ACCOUNT}'),  # no end quote
        "fails the check": good.replace("goto: account_number", "goto: acount_number"),
        "empty": "",
        "cut short": good[: len(good) // 2],
    }


def write(flows_dir: Path, text: str) -> None:
    """As an editor saves: the file is truncated, then written (a reader may see either)."""
    (flows_dir / "company.yaml").write_text(text)


def test_calls_mid_flow_finish_on_their_version_while_broken_files_are_refused(
        place_call, flows_dir, app, caplog):
    files = variants(flows_dir)
    calls = [place_call(f"+1415555021{i}") for i in range(6)]
    for call in calls[:3]:
        call.press("1")
        call.expect_heard(ACCOUNT)

    for broken in ("bad yaml", "fails the check"):
        write(flows_dir, files[broken])
        with caplog.at_level(logging.ERROR):
            newcomer = place_call("+14155550219")
        newcomer.expect_heard(OLD_PROMPT)  # the last good version
        refusals = [r.getMessage() for r in caplog.records if "flow file refused" in r.getMessage()]
        assert refusals and REFUSED.search(refusals[-1]), refusals
        caplog.clear()
    # Every call in progress carries on where it was, on the version it started on.
    calls[0].press(GOOD_ACCOUNT_NUMBER)
    calls[0].expect_heard("Connecting you to billing.")
    calls[1].press("1234")
    calls[1].expect_heard("doesn't look right")
    calls[3].press("3")
    calls[3].expect_heard("customer care team")
    calls[4].press("1")  # "fails the check" broke exactly this route: not for this call
    calls[4].expect_heard(ACCOUNT)

    write(flows_dir, files["new"])  # fixed: the edit goes live for new calls only
    fixed = place_call("+14155550229")
    fixed.expect_heard(NEW_PROMPT)
    calls[5].silence()
    assert OLD_PROMPT in calls[5].heard_since_input[-1]
    calls[2].press(GOOD_ACCOUNT_NUMBER)
    calls[2].expect_heard("Connecting you to billing.")
    assert app.extensions["ivr"].registry.problems() == {}
    for call in [*calls, fixed]:
        assert "having trouble" not in " ".join(call.heard)


def test_many_calls_keep_their_version_while_the_file_churns_between_good_and_broken(
        place_call, flows_dir):
    files = variants(flows_dir)
    prompts = {"old": OLD_PROMPT, "new": NEW_PROMPT}
    # Before each new call, ops save the file: good, broken, the other good, broken again...
    # Calls already in progress meanwhile go on in other threads.
    saves = itertools.cycle(["new", "bad yaml", "old", "fails the check", "new", "empty",
                             "old", "cut short"])
    live = ["old"]
    lock = threading.Lock()
    started: dict[str, str] = {}  # call -> the version live when it rang
    heard: dict[str, tuple[str, str]] = {}
    failures: list[BaseException] = []

    def ring(number: str) -> SimulatedCall:
        with lock:  # the save and the first webhook together: we know what is live
            name = next(saves)
            write(flows_dir, files[name])
            live[0] = name if name in prompts else live[0]
            call = place_call(number)
            started[call.call_sid] = live[0]
            return call

    def one_caller(i: int) -> None:
        try:
            for turn in range(3):
                call = ring(f"+141555503{i}{turn}")
                first = next(h for h in call.heard if "press 1" in h)
                call.silence()  # the reprompt, from the version the call started on
                again = call.heard_since_input[-1]
                call.press("3")
                call.expect_heard("customer care team")
                call.answer_dial()
                heard[call.call_sid] = (first, again)
                assert "having trouble" not in " ".join(call.heard), call.heard
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)

    callers = [threading.Thread(target=one_caller, args=(i,)) for i in range(6)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(300)

    assert failures == [] and len(heard) == 18
    for sid, (first, again) in heard.items():
        expected = prompts[started[sid]]  # new calls get the last good version...
        assert expected in first and expected in again, (started[sid], first, again)  # ...kept
    assert set(started.values()) == {"old", "new"}
