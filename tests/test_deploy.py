"""deploy/ validated as far as the tools here allow: systemd units with `systemd-analyze verify`, Kubernetes
manifests with kubernetes-validate's bundled schemas (strict), compose files against the compose-spec
JSON schema vendored by check-jsonschema, every fleetmon TOML through fleetmon's own strict loader, and
every file a compose file mounts present in the repository. Alertmanager's configuration with `amtool`
(check-config, and routing with `amtool config routes test`) and with the real Alertmanager, which is
sent alerts and must hold back a site's per-miner alerts while that site's collector is down.

Not validated here (no daemon or cluster): that the images pull and start, and that the containers talk
to each other; the live dashboard test runs the same Prometheus configuration against a real service.
The Mosquitto configuration runs in tests/test_mosquitto_acl.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from conftest import ROOT, services_required
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from fleetmon.cli.broker import broker_from_args
from fleetmon.cli.main import build_parser
from fleetmon.config import Settings, load_settings, read_toml
from fleetmon.sinks.topics import BrokerUrl

DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
COMPOSE_FILES = [
    DEPLOY / "compose" / "compose.yml",
    DEPLOY / "multisite" / "core.yml",
    DEPLOY / "multisite" / "site.yml",
]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"fleetmon/fleetmon:{VERSION}"  # pinned to the release, never :latest
ALERTMANAGER_FILES = sorted(DEPLOY.rglob("alertmanager.yml"))
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
RULES_FILE = DEPLOY / "prometheus" / "rules" / "fleetmon.rules.yml"
AM_HOST = "127.74.1.1"  # this module's loopback address (127.74.0.0/16 belongs to the i16 tests)
BIN = Path(sys.executable).parent
# Mount sources the operator creates (secrets are never in the repository).
OPERATOR_MADE = re.compile(r"^\./secrets/")


STAND_IN_PASSWORD = "pw-from-the-file"


def _with_stand_in_passwords(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fleetmon TOML whose credential profiles point at stand-in password files (or variables) here:
    the Secret's or the compose secret's files exist only in the deployment."""
    for name, profile in tomllib.loads(text).get("credentials", {}).items():
        if "password_env" in profile:
            monkeypatch.setenv(profile["password_env"], STAND_IN_PASSWORD)
        else:
            stand_in = tmp_path / f"password-{name}"
            stand_in.write_text(STAND_IN_PASSWORD + "\n")
            text = text.replace(f'"{profile["password_file"]}"', f'"{stand_in}"')
    return text


def _missing_tool(message: str) -> None:
    if services_required():
        pytest.fail(message + " and FLEETMON_REQUIRE_SERVICES=1")
    pytest.skip(message)


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# ---- systemd ---------------------------------------------------------------------------------------


def test_systemd_units_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        _missing_tool("systemd-analyze is not installed")
    assert {u.name for u in UNITS} == {
        "fleetmon-serve.service",
        "fleetmon-collect@.service",
        "fleetmon-ingest@.service",
    }
    instances = []
    for unit in UNITS:
        # verify checks that ExecStart's binary exists; this machine has fleetmon only in the venv.
        text = unit.read_text().replace("/usr/local/bin/fleetmon", str(BIN / "fleetmon"))
        name = unit.name.replace("@.", "@site1.")
        (tmp_path / name).write_text(text)
        instances.append(str(tmp_path / name))
    result = subprocess.run(
        ["systemd-analyze", "verify", *instances], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "fleetmon" not in result.stderr, result.stderr  # warnings about our units


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_units_are_hardened(unit: Path) -> None:
    text = unit.read_text()
    for line in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet="):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), f"{unit.name} lacks {line}"
    assert re.search(r"^StateDirectory=\S+", text, re.M)
    assert "AmbientCapabilities" not in text  # nothing binds a privileged port


# ---- Kubernetes ------------------------------------------------------------------------------------


def test_kubernetes_manifests_validate_strictly() -> None:
    if importlib.util.find_spec("kubernetes_validate") is None:
        _missing_tool("kubernetes-validate is not installed")
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "-k", "1.29.0", *map(str, MANIFESTS)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_layout_has_every_piece() -> None:
    objects = [doc for path in MANIFESTS for doc in _documents(path)]
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in objects}
    assert {
        ("Deployment", "fleetmon-api"),
        ("Deployment", "fleetmon-ingest"),
        ("Deployment", "fleetmon-collector-tx1"),
        ("Service", "fleetmon-api"),
        ("ConfigMap", "fleetmon-config"),
        ("PodDisruptionBudget", "fleetmon-api"),
    } <= kinds
    deployments = {doc["metadata"]["name"]: doc for doc in objects if doc["kind"] == "Deployment"}
    api = deployments["fleetmon-api"]["spec"]["template"]["spec"]["containers"][0]
    # Readiness may fail while the database is down; liveness must not, or a database blip restarts
    # every API pod.
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/livez"
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            if container["image"].startswith("fleetmon/"):
                assert container["image"] == IMAGE, name
            else:  # third-party images pinned to a release too
                assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)+", container["image"]), (name, container["image"])
            for variable in container.get("env", []):  # secrets by reference only
                assert "value" not in variable or "PASSWORD" not in variable["name"], name
                if variable["name"] in {"PGPASSWORD", "FLEETMON_ANTMINER_PASSWORD"}:
                    assert "secretKeyRef" in variable["valueFrom"], name


