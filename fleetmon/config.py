"""fleetmon's configuration: one typed value, loaded once from a TOML file plus environment variables.

Precedence: environment variables (`FLEETMON_` prefix, `__` between nesting levels, e.g.
`FLEETMON_SERVICE__PORT=9000`) override the file, which overrides the defaults. The file is strict:
an unknown key is an error naming the key and the file, so a typo never silently falls back to a
default. Secrets are referenced, never inlined: a credential profile names an environment variable
(`password_env`) or a file (`password_file`) holding the password; the resolved value is a SecretStr,
never logged and never returned by the API. See docs/configuration.md.

Errors: ConfigError (a ValueError), with a message meant for the operator.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from collectors.targets import Target, TargetError, parse_targets
from collectors.web import WebCredentials
from fleetmon.sinks.topics import BrokerUrl

if TYPE_CHECKING:
    from collectors.snmp import PduConfig, SnmpTimeouts

ENV_PREFIX = "FLEETMON_"
CONFIG_ENV = "FLEETMON_CONFIG"
"""Environment variable naming the config file when `--config` is not given."""


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key, the file or the variable."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(_Section):
    """Where samples live and for how long."""

    url: SecretStr | None = None  # None: the SQLite file in the data directory; may embed a password
    retention_days: float = Field(default=30.0, gt=0)

    def url_value(self) -> str | None:
        """The database URL to connect with (None: the default SQLite file)."""
        return self.url.get_secret_value() if self.url is not None else None


class ServiceSettings(_Section):
    """The HTTP service."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    metrics_public: bool = False  # True: /metrics answers without an API key
    snapshot_interval_s: float = Field(default=15.0, gt=0)  # read-only mode: rebuild period
    rollup_interval_s: float = Field(default=300.0, gt=0)  # in-process rollup and retention job period
    # The dashboard's session signing secret, shared by every replica (by reference, like passwords),
    # and the one before it while a rotation is under way. None: random per process.
    session_secret_env: str | None = None
    session_secret_file: Path | None = None
    session_previous_secret_env: str | None = None
    session_previous_secret_file: Path | None = None
    # Reader mode: a site whose collector said nothing for this long is shown stale (collector_up 0).
    site_stale_s: float = Field(default=300.0, gt=0)
    # /readyz: a snapshot older than this is not fresh (collector mode: also at least 3 poll intervals).
    ready_max_snapshot_age_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _one_reference_per_secret(self) -> ServiceSettings:
        for name in ("session_secret", "session_previous_secret"):
            if getattr(self, f"{name}_env") is not None and getattr(self, f"{name}_file") is not None:
                raise ValueError(f"give at most one of {name}_env and {name}_file")
        current = self.session_secret_env is not None or self.session_secret_file is not None
        previous = (
            self.session_previous_secret_env is not None or self.session_previous_secret_file is not None
        )
        if previous and not current:
            raise ValueError("a previous session secret needs a current one (session_secret_env or _file)")
        return self


class CollectorSettings(_Section):
    """The in-process collector loop (small farm); idle when `targets` is empty or MQTT is configured."""

    site: str = "default"
    targets: list[str] = Field(default_factory=list)  # IP, IP:PORT, CIDR or @FILE
    interval_s: float = Field(default=60.0, gt=0)
    concurrency: int = Field(default=200, ge=1)
    timeout_s: float = Field(default=5.0, gt=0)  # hard deadline per device read
    connect_timeout_s: float = Field(default=1.0, gt=0)
    # Poller processes: "auto" = one per core when the fleet is large enough to repay starting them
    # (collectors.workers.auto_workers), else the in-process poller; a number fixes it (1: in-process).
    workers: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    credential_profile: str | None = None  # stock Antminer web CGI (serial numbers)
    vnish_credential_profile: str | None = None
    # Whatsminer API writes (actions): v2's admin password; for v3 the username is the account ("super")
    whatsminer_credential_profile: str | None = None
    # Braiins OS+ gRPC login (actions, and telling a stopped bosminer from a down miner); the factory
    # login is root with an empty password (a password_env set to "" is allowed)
    braiins_credential_profile: str | None = None

    @field_validator("targets")
    @classmethod
    def _targets_parse(cls, value: list[str]) -> list[str]:
        try:
            parse_targets(value)
        except TargetError as exc:
            raise ValueError(str(exc)) from exc
        return value

    def parsed_targets(self) -> list[Target]:
        """The targets as Target values, deduplicated, in order."""
        return parse_targets(self.targets)


