"""Filler ("garbage") words that let a runtime grammar say "none of these".

A vosk grammar of menu words alone forces any speech or noise onto a menu word,
usually with confidence 1.0, so a caller saying something else gets routed.
Offering the decoder other words from the model's own vocabulary as well gives
out-of-grammar speech somewhere better to go; the matcher then rejects anything
that is not exactly one synonym. Chosen automatically from the vocabulary, so
it works unchanged with any language's model:

- only words written in the same script(s) as the phrases, made of letters;
- no longer than twice the longest phrase word (long fillers swallow a short
  answer together with its surrounding silence);
- never a phrase word, inside a phrase, or containing a phrase word;
- not spelled like a phrase word: normalised edit distance over the
  NFD-decomposed spelling (Hangul -> jamo, accents split off) of at least
  `min_distance`, a rough but language-agnostic stand-in for "sounds alike";
- a fixed pseudo-random sample (ordered by a hash of the word), so the same
  menu always gets the same grammar and no word list is tuned by hand.

vosk turns the grammar into a bigram LM where each listed phrase counts once,
so listing the menu phrases `phrase_weight` times makes a menu word that many
times likelier a priori than any one filler: the knob between accepting menu
words and rejecting everything else.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

# Defaults chosen on the tuning half of bench/speech.py's corpus (see its output).
FILLER_COUNT = 100
FILLER_MIN_DISTANCE = 0.8
PHRASE_WEIGHT = 3


def _script(ch: str) -> str:
    """First word of the Unicode name: LATIN, HANGUL, CYRILLIC, CJK, ..."""
    try:
        return unicodedata.name(ch).split()[0]
    except ValueError:
        return "?"


def _is_spoken_word(word: str) -> bool:
    """Letters (and combining marks) only: skips <UNK>, #0, !SIL, numbers, punctuation."""
    return bool(word) and unicodedata.category(word[0]).startswith("L") and all(
        unicodedata.category(ch)[0] in "LM" for ch in word
    )


def _spelling(word: str) -> str:
    return unicodedata.normalize("NFD", word.casefold())


def _distance(a: str, b: str) -> float:
    """Levenshtein distance divided by the longer length (0 = same, 1 = nothing shared)."""
    if not a or not b:
        return 1.0
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1] / max(len(a), len(b))


@lru_cache(maxsize=4)
def _hash_order(vocabulary: frozenset[str]) -> tuple[str, ...]:
    """The vocabulary in a fixed pseudo-random order: computed once per model (~0.6 s for
    500k words); filters run lazily while walking it, as only the first few hundred count."""
    return tuple(sorted(vocabulary, key=lambda w: hashlib.sha1(w.encode("utf-8")).digest()))


@lru_cache(maxsize=256)
def _fillers(vocabulary: frozenset[str], phrases: tuple[str, ...], count: int,
             min_distance: float) -> tuple[str, ...]:
    words = {w.casefold() for p in phrases for w in p.split()}
    if not words or count <= 0:
        return ()
    compact = [p.casefold().replace(" ", "") for p in phrases]
    spellings = [_spelling(w) for w in words]
    scripts = frozenset(_script(ch) for w in words for ch in w)
    longest = max(len(w) for w in words)
    chosen: list[str] = []
    for word in _hash_order(vocabulary):
        folded = word.casefold()
        if len(word) > 2 * longest or folded in words or not _is_spoken_word(word):
            continue
        if not {_script(ch) for ch in word} <= scripts:
            continue
        if any(folded in c for c in compact) or any(w in folded for w in words):
            continue
        spelling = _spelling(word)
        if min_distance > 0 and any(_distance(spelling, s) < min_distance for s in spellings):
            continue
        chosen.append(word)
        if len(chosen) == count:
            break
    return tuple(chosen)


def filler_words(vocabulary: frozenset[str], phrases: Iterable[str],
                 count: int = FILLER_COUNT,
                 min_distance: float = FILLER_MIN_DISTANCE) -> list[str]:
    """Up to `count` vocabulary words to offer beside `phrases` as "something else".

    Deterministic for a given vocabulary and phrase set; cached, since a menu's
    grammar is rebuilt for every answer.
    """
    key = tuple(sorted({" ".join(p.split()) for p in phrases if p.strip()}))
    return list(_fillers(vocabulary, key, count, min_distance))