def test_configmap_toml_loads_with_fleetmons_strict_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (configmap,) = _documents(DEPLOY / "kubernetes" / "configmap.yaml")
    path = tmp_path / "fleetmon.toml"
    path.write_text(configmap["data"]["fleetmon.toml"])
    monkeypatch.setenv(read_toml(path)["service"]["session_secret_env"], "s" * 32)
    path.write_text(_with_stand_in_passwords(path.read_text(), tmp_path, monkeypatch))
    settings = load_settings(path)
    assert settings.reads_only and settings.mqtt.url is not None
    broker = settings.mqtt_broker()
    assert broker is not None and broker.password == STAND_IN_PASSWORD, "the broker password is the file's"


# ---- compose ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_compose_file_matches_the_compose_spec_schema(compose: Path) -> None:
    if importlib.util.find_spec("check_jsonschema") is None:
        _missing_tool("check-jsonschema (which vendors the compose-spec schema) is not installed")
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(compose)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_file_a_compose_file_mounts_is_in_the_repository(compose: Path) -> None:
    doc = yaml.safe_load(compose.read_text())
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith("."):
                assert source in doc.get("volumes", {}), f"{name}: undeclared volume {source}"
            elif not OPERATOR_MADE.match(source):
                assert (compose.parent / source).exists(), f"{name}: {source} is not in the repository"
        build = service.get("build")
        if build:
            assert (compose.parent / build["context"] / build["dockerfile"]).is_file()
        if service.get("image", "").startswith("fleetmon/"):
            assert service["image"] == IMAGE
        elif service.get("image"):
            assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)*", service["image"]), (name, service["image"])


def test_single_site_compose_runs_the_five_services_with_their_mounts() -> None:
    doc = yaml.safe_load((DEPLOY / "compose" / "compose.yml").read_text())
    services = doc["services"]
    assert set(services) == {"fleetmon", "postgres", "mosquitto", "prometheus", "alertmanager", "grafana"}
    grafana = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert grafana["/etc/grafana/provisioning"] == "../../dashboards/provisioning"
    assert grafana["/var/lib/grafana/dashboards/fleetmon"] == "../../dashboards/json"
    assert services["grafana"]["environment"]["FLEETMON_PROMETHEUS_URL"] == "http://prometheus:9090"
    prometheus = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert prometheus["/etc/prometheus/prometheus.yml"] == "../prometheus/prometheus.yml"
    assert prometheus["/etc/prometheus/rules"] == "../prometheus/rules"
    assert "/etc/prometheus/secrets/fleetmon-token" in prometheus
    assert "fleetmon:8000" in (DEPLOY / "prometheus" / "prometheus.yml").read_text()


