"""Configuration strictness and secrets: unknown keys name themselves and the file, env overrides the
file, passwords are referenced never inlined, and a secret never reaches a log line or a response."""

from __future__ import annotations

import logging
from pathlib import Path

import fleet_samples
import pytest
from service_harness import live_service

from fleetmon.config import ConfigError, load_settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleetmon.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_key_is_an_error_naming_the_key_and_the_file(tmp_path) -> None:
    path = _write(tmp_path, "[storage]\nretention_days = 7\nretension = 3\n[service]\nport = 8001\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "unknown key 'storage.retension'" in str(caught.value)
    assert str(path) in str(caught.value)


def test_unknown_section_is_an_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'colector'"):
        load_settings(_write(tmp_path, "[colector]\nsite = 'x'\n"))


def test_environment_overrides_the_file_through_nested_names(tmp_path, monkeypatch) -> None:
    path = _write(tmp_path, "[service]\nport = 8001\nhost = '0.0.0.0'\n[storage]\nretention_days = 9\n")
    monkeypatch.setenv("FLEETMON_SERVICE__PORT", "9100")
    settings = load_settings(path)
    assert settings.service.port == 9100
    assert settings.service.host == "0.0.0.0"  # the rest of the section still comes from the file
    assert settings.storage.retention_days == 9


def test_inline_password_is_refused(tmp_path) -> None:
    text = "[credentials.antminer]\nusername = 'root'\npassword = 'hunter2'\n"
    with pytest.raises(ConfigError, match="never inlined") as caught:
        load_settings(_write(tmp_path, text))
    assert "hunter2" not in str(caught.value)


def test_password_comes_from_the_named_variable_or_file(tmp_path, monkeypatch) -> None:
    secret_file = tmp_path / "vnish.secret"
    secret_file.write_text("file-secret\n", encoding="utf-8")
    text = (
        "[collector]\ncredential_profile = 'am'\nvnish_credential_profile = 'vn'\n"
        "[credentials.am]\nusername = 'root'\npassword_env = 'TEST_AM_PASSWORD'\n"
        f"[credentials.vn]\nusername = 'admin'\npassword_file = '{secret_file}'\n"
    )
    monkeypatch.setenv("TEST_AM_PASSWORD", "env-secret")
    settings = load_settings(_write(tmp_path, text))
    am = settings.credential("am")
    vn = settings.credential("vn")
    assert am is not None and am.password.get_secret_value() == "env-secret"
    assert vn is not None and vn.password.get_secret_value() == "file-secret"
    assert "env-secret" not in repr(settings) + repr(am) + str(am)


def test_missing_password_variable_stops_startup_naming_it(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("TEST_AM_PASSWORD", raising=False)
    text = "[credentials.am]\nusername = 'root'\npassword_env = 'TEST_AM_PASSWORD'\n"
    with pytest.raises(ConfigError, match="TEST_AM_PASSWORD is not set"):
        load_settings(_write(tmp_path, text))


def test_profile_reference_must_exist(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"collector\.credential_profile names credential profile 'nope'"):
        load_settings(_write(tmp_path, "[collector]\ncredential_profile = 'nope'\n"))
    with pytest.raises(ConfigError, match=r"collector\.whatsminer_credential_profile names credential"):
        load_settings(_write(tmp_path, "[collector]\nwhatsminer_credential_profile = 'wm'\n"))


def test_whatsminer_profile_resolves_with_its_account_and_password(tmp_path, monkeypatch) -> None:
    text = (
        "[collector]\nwhatsminer_credential_profile = 'wm'\n"
        "[credentials.wm]\nusername = 'super'\npassword_env = 'TEST_WM_PASSWORD'\n"
    )
    monkeypatch.setenv("TEST_WM_PASSWORD", "wm-secret")
    settings = load_settings(_write(tmp_path, text))
    wm = settings.credential(settings.collector.whatsminer_credential_profile)
    assert wm is not None and wm.username == "super" and wm.password.get_secret_value() == "wm-secret"
    assert "wm-secret" not in repr(settings) + repr(wm)


def test_bad_target_is_reported_with_its_text(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"'10\.0\.0\.300'"):
        load_settings(_write(tmp_path, "[collector]\ntargets = ['10.0.0.300']\n"))


def test_device_password_and_api_keys_never_reach_logs_or_responses(tmp_path, monkeypatch, caplog) -> None:
    secret = "s3cr3t-Wrong-Pa55word-7f1c"
    monkeypatch.setenv("TEST_WEB_PASSWORD", secret)
    settings = load_settings(
        _write(
            tmp_path,
            "[collector]\ncredential_profile = 'am'\n"
            "[credentials.am]\nusername = 'root'\npassword_env = 'TEST_WEB_PASSWORD'\n",
        )
    )
    caplog.set_level(logging.DEBUG)
    bodies = []
    url = fleet_samples.sqlite_url(tmp_path)
    # The simulated Antminers' web CGI rejects this password, so the poll logs and stores auth errors.
    with live_service(url, tmp_path, devices=12, seed=3, settings_base=settings) as svc:
        admin = svc.keys["admin"]
        with svc.client(admin) as client:
            for path in ("/api/v1/devices?limit=1000", "/api/v1/fleet/summary", "/metrics", "/api/v1/keys"):
                bodies.append(client.get(path).text)
            first = client.get("/api/v1/devices", params={"limit": 1}).json()["items"][0]
            bodies.append(client.get(f"/api/v1/devices/{first['id']}").text)
            bodies.append(client.get("/probe", params={"target": svc.fleet[0].device.ip}).text)
    web_errors = [b for b in bodies if "web_auth" in b or "rejected credentials" in b]
    assert web_errors, "the wrong password never reached a device: the test would prove nothing"
    logged = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    for text in (logged, *bodies):
        assert secret not in text
        for key in svc.keys.values():
            assert key not in text
            assert key.split("_", 2)[2] not in text


def test_braiins_profile_takes_the_factory_empty_password(tmp_path, monkeypatch) -> None:
    text = (
        "[collector]\nbraiins_credential_profile = 'bos'\n"
        "[credentials.bos]\nusername = 'root'\npassword_env = 'TEST_BOS_PASSWORD'\n"
    )
    monkeypatch.setenv("TEST_BOS_PASSWORD", "")
    settings = load_settings(_write(tmp_path, text))
    bos = settings.credential(settings.collector.braiins_credential_profile)
    assert bos is not None and bos.username == "root" and bos.password.get_secret_value() == ""
    with pytest.raises(ConfigError, match=r"collector\.braiins_credential_profile names credential"):
        load_settings(_write(tmp_path, "[collector]\nbraiins_credential_profile = 'nope'\n"))
