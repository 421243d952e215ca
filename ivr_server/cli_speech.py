"""`ivr speech check` and `ivr speech download`: get a vosk model in place and prove it loads.

Ops staff set up speech once per machine; these commands make the two ways it goes
wrong (no model / a model that does not load) visible before a caller hears them.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

import click

from speech.errors import ModelUnavailable
from speech.model import SpeechModel

from .config import Config

MODEL_SITE = "https://alphacephei.com/vosk/models"
# Official small models (language -> version), from the model list on MODEL_SITE.
SMALL_MODELS: dict[str, str] = {
    "en-us": "0.15",
    "ko": "0.22",
    "de": "0.15",
    "fr": "0.22",
    "es": "0.42",
}
CHUNK = 1 << 16
MAX_DOWNLOAD_MB = 500
MAX_UNPACKED_RATIO = 10  # a zip that would unpack to more than 10x its size is refused


class DownloadError(click.ClickException):
    """A model download that was refused; nothing it wrote is left behind."""


@click.group("speech")
def speech_group() -> None:
    """Offline speech recognition (vosk): check or download a model."""


# -- check ---------------------------------------------------------------------------------


def rss_mb() -> float | None:
    """Resident memory of this process in MB (Linux /proc), None where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@speech_group.command("check")
@click.option("--model", "model_path", type=click.Path(), default=None,
              help="model folder to check (default: [speech] model_path / IVR_VOSK_MODEL)")
@click.pass_obj
def speech_check(config: Config, model_path: str | None) -> None:
    """Load the model once and report what the server would get; exit 1 if it cannot."""
    path = Path(model_path) if model_path else config.speech_model_path
    if path is None:
        raise click.ClickException(
            "no speech model configured: set [speech] model_path in config.toml or "
            "IVR_VOSK_MODEL, or pass --model PATH (`ivr speech download LANG` fetches one)")
    model = SpeechModel(path, config.speech.language or None)
    before = rss_mb()
    try:
        model.load()
    except ModelUnavailable as exc:
        raise click.ClickException(f"speech model cannot be used: {exc}") from None
    after = rss_mb()
    grammar = ("yes (graph/HCLr.fst + graph/Gr.fst)" if model.supports_grammar else
               "NO: this model has no lookahead graph, so menu synonyms cannot restrict it")
    memory = (f"{after:.0f} MB resident ({after - before:+.0f} MB for the model)"
              if before is not None and after is not None else "unknown (no /proc)")
    started = time.perf_counter()
    words = len(model.vocabulary)
    click.echo(f"model:       {path}")
    click.echo(f"language:    {model.language or 'unknown (set [speech] language)'}")
    click.echo(f"grammars:    {grammar}")
    click.echo(f"load time:   {model.load_seconds or 0.0:.2f} s")
    click.echo(f"memory:      {memory}")
    click.echo(f"vocabulary:  {words} words (read in {time.perf_counter() - started:.2f} s)")


# -- download ------------------------------------------------------------------------------


def model_url(language: str) -> str:
    """The official small model zip for `language`, from the table above."""
    version = SMALL_MODELS.get(language.lower())
    if version is None:
        known = ", ".join(sorted(SMALL_MODELS))
        raise click.ClickException(f"no known small model for {language!r} (known: {known}); "
                                   f"pass --url with a zip from {MODEL_SITE}")
    return f"{MODEL_SITE}/vosk-model-small-{language.lower()}-{version}.zip"


