"""Fixtures of the Python API tests: the qforge package from the build tree, the shared real
models (stories260K llama2.c, llama-mix-16m HF), the qforge CLI to cross-check against, and an
engine cache private to the run.

CTest sets PYTHONPATH (build/<preset>/python), QFORGE_CLI and QFORGE_SOURCE_DIR; run by hand:
    PYTHONPATH=build/release/python /usr/bin/python3 -m pytest tests/python
"""

import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("QFORGE_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
SHARED = SOURCE_DIR.parent / "shared"
MODELS = SHARED / "models"
DATA = SHARED / "data"
STORIES_BIN = MODELS / "stories260K" / "stories260K.bin"
STORIES_TOK = MODELS / "stories260K" / "tok512.model"
MIX_DIR = MODELS / "llama-mix-16m"
TINYSTORIES = DATA / "tinystories" / "tinystories_valid_first1000.txt"
WIKI_VALID = DATA / "wikitext-2" / "wiki.valid.tokens"

# Engines built on the fly go to a cache of this run only (the CLI subprocesses inherit it).
_CACHE = tempfile.mkdtemp(prefix="qforge_pytest_cache_")
os.environ["QFORGE_CACHE"] = _CACHE
os.environ.setdefault("QFORGE_NO_PROGRESS", "1")

try:
    import qforge  # noqa: F401
except ImportError:  # run by hand without PYTHONPATH: the release preset's build tree
    sys.path.insert(0, str(SOURCE_DIR / "build" / "release" / "python"))
    import qforge  # noqa: F401


def pytest_sessionfinish(session, exitstatus):
    import shutil

    shutil.rmtree(_CACHE, ignore_errors=True)


def _cli_path():
    if os.environ.get("QFORGE_CLI"):
        return pathlib.Path(os.environ["QFORGE_CLI"])
    # build/<preset>/python/qforge/__init__.py -> build/<preset>/bin/qforge
    return pathlib.Path(qforge.__file__).resolve().parents[2] / "bin" / "qforge"


@pytest.fixture(scope="session")
def cli():
    """Runs the qforge CLI; returns (exit code, stdout, stderr)."""
    path = _cli_path()
    if not path.exists():
        pytest.skip(f"no qforge CLI at {path}")

    def run(*args, check=True):
        r = subprocess.run([str(path), *map(str, args)], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError(f"qforge {' '.join(map(str, args))} failed:\n{r.stderr}")
        return r.returncode, r.stdout, r.stderr

    return run


def cli_error(stderr):
    """The message of a failed CLI run ("qforge: error: MESSAGE")."""
    prefix = "qforge: error: "
    line = [l for l in stderr.splitlines() if l.startswith(prefix)]
    assert line, stderr
    return line[-1][len(prefix):]


def _need(path):
    if not path.exists():
        pytest.skip(f"needs {path}")
    return path


@pytest.fixture(scope="session")
def stories_bin():
    return _need(STORIES_BIN)


@pytest.fixture(scope="session")
def mix_dir():
    return _need(MIX_DIR / "config.json").parent


@pytest.fixture(scope="session")
def tinystories():
    return _need(TINYSTORIES)


@pytest.fixture(scope="session")
def wiki_valid():
    return _need(WIKI_VALID)


@pytest.fixture(scope="session")
def stories_hf(stories_bin, tmp_path_factory):
    """stories260K written as a Hugging Face directory (F32) with its SentencePiece tokenizer."""
    out = tmp_path_factory.mktemp("stories") / "stories260K_hf"
    qforge.convert(stories_bin, out, dtype="float32", tokenizer=STORIES_TOK)
    return out


@pytest.fixture(scope="session")
def stories_llm(stories_bin):
    """The reference runtime over stories260K.bin (as `qforge run --model`)."""
    return qforge.LLM(stories_bin)


@pytest.fixture(scope="session")
def calib_texts(tinystories):
    """In-memory calibration documents: the first stories of TinyStories."""
    text = tinystories.read_text(encoding="utf-8")
    return [s.strip() for s in text.split("<|endoftext|>") if s.strip()][:40]