@pytest.mark.parametrize(
    "toml",
    [
        DEPLOY / "compose" / "fleetmon.toml",
        DEPLOY / "multisite" / "api.toml",
        DEPLOY / "fleetmon.example.toml",
    ],
    ids=lambda p: p.name,
)
def test_compose_toml_loads_with_fleetmons_strict_loader(
    toml: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = read_toml(toml)
    for pdu in data.get("pdus", []):
        monkeypatch.setenv(pdu["community_env"], "x")
    if "session_secret_env" in data.get("service", {}):
        monkeypatch.setenv(data["service"]["session_secret_env"], "s" * 32)
    text = _with_stand_in_passwords(toml.read_text(), tmp_path, monkeypatch)
    for target in data.get("collector", {}).get("targets", []):
        if target.startswith("@"):  # a host path (e.g. /etc/fleetmon/targets.txt): a stand-in file here
            stand_in = tmp_path / "targets.txt"
            stand_in.write_text("10.0.0.1\n")
            text = text.replace(target, f"@{stand_in}")
    toml = tmp_path / toml.name
    toml.write_text(text)
    settings = load_settings(toml)
    assert isinstance(settings, Settings)
    url = settings.storage.url_value()
    if url is not None and "@" in url:
        assert ":" not in url.split("//", 1)[1].split("@")[0], "a password inlined in storage.url"


def test_multisite_prometheus_differs_from_the_single_site_one_only_in_its_target() -> None:
    single = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    multi = yaml.safe_load((DEPLOY / "multisite" / "prometheus.yml").read_text())
    single["scrape_configs"][0]["static_configs"] = multi["scrape_configs"][0]["static_configs"]
    assert single == multi


def test_dockerfile_builds_a_non_root_python_311_image() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^RUN pip install \.", text, re.M)
    # ... with the exact versions of deploy/constraints.txt.
    assert re.search(r"^COPY deploy/constraints\.txt \./constraints\.txt$", text, re.M)
    assert re.search(r"^RUN pip install \. -c constraints\.txt ", text, re.M)
    assert not re.search(r"fleetmon/fleetmon:latest", text)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0")), user


# ---- pinned images, migration, scrape annotations ----------------------------------------------------


def test_no_shipped_file_runs_an_unpinned_image() -> None:
    found = [
        (path, image)
        for path in [*MANIFESTS, *COMPOSE_FILES]
        for image in re.findall(r"^\s*image:\s*(\S+)", path.read_text(), flags=re.M)
    ]
    assert len({path for path, _ in found}) >= len(COMPOSE_FILES) + 4
    for path, image in found:
        assert ":" in image and not image.endswith(":latest"), (path.name, image)
        if image.startswith("fleetmon/"):
            assert image == IMAGE, (path.name, image)


def test_a_job_migrates_the_schema_with_the_release_image() -> None:
    objects = [doc for path in MANIFESTS for doc in _documents(path)]
    jobs = [doc for doc in objects if doc["kind"] == "Job"]
    migrations = [
        job
        for job in jobs
        if job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["db", "upgrade"]
    ]
    assert len(migrations) == 1, "one Job runs `fleetmon db upgrade`"
    (job,) = migrations
    # A Job's pod template is immutable: the release is in its name, so each release applies a new one.
    assert job["metadata"]["name"].endswith(VERSION.replace(".", "-"))
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in {"OnFailure", "Never"}
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert "--db" in container["args"]
    assert {v["name"] for v in container["env"]} == {"PGPASSWORD"}
    assert "secretKeyRef" in container["env"][0]["valueFrom"]
    # Nobody else migrates: concurrent upgrades from several replicas would race.
    for doc in objects:
        if doc["kind"] == "Deployment":
            pod = doc["spec"]["template"]["spec"]
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                assert "upgrade" not in container.get("args", []), doc["metadata"]["name"]


def test_fleetmon_pods_carry_scrape_annotations_for_a_port_they_expose() -> None:
    objects = [doc for path in MANIFESTS for doc in _documents(path)]
    deployments = {doc["metadata"]["name"]: doc for doc in objects if doc["kind"] == "Deployment"}
    for name in ("fleetmon-api", "fleetmon-ingest", "fleetmon-collector-tx1", "fleetmon-alertmanager"):
        template = deployments[name]["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/path"] == "/metrics", name
        ports = {port["containerPort"] for c in template["spec"]["containers"] for port in c.get("ports", [])}
        assert int(annotations["prometheus.io/port"]) in ports, name


def test_collector_and_ingester_read_the_broker_password_from_a_secret_volume_and_serve_metrics(
    tmp_path: Path,
) -> None:
    objects = [doc for path in MANIFESTS for doc in _documents(path)]
    deployments = {doc["metadata"]["name"]: doc for doc in objects if doc["kind"] == "Deployment"}
    for name, user in (("fleetmon-ingest", "ingest"), ("fleetmon-collector-tx1", "tx1")):
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        args = container["args"]
        password_file = _secret_file(pod, container, args[args.index("--mqtt-password-file") + 1])
        stand_in = tmp_path / f"{name}-password"
        stand_in.write_text(STAND_IN_PASSWORD + "\n")
        argv = [stand_in.as_posix() if arg == password_file else arg for arg in args]
        broker = _broker_login(argv, tmp_path)
        assert (broker.username, broker.password) == (user, STAND_IN_PASSWORD), name
        assert all("MQTT" not in variable["name"] for variable in container.get("env", [])), name
        listen = args[args.index("--metrics-listen") + 1]
        assert int(listen.rsplit(":", 1)[1]) in {port["containerPort"] for port in container["ports"]}, name


def test_api_replicas_read_the_broker_password_from_a_secret_volume() -> None:
    objects = [doc for path in MANIFESTS for doc in _documents(path)]
    (api,) = (
        doc for doc in objects if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "fleetmon-api"
    )
    pod = api["spec"]["template"]["spec"]
    (configmap,) = _documents(DEPLOY / "kubernetes" / "configmap.yaml")
    toml = tomllib.loads(configmap["data"]["fleetmon.toml"])
    profile = toml["credentials"][toml["mqtt"]["credential_profile"]]
    assert "password_env" not in profile, "the broker password is a file, not an environment variable"
    _secret_file(pod, pod["containers"][0], profile["password_file"])


def _secret_file(pod: dict[str, Any], container: dict[str, Any], path: str) -> str:
    """`path`, after checking that it lies in a Secret volume the container mounts read-only."""
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        if path.startswith(mount["mountPath"].rstrip("/") + "/"):
            assert mount.get("readOnly") is True, path
            secret = volumes[mount["name"]]["secret"]
            item = path[len(mount["mountPath"].rstrip("/")) + 1 :]
            assert item in {i["path"] for i in secret["items"]}, f"{path} is not an item of the Secret volume"
            # Readable through fsGroup, by no other user (the pod runs as a non-root user).
            assert secret["defaultMode"] & 0o007 == 0 and pod["securityContext"]["fsGroup"], path
            return path
    raise AssertionError(f"{path} is in no Secret volume of the pod")


def _broker_login(argv: list[str], tmp_path: Path) -> BrokerUrl:
    """The broker login `fleetmon ARGV` would use, parsed by fleetmon's own parser and flags."""
    argv = [f"@{tmp_path / 'targets.txt'}" if arg.startswith("@") else arg for arg in argv]
    (tmp_path / "targets.txt").write_text("10.0.0.1\n")
    args = build_parser(argv[0]).parse_args(argv)
    broker = broker_from_args(args)
    assert urlsplit(args.mqtt).password is None and "@" not in args.mqtt, (
        f"credentials in the URL {args.mqtt}"
    )
    return broker


# Broker and database URLs carrying a password (`scheme://user:secret@host`), however the secret is
# written (literally or as ${VAR} / $(VAR) interpolation).
PASSWORD_IN_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/@:\"']+:[^\s/@\"']+@", re.I)
# A command-line option that takes a password itself, rather than naming its variable or file.
PASSWORD_ARGUMENT = re.compile(
    r"(?<![\w-])-{1,2}[\w-]*(?:password|passwd|secret)(?![\w-]*-(?:env|file)\b)[\w-]*", re.I
)
SHIPPED_TEXT = sorted(
    path
    for path in DEPLOY.rglob("*")
    if path.is_file()
    and path.suffix in {".service", ".yaml", ".yml", ".toml", ".conf", ".cfg", ".md", ".example"}
)


