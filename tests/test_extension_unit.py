"""The extension's pure logic (ids, traceparent decisions, redaction, the queue's bounds,
OTLP JSON) under node's built-in test runner, so the one pytest command covers it."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.browser import EXTENSION
from tests.conftest import GASOLINE

NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="needs node (apt-get install nodejs) for node --test")
def test_extension_logic_under_node() -> None:
    assert NODE is not None
    run = subprocess.run(
        [NODE, "--test", "--test-reporter=tap", "test/"],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# pass " in run.stdout


def test_manifest_names_files_that_exist() -> None:
    manifest = json.loads((EXTENSION / "manifest.json").read_text())
    assert manifest["manifest_version"] == 3
    named = [manifest["background"]["service_worker"], manifest["options_page"]]
    named.append(manifest["action"]["default_popup"])
    for script in manifest["content_scripts"]:
        named += script["js"]
    missing = [name for name in named if not (EXTENSION / name).is_file()]
    assert not missing, f"manifest.json names missing files: {missing}"


def test_gasoline_extension_prints_a_loadable_directory() -> None:
    """In a source checkout (editable install) the repository's extension/; the wheel ships
    the same directory inside the package (pyproject's force-include)."""
    run = subprocess.run([GASOLINE, "extension"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    path = Path(run.stdout.strip())
    assert path == EXTENSION and (path / "manifest.json").is_file()
    pyproject = tomllib.loads((EXTENSION.parent / "pyproject.toml").read_text())
    included = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert included["extension"] == "gasoline/extension"
