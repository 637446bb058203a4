"""The architecture rules hold: services stay apart, shared/ depends on no service, and every
task is named ``<service>.<verb>_<noun>``."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.routing import SERVICES

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_every_task_is_named_service_verb_noun(service):
    worker = importlib.import_module(f"services.{service}.worker")
    worker.app.loader.import_default_modules()
    names = [name for name in worker.app.tasks if not name.startswith("celery.")]
    assert f"{service}.ping_service" in names
    for name in names:
        assert re.fullmatch(rf"{service}\.[a-z]+_[a-z_]+", name), name