@pytest.mark.parametrize("path", SHIPPED_TEXT, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_no_deploy_file_puts_a_password_in_a_url_or_a_command_line(path: Path) -> None:
    text = path.read_text()
    assert not PASSWORD_IN_URL.search(text), f"{path.name}: {PASSWORD_IN_URL.search(text)}"
    commands: list[str] = []
    if path.suffix == ".service":
        commands = re.findall(r"^ExecStart\S*=(.*)$", text, flags=re.M)
    elif path.suffix in {".yaml", ".yml"}:
        for doc in _documents(path):
            commands += [" ".join(map(str, c)) for c in _commands_in(doc)]
    for command in commands:
        assert not PASSWORD_ARGUMENT.search(command), f"{path.name}: {command}"
        assert not re.search(r"\$[{(]\w*(?:PASSWORD|SECRET)", command), (
            f"{path.name}: a secret in argv: {command}"
        )


def _commands_in(node: Any) -> Iterator[list[Any]]:
    """Every `command:` and `args:` list in a YAML document (compose services, Kubernetes containers)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"command", "args"} and isinstance(value, list):
                yield value
            else:
                yield from _commands_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from _commands_in(item)


def test_the_password_checks_catch_what_older_deploy_files_did() -> None:
    assert PASSWORD_IN_URL.search("--mqtt mqtts://tx1:${MQTT_PASSWORD}@core.example.net:8883")
    assert PASSWORD_IN_URL.search("mqtt://ingest:hunter2@mosquitto:1883")
    assert not PASSWORD_IN_URL.search("postgresql+psycopg://fleetmon@postgres:5432/fleetmon")
    assert not PASSWORD_IN_URL.search("mqtts://core.example.net:8883")
    assert PASSWORD_ARGUMENT.search("mosquitto_pub --pw x") is None  # a pattern, not a list of every tool
    assert PASSWORD_ARGUMENT.search("fleetmon collect --mqtt-password hunter2")
    assert PASSWORD_ARGUMENT.search("fleetmon serve --session-secret abc")
    assert not PASSWORD_ARGUMENT.search("collect --mqtt-password-file %d/mqtt-password --web-password-env X")


@pytest.mark.parametrize("unit", [u for u in UNITS if "@" in u.name], ids=lambda u: u.name)
def test_systemd_units_hand_the_broker_password_over_as_a_credential(unit: Path, tmp_path: Path) -> None:
    text = unit.read_text()
    (credential,) = re.findall(r"^LoadCredential=([\w.-]+):(/\S+)$", text, flags=re.M)
    name, source = credential
    assert source.startswith("/etc/fleetmon/credentials/"), source
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", text, flags=re.M)
    credentials = tmp_path / "credentials"  # what systemd makes of %d
    credentials.mkdir()
    (credentials / name).write_text(STAND_IN_PASSWORD + "\n")
    collector = "collect@" in unit.name
    specifiers = {"%i": "tx1" if collector else "1", "%H": "host1", "%d": str(credentials)}
    variables = {"FLEETMON_MQTT_URL": "mqtts://core.example.net:8883", "FLEETMON_DB_URL": "postgresql://db/x"}
    argv = []
    for word in shlex.split(exec_start)[1:]:
        expanded = word
        for key, value in specifiers.items():
            expanded = expanded.replace(key, value)
        argv.append(re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], expanded))
    broker = _broker_login(argv, tmp_path)
    expected_user = "tx1" if collector else "ingest"
    assert (broker.username, broker.password) == (expected_user, STAND_IN_PASSWORD)
    # The broker address in the environment file is documented without credentials.
    assert not re.search(r"FLEETMON_MQTT_URL=\S*@", text)


# ---- Alertmanager ------------------------------------------------------------------------------------


def _amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        _missing_tool("amtool is not installed (apt-get install prometheus-alertmanager)")
    assert path is not None
    return path


def _amtool_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_amtool(), *args], capture_output=True, text=True, timeout=60, check=False)


def _route(*labels: str) -> str:
    """The receiver Alertmanager picks for an alert with these labels (`amtool config routes test`)."""
    result = _amtool_run("config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def _per_miner_alerts() -> set[str]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    (group,) = [g for g in groups if g["name"] == "fleetmon-miner-alerts"]
    return {rule["alert"] for rule in group["rules"]}


def test_every_alertmanager_config_passes_amtool_check_config() -> None:
    assert ALERTMANAGER_CONFIG in ALERTMANAGER_FILES
    for path in ALERTMANAGER_FILES:
        result = _amtool_run("check-config", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


def test_amtool_check_config_rejects_an_unknown_field(tmp_path: Path) -> None:
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(ALERTMANAGER_CONFIG.read_text().replace("group_wait: 30s", "group_wiat: 30s", 1))
    assert broken.read_text() != ALERTMANAGER_CONFIG.read_text()
    assert _amtool_run("check-config", str(broken)).returncode != 0


def test_the_commented_receiver_examples_are_valid_alertmanager_config(tmp_path: Path) -> None:
    text = ALERTMANAGER_CONFIG.read_text()
    block = text.split("# BEGIN EXAMPLES\n", 1)[1].split("# END EXAMPLES", 1)[0]
    examples = "\n".join(line[1:] for line in block.splitlines())
    receivers = yaml.safe_load(examples)
    assert {"email_configs", "slack_configs", "telegram_configs"} <= {k for r in receivers for k in r}
    with_examples = tmp_path / "alertmanager.yml"
    with_examples.write_text(text + examples + "\n")  # the list continues `receivers:`, the last key
    result = _amtool_run("check-config", str(with_examples))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(yaml.safe_load(text)['receivers']) + len(receivers)} receivers" in result.stdout


def test_kubernetes_alertmanager_config_is_the_shipped_file() -> None:
    (configmap,) = [
        doc for doc in _documents(DEPLOY / "kubernetes" / "alertmanager.yaml") if doc["kind"] == "ConfigMap"
    ]
    assert configmap["data"]["alertmanager.yml"] == ALERTMANAGER_CONFIG.read_text()


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("alertname=MinerDown", "severity=warning", "site=tx1", "ip=10.20.0.11"), "floor-tx1"),
        (("alertname=FanFailure", "severity=warning", "site=ga2", "ip=10.30.0.7"), "floor"),
        (("alertname=HotChips", "severity=critical", "site=tx1", "ip=10.20.0.11"), "oncall"),
        (("alertname=CollectorDown", "severity=critical", "site=tx1"), "oncall"),
        (("alertname=ChinaDependencyHigh", "severity=info"), "procurement"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, tuple) else value,
)
def test_alerts_route_by_severity_and_site(labels: tuple[str, ...], receiver: str) -> None:
    assert _route(*labels) == receiver


def test_every_severity_the_rules_use_has_a_route_of_its_own() -> None:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    severities = {r["labels"]["severity"] for g in groups for r in g["rules"] if "alert" in r}
    receivers = {severity: _route(f"severity={severity}", "site=nowhere") for severity in severities}
    assert receivers == {"critical": "oncall", "warning": "floor", "info": "procurement"}


def test_collector_down_inhibits_exactly_the_per_miner_alerts_of_its_own_site() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    per_miner = _per_miner_alerts()
    assert {"MinerDown", "HashrateDrop", "PoolDown"} <= per_miner
    (rule,) = [
        rule for rule in config["inhibit_rules"] if any("CollectorDown" in m for m in rule["source_matchers"])
    ]
    assert rule["equal"] == ["site"]
    (source,) = rule["source_matchers"]
    source_names = set(re.fullmatch(r'alertname=~"(.+)"', source).group(1).split("|"))  # type: ignore[union-attr]
    assert source_names == {"CollectorDown", "CollectorStale"}
    (target,) = rule["target_matchers"]
    target_names = set(re.fullmatch(r'alertname=~"(.+)"', target).group(1).split("|"))  # type: ignore[union-attr]
    assert target_names == per_miner, "the inhibited alerts must be the rules file's per-miner group"


# The real Alertmanager, sent alerts over its API: inhibition as it behaves, not as the file reads.


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((AM_HOST, 0))
        return int(sock.getsockname()[1])


def _api(url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    return json.loads(text) if text else None


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """The shipped configuration in a real Alertmanager on a free port; yields its API base URL."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        _missing_tool("alertmanager is not installed (apt-get install prometheus-alertmanager)")
    assert binary is not None
    port = _free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address={AM_HOST}:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://{AM_HOST}:{port}/api/v2"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _api(f"{base}/status")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("alertmanager did not start:\n" + (tmp_path / "alertmanager.log").read_text())
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, "severity": severity, **labels}, "annotations": {"summary": name}}


