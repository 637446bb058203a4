"""The Kubernetes manifests stay true to the code: every process runs a real command with the
settings its code reads and validates, each worker kind scales on its real queue, beat runs
once, and every object is one the cluster's APIs know."""

from __future__ import annotations

import importlib
import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml
from apiflask import APIFlask
from sqlalchemy.engine import make_url

from services.gateway.config import GatewaySettings
from services.gateway.web import health
from shared.routing import BACKGROUND, INTERACTIVE, SERVICES, lane_queues
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
    "NetworkPolicy": "networking.k8s.io/v1",
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


# Each service's workers: a Deployment for each lane, named for the service (interactive) and
# `<service>-background`.
LANE_DEPLOYMENTS = {
    (service if lane == INTERACTIVE else f"{service}-{lane}"): (service, lane)
    for service in SERVICES
    for lane in (INTERACTIVE, BACKGROUND)
}


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
    assert set(deployments) == {*LANE_DEPLOYMENTS, "gateway", "beat", "relay", "mailbox"}
    expected = {
        "gateway": ["sistercities", "gateway"],
        "beat": ["sistercities", "beat"],
        "relay": ["sistercities", "relay"],
        "mailbox": ["sistercities", "notifier", "mailbox"],
        "migrate": ["sistercities", "migrate"],
        **{
            name: ["sistercities", "worker", service, "--lane", lane]
            for name, (service, lane) in LANE_DEPLOYMENTS.items()
        },
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


def test_workers_are_live_while_their_lane_answers_a_ping(deployments):
    for name, (service, lane) in LANE_DEPLOYMENTS.items():
        spec = container(deployments[name])
        for probe in ("startupProbe", "livenessProbe"):
            argv = spec[probe]["exec"]["command"]
            assert argv[:2] == ["sistercities", "ping"] and argv[-1] == service, argv
            pinged = argv[argv.index("--lane") + 1] if "--lane" in argv else INTERACTIVE
            assert pinged == lane, (name, argv)
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
            service = container(workload)["command"][2]
            config_module = importlib.import_module(f"services.{service}.config")
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
    assert sorted(targets) == sorted(LANE_DEPLOYMENTS)
    for scaled_object in scaled.values():
        name = scaled_object["spec"]["scaleTargetRef"]["name"]
        assert scaled_object["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        assert name in deployments
        triggers = scaled_object["spec"]["triggers"]
        # Each queue the lane's workers consume, and only those.
        listed = [trigger["metadata"]["listName"] for trigger in triggers]
        assert listed == list(lane_queues(*LANE_DEPLOYMENTS[name]))
        for trigger in triggers:
            assert trigger["type"] == "redis"
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


def test_each_process_holds_only_its_own_services_database_url(workloads):
    """A worker holds the role of its own database and no other: the blog worker, which parses
    hostile feeds, cannot open the subscribers' database. The relay reads every outbox and the
    migration migrates every database; the gateway, beat and the mailbox open none."""
    every = {f"{service.upper()}_DATABASE_URL" for service in SERVICES}
    expected = {
        **{
            name: {f"{service.upper()}_DATABASE_URL"}
            for name, (service, _lane) in LANE_DEPLOYMENTS.items()
        },
        "relay": every,
        "migrate": every,
    }
    for name, workload in workloads.items():
        given = {variable["name"] for variable in container(workload).get("env", [])}
        assert given & every == expected.get(name, set()), name


def test_each_services_database_url_names_a_role_of_its_own(secret):
    """One role per service (deploy/postgres-init.sql): a URL of one service opens no other's
    database, whatever the operator puts in the passwords."""
    for service in SERVICES:
        url = make_url(secret[f"{service.upper()}_DATABASE_URL"])
        assert (url.username, url.database) == (service, service), url
    passwords = [make_url(secret[f"{s.upper()}_DATABASE_URL"]).password for s in SERVICES]
    assert len(set(passwords)) == len(SERVICES), "one password for every role"


def test_redis_asks_every_client_for_a_password(secret, config, workloads):
    url = urlsplit(secret["REDIS_URL"])
    assert url.scheme in ("redis", "rediss") and url.password, "REDIS_URL carries no password"
    assert secret["keda-redis-password"], "KEDA could not read the queues"
    assert secret["keda-redis-username"] == url.username
    # And the processes refuse a Redis without one, so a blank password cannot slip through.
    for name, workload in workloads.items():
        if name in ("migrate", "mailbox"):
            continue
        environ = container_environment(workload, config, {**secret, "SECRET_KEY": "k" * 40})
        environ["REDIS_URL"] = "redis://redis.sistercities.svc:6379/0"
        with pytest.raises(ConfigError, match="REDIS_URL must carry a password"):
            LauncherSettings.from_env(environ)


def test_the_gateway_behind_its_ingress_sees_each_visitors_address(deployments, config, secret):
    environ = container_environment(
        deployments["gateway"], config, {**secret, "SECRET_KEY": "k" * 40}
    )
    assert GatewaySettings.from_env(environ).trusted_proxies == 1


# What NetworkPolicies let through, as the API documents it: a pod no policy selects in a
# direction is open that way; a selected one takes only what some rule of those policies
# admits. Both ends must agree: the sender's egress and the receiver's ingress.
@dataclass(frozen=True)
class Pod:
    labels: tuple[tuple[str, str], ...]
    namespace: str = NAMESPACE


def pod(namespace: str = NAMESPACE, **labels: str) -> Pod:
    return Pod(tuple(labels.items()), namespace)


REDIS = pod(**{"app.kubernetes.io/name": "redis"})
POSTGRESQL = pod(**{"app.kubernetes.io/name": "postgresql"})
INGRESS_CONTROLLER = pod("ingress-nginx", **{"app.kubernetes.io/name": "ingress-nginx"})
KEDA_OPERATOR = pod("keda", app="keda-operator")
KUBE_DNS = pod("kube-system", **{"k8s-app": "kube-dns"})
# Something else that runs in the namespace (another team's pod, a debugging shell).
STRANGER = pod(app="debug-shell")
INTERNET = "93.184.216.34"
INTERNET_V6 = "2606:2800:220:1::1"
PRIVATE = ("10.0.0.7", "172.16.3.4", "192.168.1.1", "169.254.169.254", "127.0.0.1", "fd00::1")


def matches(selector: dict, labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator in ("In", "NotIn"):
            held = (labels.get(key) in expression["values"]) == (operator == "In")
        else:
            held = (key in labels) == (operator == "Exists")
        if not held:
            return False
    return True


def peer_admits(peer: dict, other: Pod | str) -> bool:
    if "ipBlock" in peer:
        if not isinstance(other, str):
            return False  # pods are found by their labels, never by an address range here
        address, block = ipaddress.ip_address(other), peer["ipBlock"]
        within = [ipaddress.ip_network(block["cidr"])]
        excepted = [ipaddress.ip_network(cidr) for cidr in block.get("except", [])]
        inside = any(address.version == net.version and address in net for net in within)
        return inside and not any(address.version == n.version and address in n for n in excepted)
    if isinstance(other, str):
        return False
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": other.namespace}
        if not matches(peer["namespaceSelector"], namespace_labels):
            return False
    elif other.namespace != NAMESPACE:
        return False
    return matches(peer.get("podSelector", {}), dict(other.labels))


def rule_admits(rule: dict, peers: str, other: Pod | str, port: int) -> bool:
    ports = rule.get("ports")
    if ports and not any(p["port"] == port and p.get("protocol", "TCP") == "TCP" for p in ports):
        return False
    return not rule.get(peers) or any(peer_admits(peer, other) for peer in rule[peers])


def lets_through(
    policies: list[dict], direction: str, at: Pod, other: Pod | str, port: int
) -> bool:
    if at.namespace != NAMESPACE:
        return True  # none of our policies hold there
    selecting = [
        policy["spec"]
        for policy in policies
        if direction in policy["spec"]["policyTypes"]
        and matches(policy["spec"]["podSelector"], dict(at.labels))
    ]
    peers = "from" if direction == "Ingress" else "to"
    return not selecting or any(
        rule_admits(rule, peers, other, port)
        for spec in selecting
        for rule in spec.get(direction.lower(), [])
    )


@pytest.fixture(scope="module")
def reach(objects, workloads):
    """reach(source, destination, port): may the connection be made? A workload's name stands
    for its pods; an address string for a host outside the cluster."""
    policies = list(of_kind(objects, "NetworkPolicy").values())

    def as_pod(end: Pod | str) -> Pod | str:
        if isinstance(end, str) and end in workloads:
            labels = workloads[end]["spec"]["template"]["metadata"]["labels"]
            return Pod(tuple(labels.items()))
        return end

    def connects(source: Pod | str, destination: Pod | str, port: int) -> bool:
        source, destination = as_pod(source), as_pod(destination)
        sends = isinstance(source, str) or lets_through(
            policies, "Egress", source, destination, port
        )
        takes = isinstance(destination, str) or lets_through(
            policies, "Ingress", destination, source, port
        )
        return sends and takes

    return connects


def test_a_default_deny_policy_closes_every_pod_of_the_namespace(objects):
    closing = [
        policy
        for policy in of_kind(objects, "NetworkPolicy").values()
        if policy["spec"]["podSelector"] == {}
        and set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not policy["spec"].get("ingress")
        and not policy["spec"].get("egress")
    ]
    assert closing, "no default-deny NetworkPolicy"


def test_only_the_blogs_background_worker_reaches_the_internet(reach, workloads):
    for name in workloads:
        fetches = name == "blog-background"
        for address in (INTERNET, INTERNET_V6):
            assert reach(name, address, 443) == fetches, (name, address)
        assert reach(name, INTERNET, 8080) == fetches, name
        # Feeds never on private, loopback or link-local addresses: the cloud's metadata
        # service (169.254.169.254) least of all.
        for address in PRIVATE:
            assert not reach(name, address, 80), (name, address)
        assert reach(name, KUBE_DNS, 53), f"{name} cannot resolve names"


def test_the_notifiers_background_worker_reaches_mail_servers_on_submission_ports_only(reach):
    for port in (25, 465, 587):
        assert reach("notifier-background", "203.0.113.9", port)
        # The interactive lane takes visitors' input and sends no mail.
        assert not reach("notifier", "203.0.113.9", port)
    assert not reach("notifier-background", "203.0.113.9", 443)


def test_only_our_pods_that_need_them_reach_redis_and_postgresql(reach, workloads):
    opens_a_database = {*LANE_DEPLOYMENTS, "relay", "migrate"}
    for name in workloads:
        assert reach(name, REDIS, 6379) == (name != "migrate"), name
        assert reach(name, POSTGRESQL, 5432) == (name in opens_a_database), name
    assert reach(KEDA_OPERATOR, REDIS, 6379), "KEDA cannot read the queues' lengths"
    for outsider in (STRANGER, INGRESS_CONTROLLER, pod("default", app="anything"), INTERNET):
        assert not reach(outsider, REDIS, 6379), outsider
        assert not reach(outsider, POSTGRESQL, 5432), outsider


def test_the_gateway_is_reached_from_the_ingress_and_the_mailbox_by_mail(reach, workloads):
    assert reach(INGRESS_CONTROLLER, "gateway", 8000)
    assert reach(INTERNET, "mailbox", 2525)
    for outsider in (STRANGER, INTERNET, pod("default", app="anything")):
        assert not reach(outsider, "gateway", 8000), outsider
    # Nothing else takes connections from anywhere.
    for name in set(workloads) - {"gateway", "mailbox"}:
        for source in (INTERNET, INGRESS_CONTROLLER, STRANGER, "gateway", "blog"):
            assert not reach(source, name, 8000), (source, name)
