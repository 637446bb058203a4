"""The deployment files stay true to the code: docker-compose names real commands and real
settings, the image runs as a non-root user with a health check, the README documents every
variable."""

from pathlib import Path

import pytest
import yaml

from shared.routing import SERVICES
from sistercities.cli import main
from sistercities.config import known_variables

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def app_services(compose: dict) -> dict[str, dict]:
    return {name: spec for name, spec in compose["services"].items() if "build" in spec}


def test_every_compose_service_has_an_image_or_a_build(compose):
    for name, spec in compose["services"].items():
        assert "image" in spec or "build" in spec, name
    assert {"redis", "postgres", "mailpit"} <= set(compose["services"])


def test_the_system_runs_every_process_once(compose):
    commands = [spec["command"] for spec in app_services(compose).values()]
    assert ["sistercities", "gateway"] in commands
    assert ["sistercities", "beat"] in commands
    assert ["sistercities", "relay"] in commands
    assert ["sistercities", "migrate"] in commands
    for service in SERVICES:
        assert ["sistercities", "worker", service] in commands
    assert ["sistercities", "notifier", "mailbox"] in commands


def _check_command(argv: list[str]) -> None:
    assert argv[0] == "sistercities", argv
    command = main.commands.get(argv[1])
    assert command is not None, f"no such command: {' '.join(argv)}"
    if argv[1] in ("worker", "ping"):
        assert all(arg in SERVICES for arg in argv[2:]), argv


def test_commands_and_health_checks_name_real_entry_points(compose):
    for name, spec in app_services(compose).items():
        _check_command(spec["command"])
        health = spec.get("healthcheck", {})
        if "test" in health:
            assert health["test"][0] == "CMD", name
            _check_command(health["test"][1:])


def test_environment_names_exist_in_the_settings(compose):
    known = known_variables()
    for name, spec in app_services(compose).items():
        unknown = set(spec.get("environment", {})) - known
        assert not unknown, f"{name} sets variables no settings read: {unknown}"


def test_the_image_is_slim_non_root_and_health_checked():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    user_lines = [line for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert user_lines and user_lines[-1].split()[1] not in ("root", "0")
    assert "HEALTHCHECK" in dockerfile


def test_the_readme_documents_every_variable():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in sorted(known_variables()) if f"`{name}`" not in readme]
    assert not missing, f"README's configuration table lacks {missing}"
