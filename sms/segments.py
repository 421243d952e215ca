"""How many billed SMS segments a text needs, counted the way carriers split it.

A text is sent in GSM-7 when every character is in the GSM 03.38 basic table or its
extension table (an extension character costs two septets: escape + code); otherwise the
whole text goes as UCS-2 and counts UTF-16 code units (an emoji is a surrogate pair, two).
One segment holds 160 septets or 70 units; once split, each segment loses room to the
concatenation header and holds 153 septets or 67 units. An escape pair or a surrogate pair
is never split across segments, so a segment may end one short and push the pair over.
"""

from __future__ import annotations

from typing import Literal

from .errors import TemplateTooLong

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)  # the escape code 0x1B is left out: it is not a character a text can contain
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# (single-segment capacity, per-segment capacity once split)
_CAPACITY: dict[Encoding, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


def encoding(text: str) -> Encoding:
    """GSM-7 if every character has a GSM-7 code, else UCS-2 (one emoji switches it all)."""
    ok = GSM7_BASIC | GSM7_EXTENSION
    return "GSM-7" if all(ch in ok for ch in text) else "UCS-2"


def _units(text: str, enc: Encoding) -> list[int]:
    """The size of each character in the chosen encoding: septets or UTF-16 code units."""
    if enc == "GSM-7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def length(text: str) -> int:
    """The text's length in its encoding's units (septets or UTF-16 code units)."""
    return sum(_units(text, encoding(text)))


def segments(text: str) -> int:
    """The number of segments (billed messages) the text is sent as; 0 for an empty text."""
    enc = encoding(text)
    sizes = _units(text, enc)
    single, multi = _CAPACITY[enc]
    total = sum(sizes)
    if total <= single:
        return 1 if total else 0
    count, used = 1, 0
    for size in sizes:
        if used + size > multi:  # a two-unit character never straddles a segment boundary
            count, used = count + 1, 0
        used += size
    return count


def fit(text: str, max_segments: int = 2, *, template: str | None = None) -> str:
    """The text itself, or TemplateTooLong when it would be billed as more than max_segments."""
    needed = segments(text)
    if needed > max_segments:
        raise TemplateTooLong(needed, max_segments, encoding(text), length(text), template)
    return text


def shorten_to_fit(text: str, max_segments: int, ellipsis: str = "...") -> str:
    """The text, or its longest prefix ending at a word boundary plus the ellipsis that fits.

    For free text (a company or queue name typed by ops) where a cut message beats none.
    A single word too long to cut at a boundary is cut mid-word.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if segments(text) <= max_segments:
        return text
    if segments(ellipsis) > max_segments:
        raise ValueError(f"the ellipsis {ellipsis!r} alone needs more than {max_segments}")
    # segments(text[:k] + ellipsis) never falls as k grows (a longer prefix can only add units
    # or switch GSM-7 to UCS-2), so the longest prefix that fits is found by bisection.
    lo, hi = 0, len(text)  # text[:lo] + ellipsis fits; text[:hi] + ellipsis does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if segments(text[:mid] + ellipsis) <= max_segments:
            lo = mid
        else:
            hi = mid
    cut = text[:lo]
    if not text[lo].isspace():
        boundary = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
        if boundary > 0:
            cut = cut[:boundary]
    return cut.rstrip(" \t\r\n,;:-") + ellipsis
