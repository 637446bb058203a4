"""The Kubernetes manifests stay true to the code: every process runs a real command with the
settings its code reads and validates, each worker kind scales on its real queue, beat runs
once, and every object is one the cluster's APIs know."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path

import click
import pytest
import yaml
from apiflask import APIFlask
from sqlalchemy.engine import make_url

from services.gateway import health
from services.gateway.config import GatewaySettings
from shared.routing import SERVICES, queue_for_task
from shared.settings import ConfigError, ServiceSettings
from sistercities.cli import main
from sistercities.config import LauncherSettings, known_variables

FOLDER = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
NAMESPACE = "sistercities"
IMAGE = "sistercities:latest"
# Created once by hand and never applied by `kubectl apply -k`: see the file's header.
SECRET_TEMPLATE = "secret-template.yaml"
API_VERSIONS = {
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "ScaledObject": "keda.sh/v1alpha1",
    "TriggerAuthentication": "keda.sh/v1alpha1",
}


def _load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    manifests = sorted(FOLDER.glob("*.yaml"))
    return [obj for path in manifests if path.name != "kustomization.yaml" for obj in _load(path)]


def of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


@pytest.fixture(scope="module")
def deployments(objects) -> dict[str, dict]:
    return of_kind(objects, "Deployment")


@pytest.fixture(scope="module")
def workloads(objects) -> dict[str, dict]:
    """Everything that runs a pod: the Deployments and the migration Job."""
    return {**of_kind(objects, "Deployment"), **of_kind(objects, "Job")}


@pytest.fixture(scope="module")
def config(objects) -> dict[str, str]:
    [config_map] = of_kind(objects, "ConfigMap").values()
    return config_map["data"]


@pytest.fixture(scope="module")
def secret(objects) -> dict[str, str]:
    [template] = of_kind(objects, "Secret").values()
    return template["stringData"]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict) -> dict:
    [only] = pod_spec(workload)["containers"]
    return only


def selects(selector: dict, workload: dict) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return selector["matchLabels"].items() <= labels.items()


def check_command(argv: list[str]) -> None:
    """The argument list parses as the `sistercities` command line: a real subcommand (of a
    group too: `sistercities notifier mailbox`) with arguments and options it accepts (click
    raises otherwise)."""
    assert argv[0] == "sistercities", argv
    command, name, args = main, argv[0], list(argv[1:])
    while isinstance(command, click.Group):
        name, *args = args
        command = command.commands.get(name)
        assert command is not None, f"no such command: {' '.join(argv)}"
    command.make_context(name, args)


def container_environment(workload: dict, config: dict, secret: dict) -> dict[str, str]:
    """The environment the container starts with, the Secret filled in from its template."""
    spec = container(workload)
    environ: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        assert source["configMapRef"]["name"] == "sistercities-config", source
        environ.update(config)
    for variable in spec.get("env", []):
        if "value" in variable:
            environ[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "sistercities-secrets", variable
            assert ref["key"] in secret, f"the Secret template has no {ref['key']}"
            # The Secret's keys are named for the variables: no URL lands in another's place.
            assert ref["key"] == variable["name"], variable
            environ[variable["name"]] = secret[ref["key"]]
    return environ


def test_every_object_is_a_known_api_in_the_namespace(objects):
    seen = set()
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        assert obj["apiVersion"] == API_VERSIONS[kind], f"{kind} {name}: {obj['apiVersion']}"
        assert name, obj
        if kind == "Namespace":
            assert name == NAMESPACE
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, f"{kind} {name}"
        assert (kind, name) not in seen, f"two {kind} named {name}"
        seen.add((kind, name))


def test_the_kustomization_applies_every_file_but_the_secret_template():
    kustomization = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    on_disk = {path.name for path in FOLDER.iterdir()} - {"kustomization.yaml", SECRET_TEMPLATE}
    assert sorted(listed) == sorted(on_disk)
    assert SECRET_TEMPLATE not in listed, "applying it would overwrite the live Secret"
    assert kustomization["namespace"] == NAMESPACE
    assert [image["name"] for image in kustomization["images"]] == [IMAGE.split(":")[0]]


def test_one_deployment_per_process(deployments, workloads):
    assert set(deployments) == {*SERVICES, "gateway", "beat", "relay", "mailbox"}
    expected = {
        "gateway": ["sistercities", "gateway"],
        "beat": ["sistercities", "beat"],
        "relay": ["sistercities", "relay"],
        "mailbox": ["sistercities", "notifier", "mailbox"],
        "migrate": ["sistercities", "migrate"],
        **{service: ["sistercities", "worker", service] for service in SERVICES},
    }
    assert {name: container(w)["command"] for name, w in workloads.items()} == expected


def test_commands_and_probes_are_real_command_lines(workloads):
    for name, workload in workloads.items():
        spec = container(workload)
        assert spec["image"] == IMAGE, name
        check_command(spec["command"])
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if "exec" in spec.get(probe, {}):
                check_command(spec[probe]["exec"]["command"])


def test_workers_are_live_while_their_service_answers_a_ping(deployments):
    for service in SERVICES:
        spec = container(deployments[service])
        for probe in ("startupProbe", "livenessProbe"):
            argv = spec[probe]["exec"]["command"]
            assert argv[:2] == ["sistercities", "ping"] and argv[-1] == service, argv
            # The probe must outlast the ping's own timeout, or a slow answer kills the pod.
            timeout = float(argv[argv.index("--timeout") + 1])
            assert spec[probe]["timeoutSeconds"] > timeout, (service, probe)


def test_every_setting_given_is_one_the_code_reads(objects, workloads, config, secret):
    known = known_variables()
    assert not set(config) - known, f"the ConfigMap sets unknown {set(config) - known}"
    for name, workload in workloads.items():
        given = {variable["name"] for variable in container(workload).get("env", [])}
        assert not given - known, f"{name} sets unknown {given - known}"
    for_keda = {
        ref["key"]
        for auth in of_kind(objects, "TriggerAuthentication").values()
        for ref in auth["spec"]["secretTargetRef"]
    }
    assert for_keda <= set(secret)
    assert not set(secret) - known - for_keda, "the Secret holds keys nothing reads"


def test_each_process_starts_with_valid_settings_and_real_backing_services(
    workloads, config, secret
):
    """Each container's environment passes its process's own validation, with its database
    on PostgreSQL and its Redis given: nothing falls back to SQLite or an embedded Redis in the
    pod's throwaway DATA_DIR."""
    filled = {
        **secret,
        "SECRET_KEY": "a-long-random-string-for-this-test",
        "UNSUBSCRIBE_KEY": "u" * 64,
    }
    for name, workload in workloads.items():
        environ = container_environment(workload, config, filled)
        process = container(workload)["command"][1]
        if process == "gateway":
            settings = [GatewaySettings.from_env(environ)]
        elif process == "worker":
            config_module = importlib.import_module(f"services.{name}.config")
            settings = [config_module.load_settings(environ)]
        elif process in SERVICES:  # a service's own command: `sistercities notifier mailbox`
            config_module = importlib.import_module(f"services.{process}.config")
            settings = [config_module.load_mailbox_settings(environ)]
        else:
            settings = [LauncherSettings.from_env(environ)]
            if process in ("relay", "migrate"):
                settings += [ServiceSettings.from_env(service, environ) for service in SERVICES]
        for each in settings:
            assert each.environment == "production", name
            assert str(each.data_dir) == config["DATA_DIR"], name
            if process != "migrate":
                assert not each.redis_url.startswith("unix://"), f"{name}: embedded Redis"
            # The mailbox never opens the database (an import-linter contract), so has no URL.
            if isinstance(each, ServiceSettings) and name != "mailbox":
                backend = make_url(each.database_url).get_backend_name()
                assert backend == "postgresql", f"{name}: {each.service} on {backend}"