class ActionSettings(_Section):
    """Operator actions (reboot, locate, sleep/wake, power target) sent by the collecting process.

    The credentials are the collector's profiles (`collector.credential_profile` for the stock Antminer
    CGI, `collector.vnish_credential_profile` for VNish, `collector.whatsminer_credential_profile` for
    Whatsminer API v2/v3 writes, `collector.braiins_credential_profile` for Braiins OS's gRPC API); LuxOS
    and Avalon need none.
    """

    concurrency: int = Field(default=20, ge=1)  # devices acted on at once within one job step
    connect_timeout_s: float = Field(default=2.0, gt=0)
    read_timeout_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=20.0, gt=0)  # the whole action on one device (every request it makes)
    step_poll_wait_s: float | None = Field(default=None, gt=0)
    """A ramp's longest wait for the poll after a step (default: two poll intervals + the poll deadline)."""
    instance: str = Field(default_factory=socket.gethostname, min_length=1, max_length=128)
    """This collecting process's name, stored as the owner of the jobs it runs: unique among the processes
    sharing one database (default: the host name). At start the process ends the unfinished jobs it owns."""
    heartbeat_s: float = Field(default=15.0, gt=0)
    """How often the process renews `heartbeat_at` of the jobs it runs (one UPDATE for all of them); a job
    whose heartbeat is older than four of these is taken for abandoned (fleetmon.service.jobs)."""
    idempotency_ttl_s: float = Field(default=86_400.0, gt=0)
    """How long an Idempotency-Key is remembered (24 h, the usual convention of APIs that take one)."""


class CredentialProfile(_Section):
    """A named username and a reference to the password (an environment variable or a file)."""

    username: str
    password_env: str | None = None
    password_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline_password(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "password" in data:
            raise ValueError("passwords are never inlined: use password_env or password_file")
        return data

    @model_validator(mode="after")
    def _one_reference(self) -> CredentialProfile:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env and password_file")
        return self

    def resolve(self, name: str, environ: Mapping[str, str]) -> WebCredentials:
        """The profile with its password read now; ConfigError names what is missing (never the value)."""
        if self.password_env is not None:
            value = environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"credential profile {name!r}: environment variable {self.password_env} is not set"
                )
        else:
            assert self.password_file is not None
            try:
                value = self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(
                    f"credential profile {name!r}: cannot read password_file {self.password_file}: "
                    f"{exc.strerror or exc}"
                ) from exc
        return WebCredentials(profile=name, username=self.username, password=SecretStr(value))


class MqttSettings(_Section):
    """The broker of a large farm; when `url` is set, `serve` only reads (collectors publish, ingesters
    write, the API rebuilds its snapshot from the database)."""

    url: str | None = None  # mqtt://host[:port] or mqtts://host[:port]; no password in it
    credential_profile: str | None = None
    ca_file: Path | None = None  # mqtts: CA certificates to verify the broker (default: system store)
    cert_file: Path | None = None  # client certificate, when the broker asks for one
    key_file: Path | None = None


class PduOutletSettings(_Section):
    """One outlet (number within `unit`) and the IP address of the miner it feeds."""

    outlet: int = Field(ge=1)
    unit: int = Field(default=1, ge=0)  # the linked unit of a daisy chain; 1 on a standalone PDU
    miner: IPv4Address | IPv6Address


