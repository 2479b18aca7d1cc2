"""deploy/ validated as far as the tools here allow: systemd units with `systemd-analyze verify`, Kubernetes
manifests with kubernetes-validate's bundled schemas (strict), compose files against the compose-spec
JSON schema vendored by check-jsonschema, every fleetmon TOML through fleetmon's own strict loader, and
every file a compose file mounts present in the repository.

Not validated here (no daemon or cluster): that the images pull and start, and that the containers talk
to each other; the live dashboard test runs the same Prometheus configuration against a real service.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, services_required

from fleetmon.config import Settings, load_settings, read_toml

DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
COMPOSE_FILES = [
    DEPLOY / "compose" / "compose.yml",
    DEPLOY / "multisite" / "core.yml",
    DEPLOY / "multisite" / "site.yml",
]
IMAGE = "fleetmon/fleetmon:latest"
BIN = Path(sys.executable).parent
# Mount sources the operator creates (secrets are never in the repository).
OPERATOR_MADE = re.compile(r"^\./secrets/")


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
    assert "password" not in text.split("[Service]")[1].lower().replace("password-env", "").replace(
        "_password", ""
    ), "a secret inlined in the unit"


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
    assert api["readinessProbe"]["httpGet"]["path"] == "/healthz"
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert container["image"] == IMAGE, name
            for variable in container.get("env", []):  # secrets by reference only
                assert "value" not in variable or "PASSWORD" not in variable["name"], name
                if variable["name"] in {"PGPASSWORD", "FLEETMON_ANTMINER_PASSWORD"}:
                    assert "secretKeyRef" in variable["valueFrom"], name


def test_configmap_toml_loads_with_fleetmons_strict_loader(tmp_path: Path) -> None:
    (configmap,) = _documents(DEPLOY / "kubernetes" / "configmap.yaml")
    path = tmp_path / "fleetmon.toml"
    path.write_text(configmap["data"]["fleetmon.toml"])
    settings = load_settings(path)
    assert settings.reads_only and settings.mqtt.url is not None


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


def test_single_site_compose_runs_the_five_services_with_their_mounts() -> None:
    doc = yaml.safe_load((DEPLOY / "compose" / "compose.yml").read_text())
    services = doc["services"]
    assert set(services) == {"fleetmon", "postgres", "mosquitto", "prometheus", "grafana"}
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
    for profile in data.get("credentials", {}).values():
        if "password_env" in profile:
            monkeypatch.setenv(profile["password_env"], "x")
    for pdu in data.get("pdus", []):
        monkeypatch.setenv(pdu["community_env"], "x")
    text = toml.read_text()
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
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0")), user
