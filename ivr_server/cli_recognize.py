"""`ivr speech recognize`: replay a caller's recording through the code path calls use."""

from __future__ import annotations

import json
from pathlib import Path

import click

from speech.model import shared_model

from .config import Config
from .speech_input import SpeechInput


def parse_choices(text: str) -> dict[str, list[str]]:
    """'billing|invoice,support' -> {'billing': ['billing', 'invoice'], 'support': [...]}:
    each group is named by its first synonym."""
    groups = [[w.strip() for w in group.split("|") if w.strip()] for group in text.split(",")]
    return {g[0]: g for g in groups if g}


@click.command("recognize")
@click.argument("audio", type=click.Path(exists=True, dir_okay=False))
@click.option("--choices", default="", help="groups of synonyms: 'billing|invoice,support'")
@click.option("--digits", is_flag=True, help="also read the answer as spoken digits")
@click.option("--model", "model_path", type=click.Path(), default=None,
              help="model folder (default: [speech] model_path / IVR_VOSK_MODEL)")
@click.pass_obj
def speech_recognize(config: Config, audio: str, choices: str, digits: bool,
                     model_path: str | None) -> None:
    """Print one JSON line: text, confidence, choice, digits, decode_ms."""
    path = Path(model_path) if model_path else config.speech_model_path
    if path is None:
        raise click.ClickException("no speech model configured: set IVR_VOSK_MODEL or "
                                   "[speech] model_path, or pass --model PATH")
    model = shared_model(str(path), config.speech.language or None)
    groups = parse_choices(choices)
    if not groups and not digits:
        raise click.ClickException("give --choices, --digits or both")
    hearer = SpeechInput(model, account_sid="", auth_token="",
                         min_confidence=config.speech.min_confidence, delete_recordings=False,
                         filler_words=config.speech.filler_words,
                         phrase_weight=config.speech.phrase_weight)
    if digits and hearer.digits_language is None:
        raise click.ClickException(f"no digit words for the model's language "
                                   f"({model.language or 'unknown'}); set IVR_SPEECH_LANGUAGE "
                                   "if its README does not name it")
    data = Path(audio).read_bytes()
    result: dict[str, object] = {"text": "", "confidence": 0.0, "choice": None,
                                 "digits": None, "decode_ms": 0.0}
    if groups:
        heard = hearer.hear_audio(data, groups)
        if heard.error:
            raise click.ClickException(heard.error)
        result.update(text=heard.text, confidence=round(heard.confidence, 3),
                      choice=heard.choice, decode_ms=round(heard.decode_ms, 1))
    if digits:  # a collect's grammar: digit words only
        spoken = hearer.hear_audio(data, digits=True)
        if spoken.error:
            raise click.ClickException(spoken.error)
        result["digits"] = spoken.digits
        if not groups:
            result.update(text=spoken.text, confidence=round(spoken.confidence, 3),
                          decode_ms=round(spoken.decode_ms, 1))
    click.echo(json.dumps(result, ensure_ascii=False))