class PduSettings(_Section):
    """One rack PDU read over SNMPv2c, and the miners on its outlets."""

    name: str = Field(min_length=1)  # the `pdu` label in /metrics, e.g. "rack-a07-pdu1"
    host: str = Field(min_length=1)
    port: int = Field(default=161, ge=1, le=65535)
    site: str | None = None  # None: collector.site
    community_env: str = Field(min_length=1)  # the environment variable holding the community
    outlets: list[PduOutletSettings] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_community(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "community" in data:
            raise ValueError("communities are never inlined: name the variable in community_env")
        return data

    @model_validator(mode="after")
    def _one_miner_per_outlet(self) -> PduSettings:
        self.pdu_config()  # raises on an outlet mapped twice
        return self

    def pdu_config(self) -> PduConfig:
        """The collectors' PduConfig of this PDU."""
        from collectors.snmp import OutletBinding, PduConfig  # pysnmp costs ~0.5 s: only when PDUs exist

        return PduConfig(
            host=self.host,
            port=self.port,
            community_env=self.community_env,
            outlets=[OutletBinding(outlet=o.outlet, unit=o.unit, miner_ip=o.miner) for o in self.outlets],
        )


class SnmpSettings(_Section):
    """How PDUs are read: explicit deadlines and a bound on concurrent reads."""

    timeout_s: float = Field(default=2.0, gt=0)  # per SNMP request
    retries: int = Field(default=1, ge=0)  # retransmissions after the first try
    concurrency: int = Field(default=16, ge=1)  # PDUs read at once
    deadline_s: float = Field(default=15.0, gt=0)  # hard limit on one PDU's whole read (a dozen requests)
    interval_s: float = Field(default=60.0, gt=0)  # reader mode: read period (collector mode: each cycle)

    def timeouts(self) -> SnmpTimeouts:
        """The per-request timeouts for collectors.snmp."""
        from collectors.snmp import SnmpTimeouts

        return SnmpTimeouts(timeout_s=self.timeout_s, retries=self.retries)


class Settings(BaseSettings):
    """The whole configuration; build it with `load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        nested_model_default_partial_update=True,
    )

    storage: StorageSettings = Field(default_factory=StorageSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    actions: ActionSettings = Field(default_factory=ActionSettings)
    credentials: dict[str, CredentialProfile] = Field(default_factory=dict)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    pdus: list[PduSettings] = Field(default_factory=list)
    snmp: SnmpSettings = Field(default_factory=SnmpSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first (highest priority), then the file's contents (passed as init values)."""
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _profiles_exist(self) -> Settings:
        for key, name in (
            ("collector.credential_profile", self.collector.credential_profile),
            ("collector.vnish_credential_profile", self.collector.vnish_credential_profile),
            ("collector.whatsminer_credential_profile", self.collector.whatsminer_credential_profile),
            ("collector.braiins_credential_profile", self.collector.braiins_credential_profile),
            ("mqtt.credential_profile", self.mqtt.credential_profile),
        ):
            if name is not None and name not in self.credentials:
                raise ValueError(f"{key} names credential profile {name!r}, which [credentials] lacks")
        return self

    @model_validator(mode="after")
    def _pdus_distinct(self) -> Settings:
        names: set[str] = set()
        fed: dict[str, str] = {}
        for pdu in self.pdus:
            if pdu.name in names:
                raise ValueError(f"pdus: two PDUs are named {pdu.name!r}")
            names.add(pdu.name)
            for binding in pdu.outlets:
                where = f"{pdu.name} outlet {binding.unit}.{binding.outlet}"
                other = fed.setdefault(str(binding.miner), where)
                if other != where:
                    raise ValueError(f"pdus: miner {binding.miner} is mapped to {other} and to {where}")
        return self

    def pdu_site(self, pdu: PduSettings) -> str:
        """The site a PDU belongs to (its own, else the collector's)."""
        return pdu.site if pdu.site is not None else self.collector.site

    @model_validator(mode="after")
    def _no_password_in_broker_url(self) -> Settings:
        if self.mqtt.url is not None and urlsplit(self.mqtt.url).password:
            raise ValueError(
                "mqtt.url carries a password: put it in a credential profile (mqtt.credential_profile, "
                "whose password_env or password_file names where it is) instead"
            )
        return self

    def mqtt_broker(self) -> BrokerUrl | None:
        """The configured broker with its credential profile and TLS files (None without mqtt.url)."""
        if self.mqtt.url is None:
            return None
        try:
            broker = BrokerUrl.parse(self.mqtt.url)
            credential = self.credential(self.mqtt.credential_profile)
            if credential is not None:
                broker = broker.with_credentials(credential.username, credential.password.get_secret_value())
            return broker.with_tls_files(self.mqtt.ca_file, self.mqtt.cert_file, self.mqtt.key_file)
        except ValueError as exc:
            raise ConfigError(f"mqtt: {exc}") from exc

    @property
    def reads_only(self) -> bool:
        """True when `serve` runs no collector: MQTT is configured or there are no targets."""
        return self.mqtt.url is not None or not self.collector.targets

    def session_secrets(self) -> tuple[bytes | None, bytes | None]:
        """(current, previous) session signing secrets, read now; ConfigError names what is missing."""
        s = self.service
        current = _read_secret("service.session_secret", s.session_secret_env, s.session_secret_file)
        previous = _read_secret(
            "service.session_previous_secret", s.session_previous_secret_env, s.session_previous_secret_file
        )
        return current, previous

    def credential(self, name: str | None) -> WebCredentials | None:
        """The resolved credential profile `name` (None for None); ConfigError when it cannot be read."""
        if name is None:
            return None
        return self.credentials[name].resolve(name, os.environ)


MIN_SESSION_SECRET_BYTES = 32


def _read_secret(key: str, env: str | None, file: Path | None) -> bytes | None:
    """A signing secret from the variable or file named (None when neither is); ConfigError when it is
    missing, unreadable or shorter than MIN_SESSION_SECRET_BYTES. The value is never in the message."""
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"{key}_env: environment variable {env} is not set")
        where = f"{key}_env ({env})"
    elif file is not None:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{key}_file: cannot read {file}: {exc.strerror or exc}") from exc
        where = f"{key}_file ({file})"
    else:
        return None
    secret = value.encode()
    if len(secret) < MIN_SESSION_SECRET_BYTES:
        raise ConfigError(
            f"{where} holds {len(secret)} bytes; a session secret needs at least {MIN_SESSION_SECRET_BYTES} "
            "(e.g. `openssl rand -hex 32`)"
        )
    return secret


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key {key!r}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {key or 'config'}: {message}")
    return "\n".join(lines)


def read_toml(path: Path) -> dict[str, Any]:
    """The file's contents; ConfigError with the file name on a missing file or bad TOML."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def load_settings(path: Path | None = None) -> Settings:
    """Load the configuration once: `path` (else $FLEETMON_CONFIG, else none) plus the environment.

    Also resolves every credential profile and checks every PDU community variable now, so a missing
    secret stops startup with a clear message instead of failing at the first device. Raises ConfigError.
    """
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    data = read_toml(path) if path is not None else {}
    source = str(path) if path is not None else "configuration"
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None
    for name in settings.credentials:
        settings.credential(name)
    settings.session_secrets()
    settings.mqtt_broker()
    for pdu in settings.pdus:
        if not os.environ.get(pdu.community_env):
            raise ConfigError(
                f"{source}: pdus: {pdu.name}: environment variable {pdu.community_env} "
                "(its SNMP community) is not set"
            )
    return settings