def fetch(url: str, dest: Path, *, timeout: float, max_bytes: int) -> str:
    """Stream `url` into `dest` within `timeout` (per read) and `max_bytes`; its sha256."""
    import requests

    digest = hashlib.sha256()
    size = 0
    try:
        with requests.get(url, stream=True, timeout=timeout) as response:
            if response.status_code != 200:
                raise DownloadError(f"{url}: HTTP {response.status_code}")
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise DownloadError(f"{url} is {declared} bytes, over the {max_bytes} byte cap")
            with dest.open("wb") as out:
                for chunk in response.iter_content(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadError(f"{url} is over the {max_bytes} byte cap")
                    digest.update(chunk)
                    out.write(chunk)
    except requests.RequestException as exc:
        raise DownloadError(f"cannot download {url}: {exc}") from None
    return digest.hexdigest()


def safe_members(archive: zipfile.ZipFile, max_bytes: int) -> list[zipfile.ZipInfo]:
    """The entries, refusing any that would land outside the target folder or are links."""
    members = archive.infolist()
    total = 0
    for info in members:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (parts and parts[0].endswith(":")) or ".." in parts:
            raise DownloadError(f"unsafe path in the zip: {name!r} (refused, nothing unpacked)")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DownloadError(f"symbolic link in the zip: {name!r} (refused, nothing unpacked)")
        total += info.file_size
    if total > max_bytes:
        raise DownloadError(f"the zip would unpack to {total} bytes, over {max_bytes}")
    return members


def unpack(zip_path: Path, work: Path, max_bytes: int) -> Path:
    """Check and unpack the zip under `work`; the model folder inside it."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise DownloadError(f"the zip is corrupt (bad CRC in {bad!r})")
            members = safe_members(archive, max_bytes)
            archive.extractall(work, members)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DownloadError(f"not a valid zip file: {exc}") from None
    entries = [p for p in work.iterdir()]
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else work
    return root


def verify_model(folder: Path) -> None:
    """A vosk model has am/, conf/ and graph/, and am/final.mdl (SpeechModel.check)."""
    missing = [d for d in ("am", "conf", "graph") if not (folder / d).is_dir()]
    if missing:
        raise DownloadError(f"the zip is not a vosk model (no {', '.join(missing)}/ folder)")
    try:
        SpeechModel(folder).check()
    except ModelUnavailable as exc:
        raise DownloadError(f"the zip is not a vosk model: {exc}") from None


@speech_group.command("download")
@click.argument("language")
@click.option("--url", default=None, help="zip to fetch instead of the known small model")
@click.option("--into", "into", type=click.Path(file_okay=False), default=None,
              help="folder for models (default: <instance>/models)")
@click.option("--sha256", "sha256", default=None,
              help="expected sha256 of the zip (the model site publishes none)")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="seconds to wait for each network read")
@click.option("--max-mb", type=int, default=MAX_DOWNLOAD_MB, show_default=True,
              help="refuse a larger zip")
@click.pass_obj
def speech_download(config: Config, language: str, url: str | None, into: str | None,
                    sha256: str | None, timeout: float, max_mb: int) -> None:
    """Fetch, verify and unpack a vosk model; print the setting that uses it.

    alphacephei.com publishes no checksums, so the zip is verified by its own CRCs and
    by the unpacked folder being a vosk model (am/, conf/, graph/); pass --sha256 to pin
    a zip you have checked. Entries with absolute paths, '..' or links are refused, and a
    refused download leaves nothing behind (it is unpacked in a scratch folder first).
    """
    url = url or model_url(language)
    name = PurePosixPath(url.split("?")[0]).name.removesuffix(".zip") or f"vosk-model-{language}"
    models = Path(into) if into else config.instance_dir / "models"
    target = models / name
    if target.exists():
        raise click.ClickException(f"{target} already exists: remove it first, or use it:\n"
                                   f"IVR_VOSK_MODEL={target.resolve()}")
    models.mkdir(parents=True, exist_ok=True)
    max_bytes = max_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix=".download-", dir=models) as scratch:
        zip_path = Path(scratch) / "model.zip"
        click.echo(f"downloading {url}", err=True)
        digest = fetch(url, zip_path, timeout=timeout, max_bytes=max_bytes)
        if sha256 and digest != sha256.lower():
            raise DownloadError(f"sha256 mismatch: expected {sha256.lower()}, got {digest}")
        work = Path(scratch) / "unpacked"
        work.mkdir()
        folder = unpack(zip_path, work, max_bytes * MAX_UNPACKED_RATIO)
        verify_model(folder)
        shutil.move(str(folder), str(target))
    click.echo(f"sha256 {digest}", err=True)
    click.echo(f"model ready in {target}. Use it with:")
    click.echo(f"IVR_VOSK_MODEL={target.resolve()}")
    click.echo(f"(or [speech] model_path = \"{target.resolve()}\" in config.toml)")