def _states(base: str) -> dict[tuple[str, str, str], str]:
    """(alertname, site, ip) -> Alertmanager's state of each alert it holds (active or suppressed)."""
    return {
        (a["labels"]["alertname"], a["labels"].get("site", ""), a["labels"].get("ip", "")): a["status"][
            "state"
        ]
        for a in _api(f"{base}/alerts")
    }


def _wait_for_states(base: str, expected: dict[tuple[str, str, str], str]) -> dict[tuple[str, str, str], str]:
    deadline = time.monotonic() + 15
    states = _states(base)
    while states != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        states = _states(base)
    return states


def test_real_alertmanager_holds_back_a_down_sites_miner_alerts_only(alertmanager: str) -> None:
    miners = [
        _alert("MinerDown", "warning", site="tx1", ip="10.20.0.11", model="Antminer S19 Pro"),
        _alert("PoolDown", "warning", site="tx1", ip="10.20.0.12", model="Antminer S19 Pro"),
        _alert("MinerDown", "warning", site="ga2", ip="10.30.0.5", model="Whatsminer M30S+"),
    ]
    _api(f"{alertmanager}/alerts", miners)
    before = {
        ("MinerDown", "tx1", "10.20.0.11"): "active",
        ("PoolDown", "tx1", "10.20.0.12"): "active",
        ("MinerDown", "ga2", "10.30.0.5"): "active",
    }
    assert _wait_for_states(alertmanager, before) == before
    _api(f"{alertmanager}/alerts", [_alert("CollectorDown", "critical", site="tx1", reason="stale"), *miners])
    during = {
        ("CollectorDown", "tx1", ""): "active",
        ("MinerDown", "tx1", "10.20.0.11"): "suppressed",
        ("PoolDown", "tx1", "10.20.0.12"): "suppressed",
        ("MinerDown", "ga2", "10.30.0.5"): "active",
    }
    assert _wait_for_states(alertmanager, during) == during
    inhibited_by = {a["labels"]["ip"]: a["status"]["inhibitedBy"] for a in _api(f"{alertmanager}/alerts")
                    if a["labels"]["alertname"] != "CollectorDown"}  # fmt: skip
    assert inhibited_by["10.30.0.5"] == []
    assert inhibited_by["10.20.0.11"] and inhibited_by["10.20.0.12"]


