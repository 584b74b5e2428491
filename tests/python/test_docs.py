"""docs/PYTHON.md runs: its ```python blocks execute in order, in one namespace, from the
repository root (the page's paths are relative to it)."""

import os
import re

from conftest import MIX_DIR, SOURCE_DIR, STORIES_BIN

import pytest


def python_blocks(markdown):
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


def test_python_md_examples_run(monkeypatch):
    for need in (STORIES_BIN, MIX_DIR / "config.json"):
        if not need.exists():
            pytest.skip(f"needs {need}")
    page = (SOURCE_DIR / "docs" / "PYTHON.md").read_text(encoding="utf-8")
    blocks = python_blocks(page)
    assert len(blocks) >= 5
    monkeypatch.chdir(SOURCE_DIR)
    namespace = {"__name__": "docs_python_md"}
    for i, block in enumerate(blocks):
        code = compile(block, f"docs/PYTHON.md block {i + 1}", "exec")
        exec(code, namespace)  # noqa: S102 - the documentation is the test
