"""The deployment files stay true to the code: docker-compose names real commands and real
settings, the image runs as a non-root user with a health check, the README documents every
variable."""

import importlib
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from services.gateway.config import GatewaySettings
from services.notifier.config import load_mailbox_settings
from shared.routing import LANES, SERVICES
from sistercities.cli import main
from sistercities.config import LauncherSettings, known_variables
from tests.faults.servers import PrivatePostgres, why_no_servers

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
        for lane in LANES:
            assert ["sistercities", "worker", service, "--lane", lane] in commands
    assert ["sistercities", "notifier", "mailbox"] in commands


def _check_command(argv: list[str]) -> None:
    assert argv[0] == "sistercities", argv
    command = main.commands.get(argv[1])
    assert command is not None, f"no such command: {' '.join(argv)}"
    if argv[1] in ("worker", "ping"):
        # The command's own parser: unknown options and choices (services, lanes) fail it.
        with command.make_context(argv[1], list(argv[2:])) as context:
            named = context.params.get("service") or context.params["services"]
        assert named and not context.params.get("celery_args"), argv


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


# What `docker compose` substitutes: ${NAME}, ${NAME:-default}, ${NAME:?message}.
COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")
SECRETS = {
    "SECRET_KEY": "s" * 40,
    "UNSUBSCRIBE_KEY": "u" * 64,
    "REDIS_PASSWORD": "redis0password",
    "POSTGRES_PASSWORD": "superuser0password",
    **{f"{service.upper()}_DB_PASSWORD": f"{service}0password" for service in SERVICES},
}


def interpolate(value: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match) -> str:
        name, kind, default = match.groups()
        if env.get(name):
            return env[name]
        assert kind != "?", f"compose stops without {name}: {default}"
        return default or ""

    return COMPOSE_VARIABLE.sub(substitute, value)


def environment(spec: dict, env: dict[str, str] = SECRETS) -> dict[str, str]:
    return {name: interpolate(str(value), env) for name, value in spec["environment"].items()}


def test_compose_gives_each_process_only_its_own_services_database(compose):
    every = {f"{service.upper()}_DATABASE_URL" for service in SERVICES}
    for name, spec in app_services(compose).items():
        given = set(spec["environment"]) & every
        if name.removesuffix("-background") in SERVICES:
            service = name.removesuffix("-background")
            assert given == {f"{service.upper()}_DATABASE_URL"}, name
        elif name in ("relay", "migrate"):
            assert given == every, name
        else:
            assert not given, name
        for variable in given:
            url = make_url(environment(spec)[variable])
            service = variable.removesuffix("_DATABASE_URL").lower()
            assert (url.username, url.database) == (service, service), url


def test_compose_redis_asks_every_client_for_the_password(compose):
    redis_spec = compose["services"]["redis"]
    assert "--requirepass" in " ".join(redis_spec["command"])
    for name, spec in app_services(compose).items():
        url = urlsplit(environment(spec)["REDIS_URL"])
        assert url.password == SECRETS["REDIS_PASSWORD"], name
    # Without the secrets compose refuses to start rather than run an open Redis.
    with pytest.raises(AssertionError, match="REDIS_PASSWORD"):
        environment(app_services(compose)["gateway"], {"SECRET_KEY": "s" * 40})


def test_compose_processes_start_with_valid_production_settings(compose):
    for spec in app_services(compose).values():
        environ = environment(spec)
        command = spec["command"]
        if command[1] == "gateway":
            GatewaySettings.from_env(environ)
        elif command[1:] == ["notifier", "mailbox"]:
            load_mailbox_settings(environ)
        elif command[1] == "worker":
            config = importlib.import_module(f"services.{command[2]}.config")
            settings = config.load_settings(environ)
            assert make_url(settings.database_url).get_backend_name() == "postgresql"
        else:
            LauncherSettings.from_env(environ)


def test_the_postgres_init_script_gives_each_service_a_role_that_opens_only_its_database(compose):
    """deploy/postgres-init.sh as the postgres image runs it, on a PostgreSQL of the test's own
    that checks passwords: each service's compose URL opens its own database, where its role
    may create tables, and no other database, not even with its owner's name."""
    assert why_no_servers() is None, why_no_servers()
    server = PrivatePostgres()
    try:
        (server.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        server.start()
        postgres_env = environment(compose["services"]["postgres"])
        subprocess.run(
            [str(ROOT / "deploy" / "postgres-init.sh")],
            env={
                **postgres_env,
                "PATH": f"{server.bin}:/usr/bin:/bin",
                "PGHOST": "127.0.0.1",
                "PGPORT": str(server.port),
                "POSTGRES_DB": "postgres",
                "INIT_SQL": str(ROOT / "deploy" / "postgres-init.sql"),
            },
            check=True,
            capture_output=True,
        )
        urls = {
            service: make_url(
                environment(compose["services"][service])[f"{service.upper()}_DATABASE_URL"]
            ).set(drivername="postgresql+psycopg", host="127.0.0.1", port=server.port)
            for service in SERVICES
        }
        for service, url in urls.items():
            engine = create_engine(url)
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE owned_by_the_service (id integer)"))
            engine.dispose()
            for other in set(SERVICES) - {service}:
                engine = create_engine(url.set(database=other))
                with pytest.raises(OperationalError, match="permission denied for database"):
                    engine.connect()
                engine.dispose()
                # Its own password is no other role's.
                engine = create_engine(url.set(username=other))
                with pytest.raises(OperationalError, match="password authentication failed"):
                    engine.connect()
                engine.dispose()
    finally:
        server.close()