@pytest.mark.parametrize("compose", COMPOSE_FILES[:2], ids=lambda p: str(p.relative_to(DEPLOY)))
def test_compose_cores_run_alertmanager_and_a_locked_down_broker(compose: Path) -> None:
    services = yaml.safe_load(compose.read_text())["services"]
    alertmanager = {v.split(":")[1]: v.split(":")[0] for v in services["alertmanager"]["volumes"]}
    assert alertmanager["/etc/alertmanager/alertmanager.yml"] == "../alertmanager/alertmanager.yml"
    assert "alertmanager" in services["prometheus"]["depends_on"]
    mosquitto = {v.split(":")[1]: v.split(":")[0] for v in services["mosquitto"]["volumes"]}
    assert mosquitto["/mosquitto/config/mosquitto.conf"] == "../mosquitto/mosquitto.conf"
    assert mosquitto["/mosquitto/config/acl"] == "../mosquitto/acl"
    assert OPERATOR_MADE.match(mosquitto["/mosquitto/config/passwd"])  # never in the repository
    assert OPERATOR_MADE.match(mosquitto["/mosquitto/certs"])
    assert "8883:8883" in services["mosquitto"]["ports"]


def test_multisite_services_log_in_to_the_broker_as_their_acl_users() -> None:
    core = yaml.safe_load((DEPLOY / "multisite" / "core.yml").read_text())["services"]
    assert "1883:1883" not in core["mosquitto"].get("ports", []), "plain MQTT stays on the compose network"
    ingest = core["ingest"]["command"]
    assert ingest[ingest.index("--mqtt-username") + 1] == "ingest"
    site_doc = yaml.safe_load((DEPLOY / "multisite" / "site.yml").read_text())
    site = site_doc["services"]["collector"]["command"]
    assert site[site.index("--mqtt") + 1].startswith("mqtts://") and site[site.index("--mqtt") + 1].endswith(
        ":8883"
    ), "sites use the TLS listener"
    assert site[site.index("--mqtt-username") + 1] == "${SITE:?set SITE}", "a site logs in as itself"
    acl = (DEPLOY / "mosquitto" / "acl").read_text()
    assert re.search(r"^user ingest\ntopic read fleetmon/v1/#$", acl, flags=re.M)
    api = read_toml(DEPLOY / "multisite" / "api.toml")
    assert api["credentials"][api["mqtt"]["credential_profile"]]["username"] == "fleetmon-api"
    assert re.search(r"^user fleetmon-api\ntopic read fleetmon/v1/#$", acl, flags=re.M)