def test_the_blank_secret_template_stops_the_processes_that_sign_links(deployments, config, secret):
    assert secret["SECRET_KEY"] == ""
    for name, load in (
        ("gateway", GatewaySettings.from_env),
        ("notifier", importlib.import_module("services.notifier.config").load_settings),
    ):
        with pytest.raises(ConfigError, match="SECRET_KEY"):
            load(container_environment(deployments[name], config, secret))
    load_mailbox_settings = importlib.import_module(
        "services.notifier.config"
    ).load_mailbox_settings
    with pytest.raises(ConfigError, match="UNSUBSCRIBE_KEY"):
        load_mailbox_settings(container_environment(deployments["mailbox"], config, secret))


def test_beat_runs_once(objects, deployments):
    beat = deployments["beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    scalers = [*of_kind(objects, "HorizontalPodAutoscaler").values()]
    scalers += of_kind(objects, "ScaledObject").values()
    assert all(scaler["spec"]["scaleTargetRef"]["name"] != "beat" for scaler in scalers)


def test_each_worker_kind_scales_on_its_own_queue(objects, deployments):
    scaled = of_kind(objects, "ScaledObject")
    auths = of_kind(objects, "TriggerAuthentication")
    targets = [obj["spec"]["scaleTargetRef"]["name"] for obj in scaled.values()]
    assert sorted(targets) == sorted(SERVICES)
    for scaled_object in scaled.values():
        service = scaled_object["spec"]["scaleTargetRef"]["name"]
        assert scaled_object["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        assert service in deployments
        [trigger] = scaled_object["spec"]["triggers"]
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == queue_for_task(f"{service}.ping_service")
        assert int(trigger["metadata"]["listLength"]) > 0
        assert trigger["authenticationRef"]["name"] in auths
        # Never to zero: a call from the gateway waits SERVICE_TIMEOUT, not a pod's start.
        assert scaled_object["spec"]["minReplicaCount"] >= 1


def test_autoscaled_deployments_leave_the_replica_count_to_their_scaler(objects, deployments):
    scaled = [
        obj["spec"]["scaleTargetRef"]["name"]
        for obj in objects
        if "scaleTargetRef" in obj.get("spec", {})
    ]
    for name in scaled:
        assert "replicas" not in deployments[name]["spec"], f"applying would reset {name}'s count"


def test_every_pod_has_resource_requests_and_a_memory_limit(workloads):
    for name, workload in workloads.items():
        resources = container(workload)["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name


def test_every_deployment_but_beat_has_a_disruption_budget_of_its_own(objects, deployments):
    """Beat has none: with one replica a budget could only block every drain or allow it."""
    budgets = of_kind(objects, "PodDisruptionBudget").values()
    for name, deployment in deployments.items():
        covering = [pdb for pdb in budgets if selects(pdb["spec"]["selector"], deployment)]
        assert len(covering) == (0 if name == "beat" else 1), name
    for pdb in budgets:
        selected = [d for d in deployments.values() if selects(pdb["spec"]["selector"], d)]
        assert len(selected) == 1, f"{pdb['metadata']['name']} selects {len(selected)}"


def test_the_gateway_is_served_ready_and_scaled_on_cpu(objects, deployments):
    gateway = deployments["gateway"]
    spec = container(gateway)
    routes = APIFlask("probes")
    routes.register_blueprint(health.bp)
    urls = routes.url_map.bind("localhost")
    readiness = spec["readinessProbe"]["httpGet"]["path"]
    liveness = spec["livenessProbe"]["httpGet"]["path"]
    assert urls.match(readiness, method="GET")[0] in ("health.readyz", "health.service_ready")
    assert readiness.startswith("/readyz")
    assert liveness == "/healthz" and urls.match(liveness, method="GET")[0] == "health.healthz"

    service = of_kind(objects, "Service")["gateway"]
    assert selects({"matchLabels": service["spec"]["selector"]}, gateway)
    ports = {port["name"] for port in spec["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= ports

    [hpa] = of_kind(objects, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "gateway",
    }
    assert [metric["resource"]["name"] for metric in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["minReplicas"] >= 2


def test_the_mailbox_takes_smtp_on_port_25_from_unprivileged_pods(
    objects, deployments, config, secret
):
    mailbox = deployments["mailbox"]
    spec = container(mailbox)
    environ = container_environment(mailbox, config, {**secret, "UNSUBSCRIBE_KEY": "k" * 64})
    settings = importlib.import_module("services.notifier.config").load_mailbox_settings(environ)
    assert (settings.mailbox_host, settings.mailbox_port) == ("0.0.0.0", 2525)
    [smtp] = spec["ports"]
    assert smtp["containerPort"] == settings.mailbox_port > 1024  # no capability to bind 25
    service = of_kind(objects, "Service")["mailbox"]
    assert selects({"matchLabels": service["spec"]["selector"]}, mailbox)
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(25, smtp["name"])]
    for probe in ("readinessProbe", "livenessProbe"):
        assert spec[probe]["tcpSocket"]["port"] == smtp["name"]
    # What it needs and nothing more: the broker, and the key that checks unsubscribe tokens
    # (not SECRET_KEY, which signs every link and session).
    given = {variable["name"] for variable in spec["env"] if "valueFrom" in variable}
    assert given == {"REDIS_URL", "UNSUBSCRIBE_KEY"}


def test_pods_run_unprivileged_on_a_read_only_root(workloads, config):
    for name, workload in workloads.items():
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        # The image's USER is a name, which the kubelet cannot check against root.
        assert pod["securityContext"]["runAsUser"] > 0, name
        security = container(workload)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        # What the processes write (DATA_DIR, temporary files) goes to emptyDirs.
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container(workload)["volumeMounts"]}
        for path in (config["DATA_DIR"], "/tmp"):
            assert "emptyDir" in volumes[mounts[path]], f"{name}: {path}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_the_same_objects(objects):
    built = subprocess.run(
        ["kubectl", "kustomize", str(FOLDER)], capture_output=True, text=True, check=True
    ).stdout
    applied = {(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(built) if o}
    expected = {(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] != "Secret"}
    assert applied == expected
