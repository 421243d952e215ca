"""Check-time warnings about speech, so ops learn at `ivr flows check`, not on a call."""

from __future__ import annotations

from flows.errors import Problem
from flows.loader import Flow
from flows.nodes import CollectNode, MenuNode
from flows.yaml_source import line_for
from speech.matching import DIGIT_WORDS, normalise
from speech.model import SpeechModel


def speech_warnings(flow: Flow, model: SpeechModel) -> list[Problem]:
    """Synonyms with words the model does not know (vosk drops them, so nobody can say
    them), and collects that listen in a language we have no digit words for."""
    problems = []
    for name, node in flow.model.nodes.items():
        mode = getattr(node, "speech", None) or flow.model.speech
        if isinstance(node, MenuNode) and mode != "off":
            for i, option in enumerate(node.options):
                for j, said in enumerate(option.say):
                    for word in model.unknown_words([normalise(said)]):
                        line = line_for(flow.lines, ("nodes", name, "options", i, "say", j))
                        problems.append(Problem(
                            flow.file, line, f"node {name!r} option key {option.key}: the "
                            f"speech model does not know {word!r}"
                            f"{f' (in {said!r})' if said != word else ''}, so callers cannot "
                            "answer with it", severity="warning"))
        elif getattr(node, "offer_callback", None) is not None and flow.model.speech != "off":
            for j, said in enumerate(node.offer_callback.words):  # type: ignore[attr-defined]
                for word in model.unknown_words([normalise(said)]):
                    line = line_for(flow.lines, ("nodes", name, "offer_callback", "words", j))
                    problems.append(Problem(
                        flow.file, line, f"node {name!r} offer_callback: the speech model does "
                        f"not know {word!r}, so callers cannot ask for a call back with it",
                        severity="warning"))
        elif isinstance(node, CollectNode) and mode != "off":
            language = (model.language or "").lower().replace("_", "-").split("-")[0]
            if language not in DIGIT_WORDS:
                problems.append(Problem(
                    flow.file, line_for(flow.lines, ("nodes", name)),
                    f"node {name!r}: no digit words for the speech model's language "
                    f"({model.language or 'unknown'}), so callers can only key this number "
                    "(set speech: off on the node to say so)", severity="warning"))
    return problems


def speech_summary(flow: Flow) -> str:
    """Which path the flow's prompts listen on, e.g. "speech: record; stream at 'menu'"."""
    default = flow.model.speech
    others: dict[str, list[str]] = {}
    for name, node in flow.model.nodes.items():
        mode = getattr(node, "speech", None)
        if isinstance(node, MenuNode | CollectNode) and mode and mode != default:
            others.setdefault(mode, []).append(repr(name))
    extra = "".join(f"; {mode} at {', '.join(names)}" for mode, names in sorted(others.items()))
    return f"speech: {default}{extra}"