@pytest.mark.parametrize("compose", COMPOSE_FILES[1:], ids=lambda p: str(p.relative_to(DEPLOY)))
def test_multisite_services_read_broker_passwords_from_compose_secrets(compose: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(compose.read_text())
    secrets = doc["secrets"]
    for name, service in doc["services"].items():
        command = service.get("command", [])
        if "--mqtt-password-file" not in command:
            continue
        path = command[command.index("--mqtt-password-file") + 1]
        secret = path.removeprefix("/run/secrets/")
        assert secret in service["secrets"] and secret in secrets, f"{name}: {path} is not a compose secret"
        assert OPERATOR_MADE.match(secrets[secret]["file"]), "made by the operator, never in the repository"
        stand_in = tmp_path / f"{name}-password"
        stand_in.write_text(STAND_IN_PASSWORD + "\n")
        argv = [stand_in.as_posix() if arg == path else arg for arg in command]
        argv = [
            re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: {"SITE": "tx1", "BROKER": "core"}[m.group(1)], arg)
            for arg in argv
        ]
        broker = _broker_login(argv, tmp_path)
        assert broker.password == STAND_IN_PASSWORD, name
    if "api" in doc["services"]:
        api = read_toml(DEPLOY / "multisite" / "api.toml")
        password_file = api["credentials"][api["mqtt"]["credential_profile"]]["password_file"]
        assert password_file.removeprefix("/run/secrets/") in doc["services"]["api"]["secrets"]
    assert all("MQTT" not in key for s in doc["services"].values() for key in s.get("environment", {}))


