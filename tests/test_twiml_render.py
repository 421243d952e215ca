"""TwiML written as strings is exactly what twilio's VoiceResponse wrote (tests/twiml_reference.py):
same attribute order, escaping, empty elements and character clean-up, for any actions."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET

import pytest

from flows import actions as act
from ivr_server import twiml

from . import twiml_reference as reference

# Text that exercises escaping: markup, quotes, line breaks and tabs (escaped only in
# attributes), characters XML forbids, non-ASCII, a lone surrogate, URL-special characters.
WORDS = ("", "a", "Hello & <you> \"quoted\" 'single'", "tab\there\r\nnew line", "ünïcødé 😀",
         "control\x01\x0b\ufffe", "lone \ud800 surrogate", "1", "+15005550006", "sip:a@b",
         "client:bob", "0", "]]>", " a b+c/d=e?f%", "naïve space")


def _word(rnd: random.Random) -> str:
    return rnd.choice(WORDS)


def _prompt(rnd: random.Random) -> act.Say | act.Play | act.Pause:
    kind = rnd.randrange(3)
    if kind == 0:
        return act.Say(_word(rnd), rnd.choice([None, "", "Polly.Joanna"]),
                       rnd.choice([None, "", "en-US"]))
    if kind == 1:
        return act.Play(_word(rnd), rnd.choice([1, 0, 3]))
    return act.Pause(rnd.choice([0.2, 1, 2.6, 5]))


def _prompts(rnd: random.Random) -> tuple[act.Say | act.Play | act.Pause, ...]:
    return tuple(_prompt(rnd) for _ in range(rnd.randrange(3)))


def _context(rnd: random.Random) -> dict[str, str]:
    return {_word(rnd) or "k": _word(rnd) for _ in range(rnd.randrange(3))}


def _action(rnd: random.Random) -> act.Action:  # noqa: PLR0911 - one branch per action
    kind = rnd.randrange(8)
    node, turn = _word(rnd) or "node", rnd.randrange(5)
    if kind == 0:
        return _prompt(rnd)
    if kind == 1:
        return act.Gather(
            node=node, turn=turn, prompts=_prompts(rnd), timeout=rnd.choice([1, 5, 7]),
            num_digits=rnd.choice([None, 0, 1, 8]), finish_on_key=rnd.choice(["", "#", "*"]),
            choices=rnd.choice([(), ("1", "2")]), synonyms=rnd.choice([(), (("1", ("a",)),)]),
            spoken_digits=rnd.random() < 0.5, speech=rnd.choice(["off", "record", "stream"]))
    if kind == 2:
        return act.Dial(node=node, turn=turn,
                        target=rnd.choice(["+15005550006", "sip:x@y", "client:bob", "q&a", ""]),
                        kind=rnd.choice(["number", "sip", "client", "queue"]),
                        timeout=rnd.choice([20, 30]), caller_id=rnd.choice([None, "", "+1"]),
                        context=_context(rnd), whisper=rnd.random() < 0.5)
    if kind == 3:
        return act.Enqueue(node=node, turn=turn, queue=_word(rnd), context=_context(rnd),
                           words=rnd.choice([(), ("yes",)]),
                           speech=rnd.choice(["off", "stream", "record"]))
    if kind == 4:
        return act.HoldOffer(node=node, turn=turn, key="1", prompts=_prompts(rnd))
    if kind == 5:
        return act.Leave()
    if kind == 6:
        return act.Hangup()
    return act.Log("prompt", node, {"text": _word(rnd)})


def _outcome(render, *args, **kwargs):  # noqa: ANN001, ANN202 - either renderer
    """The document, or the kind of error: both renderers must also fail alike (a lone
    surrogate in a SIP header cannot be URL-encoded)."""
    try:
        return render(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        return type(exc)


LISTENING = (None, (True, "wss://ivr.example.com/voice/stream", 7), (False, "ws://h&x/s", 10))


@pytest.mark.parametrize("seed", range(4))
def test_every_answer_is_byte_for_byte_what_twilios_library_wrote(seed: int):
    rnd = random.Random(seed)
    answered = 0
    for _ in range(2500):
        actions = [_action(rnd) for _ in range(rnd.randrange(5))]
        listen = rnd.choice(LISTENING)
        stop = rnd.choice([None, "", "main_menu.1", "a&b"])
        ours = _outcome(twiml.render, actions, stop_stream=stop,
                        listen=twiml.Listening(*listen) if listen else None)
        theirs = _outcome(reference.render, actions, stop_stream=stop,
                          listen=reference.Listening(*listen) if listen else None)
        assert ours == theirs, actions
        answered += isinstance(ours, str)
    assert answered > 2000  # most cases are documents, not errors


@pytest.mark.parametrize("args", [
    ("Sorry & <sorry>", "+15005550006", "Bye", "Polly.Joanna", "en-US"),
    ("Sorry", None, "Bye \"now\"", None, None),
    ("", "", "", "", ""),
    ("Sorry", "sip:desk@pbx.example.com", "Bye", None, None),
    ("Sorry", "client:desk", "Bye", None, "en-GB"),
])
def test_the_safe_path_is_what_twilios_library_wrote(args: tuple):
    assert twiml.say_then_dial(*args) == reference.say_then_dial(*args)


def test_the_small_answers_are_what_twilios_library_wrote():
    assert twiml.say_only(["Incoming call.", "", "name: A&B\x01."]) == reference.say_only(
        ["Incoming call.", "", "name: A&B\x01."])
    assert twiml.say_then_hangup("No <longer> needed") == reference.say_then_hangup(
        "No <longer> needed")
    assert twiml.empty() == reference.empty() == \
        '<?xml version="1.0" encoding="UTF-8"?><Response />'
    assert twiml.pause_only(3) == reference.pause_only(3)


def test_a_crm_name_with_markup_is_spoken_as_text_not_parsed_as_twiml():
    doc = twiml.render([act.Say('Hello </Say><Hangup/> "Bob" & co', "Polly.Joanna", "en-US")])
    root = ET.fromstring(doc.encode())
    assert [el.tag for el in root] == ["Say"]
    assert root[0].text == 'Hello </Say><Hangup/> "Bob" & co'


def test_a_lone_surrogate_becomes_a_character_reference_so_the_answer_can_be_sent():
    doc = twiml.render([act.Say("caf\ud800e")])
    assert "caf&#55296;e" in doc
    doc.encode("utf-8")  # Flask sends it as UTF-8: this must not raise