# ---- the image's pinned dependencies -----------------------------------------------------------------


def _runtime_tree() -> dict[str, list[Requirement]]:
    """fleetmon's runtime dependencies, transitively, as installed here: canonical name -> the requirements
    naming it. Top level from pyproject.toml (no test extra), below that from installed metadata, markers
    evaluated for this interpreter and platform (the image's: CPython 3.11 on Linux)."""
    found: dict[str, list[Requirement]] = {}
    extras_seen: dict[str, set[str]] = {}
    top = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    queue = [Requirement(raw) for raw in top]
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        found.setdefault(name, []).append(requirement)
        new = set(requirement.extras) - extras_seen.get(name, set())
        if name in extras_seen and not new:
            continue
        extras_seen[name] = extras_seen.get(name, set()) | set(requirement.extras)
        environments = [{"extra": extra} for extra in extras_seen[name] or {""}]
        for raw in metadata.distribution(name).requires or []:
            child = Requirement(raw)
            if child.marker is None or any(child.marker.evaluate(env) for env in environments):
                queue.append(child)
    return found


def _pins() -> dict[str, str]:
    pins = {}
    for line in (DEPLOY / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_constraints_pin_exactly_the_runtime_tree_within_every_range() -> None:
    tree, pins = _runtime_tree(), _pins()
    assert {"fastapi", "starlette", "h11", "python-multipart", "psycopg-binary"} <= set(tree)
    assert "pytest" not in tree and "fleetmon" not in pins
    assert set(pins) == set(tree), {"unpinned": set(tree) - set(pins), "not needed": set(pins) - set(tree)}
    for name, requirements in tree.items():
        for requirement in requirements:
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                name,
                pins[name],
                str(requirement),
            )


@pytest.mark.parametrize(
    ("package", "floor"),
    [
        ("h11", "0.16.0"),
        ("python-multipart", "0.0.31"),
        ("starlette", "1.3.1"),
        ("pydantic-settings", "2.14.2"),
    ],
)
def test_dependency_floors_exclude_releases_with_published_advisories(package: str, floor: str) -> None:
    top = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (requirement,) = [r for r in map(Requirement, top) if canonicalize_name(r.name) == package]
    release = Version(floor).release
    last = max(i for i, part in enumerate(release) if part)  # the release just below: 0.16.0 -> 0.15.999
    just_below = ".".join(map(str, (*release[:last], release[last] - 1, *[999] * (len(release) - last - 1))))
    assert requirement.specifier.contains(floor), str(requirement)
    assert not requirement.specifier.contains(just_below), (str(requirement), just_below)
    assert Version(_pins()[package]) >= Version(floor)


def test_real_alertmanager_lets_hot_chips_hold_back_the_same_boards_hot_board(alertmanager: str) -> None:
    board = {"site": "tx1", "ip": "10.20.0.11", "model": "Antminer S19"}
    _api(
        f"{alertmanager}/alerts",
        [
            _alert("HotChips", "critical", board="2", **board),
            _alert("HotBoard", "warning", board="2", **board),
            _alert("HotBoard", "warning", board="0", **board),  # another board: its own warning
        ],
    )
    deadline = time.monotonic() + 15
    states: dict[tuple[str, str], str] = {}
    expected = {("HotChips", "2"): "active", ("HotBoard", "2"): "suppressed", ("HotBoard", "0"): "active"}
    while states != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        states = {
            (a["labels"]["alertname"], a["labels"]["board"]): a["status"]["state"]
            for a in _api(f"{alertmanager}/alerts")
        }
    assert states == expected
