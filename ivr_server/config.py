"""Settings: config.toml, then environment variables on top. Every setting is documented there."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    # environment variable -> (section, key)
    "PUBLIC_BASE_URL": ("server", "public_base_url"),
    "IVR_TRUST_PROXY": ("server", "trust_proxy"),
    "IVR_INSTANCE_PATH": ("server", "instance_path"),
    "IVR_HOST": ("server", "host"),
    "IVR_PORT": ("server", "port"),
    "IVR_WORKERS": ("server", "workers"),
    "IVR_THREADS": ("server", "threads"),
    "IVR_FORWARDED_ALLOW_IPS": ("server", "forwarded_allow_ips"),
    "TWILIO_ACCOUNT_SID": ("twilio", "account_sid"),
    "TWILIO_AUTH_TOKEN": ("twilio", "auth_token"),
    "IVR_DEV_SKIP_SIGNATURES": ("twilio", "dev_skip_signatures"),
    "TWILIO_API_BASE_URL": ("twilio", "api_base_url"),
    "REDIS_URL": ("redis", "url"),
    "IVR_REDIS_PREFIX": ("redis", "key_prefix"),
    "DATABASE_URL": ("database", "url"),
    "IVR_FLOWS_DIR": ("flows", "directory"),
    "IVR_DEFAULT_FLOW": ("flows", "default"),
    "IVR_FALLBACK_NUMBER": ("fallback", "number"),
    "IVR_CALLLOG_WRITE_BEHIND": ("calllog", "write_behind"),
    "IVR_VOSK_MODEL": ("speech", "model_path"),
    "IVR_SPEECH_LANGUAGE": ("speech", "language"),
    "IVR_AGENTS_API_TOKEN": ("queues", "api_token"),
    "TWILIO_SMS_FROM": ("sms", "from_number"),
    "TWILIO_MESSAGING_SERVICE_SID": ("sms", "messaging_service_sid"),
    "IVR_SMS_REGION": ("sms", "default_region"),
    "IVR_CALLBACK_FROM": ("callbacks", "from_number"),
    "IVR_SECRET_KEY": ("admin", "secret_key"),
    "IVR_METRICS_TOKEN": ("metrics", "token"),
    "IVR_LOG_FORMAT": ("logging", "format"),
    "IVR_LOG_LEVEL": ("logging", "level"),
}


class ConfigError(ValueError):
    """A setting is missing, of the wrong type, or unknown (named with its file or variable)."""


@dataclass(frozen=True)
class ServerConfig:
    public_base_url: str = ""
    trust_proxy: bool = False
    host: str = "127.0.0.1"
    port: int = 5000
    instance_path: str = "instance"
    # `ivr serve --production` (gunicorn, gthread): see ivr_server/production.py for sizing.
    workers: int = 0  # 0: 2 x cores + 1, at most 8
    threads: int = 16
    timeout: int = 30
    graceful_timeout: int = 30
    keepalive: int = 5
    max_requests: int = 0
    max_requests_jitter: int = 0
    forwarded_allow_ips: str = "127.0.0.1,::1"
    access_log: bool = False


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str = ""
    auth_token: str = ""
    dev_skip_signatures: bool = False
    api_base_url: str = "https://api.twilio.com"


@dataclass(frozen=True)
class RedisConfig:
    url: str = ""
    key_prefix: str = "ivr:"
    session_ttl: int = 4 * 3600


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = ""
    statement_timeout: float = 3.0  # seconds a server or worker statement may take; 0: no limit
    report_timeout: float = 60.0  # the same for the admin pages' reports and exports


@dataclass(frozen=True)
class FlowsConfig:
    directory: str = "flows/examples"
    default: str = "company"
    reload_interval: float = 2.0
    numbers: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FallbackConfig:
    number: str = ""
    message: str = ("We're sorry, we're having trouble right now. "
                    "Connecting you to someone who can help.")
    goodbye: str = "We're sorry, we're having trouble right now. Please call again later. Goodbye."
    voice: str = ""
    language: str = "en-US"


@dataclass(frozen=True)
class LookupConfig:
    max_timeout: float = 5.0
    max_bytes: int = 256 * 1024
    use_env_proxy: bool = False
    breaker_failures: int = 5  # failed lookups in a row that stop lookups to a CRM; 0: never
    breaker_cooldown: float = 30.0  # seconds before one lookup tries the CRM again


@dataclass(frozen=True)
class CallLogConfig:
    write_behind: bool = True
    flush_interval: float = 1.0


@dataclass(frozen=True)
class SpeechConfig:
    """Offline speech (vosk). No model path means no speech: menus take keys only."""

    model_path: str = ""
    language: str = ""
    min_confidence: float = 0.6
    max_recording_seconds: int = 10
    max_recording_bytes: int = 1_000_000
    download_timeout: float = 5.0
    delete_recordings: bool = True
    filler_words: int = 100
    phrase_weight: int = 3


@dataclass(frozen=True)
class SmsConfig:
    """Text messages: who they come from, where numbers are, and how often callers get them."""

    from_number: str = ""
    messaging_service_sid: str = ""
    default_region: str = "US"
    company: str = "us"
    wait_threshold: int = 120
    wait_min_change: int = 120
    wait_max_messages: int = 3
    survey_every_days: int = 30
    survey_min_call_seconds: int = 20
    retry_intervals: str = "10,60,300"
    keyword_replies: bool = True
    surveys: bool = True
    allow_voip: bool = False
    templates: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QueuesConfig:
    """Agents on duty per queue when nobody signs in, and the sign-in API's token."""

    agents: dict[str, int] = field(default_factory=dict)
    api_token: str = ""
    predictor: str = "adaptive"


@dataclass(frozen=True)
class CallbacksConfig:
    """Calling people back: when they may be called, how often we try, and from where.

    `queues` overrides any of the per-queue settings (time_zone, business_hours, holidays,
    callee_hours, attempts, retry_delays, on_machine) for one queue by name."""

    enabled: bool = True
    from_number: str = ""
    callee_hours: str = "08:00-21:00"
    time_zone: str = "UTC"
    business_hours: dict[str, str] = field(default_factory=dict)
    holidays: str = ""
    attempts: int = 3
    retry_delays: str = "300,900"
    on_machine: str = "stop"
    ring_timeout: int = 25
    dial_grace: int = 120
    recheck_seconds: int = 10
    reconcile_interval: int = 30
    region: str = "US"
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class AdminConfig:
    """The supervisor and ops pages under /admin: sessions, sign-in throttling, privacy."""

    secret_key: str = ""
    session_hours: float = 12.0
    login_max_failures: int = 5
    login_lockout_seconds: int = 900
    reveal_numbers_roles: str = "supervisor,admin"
    page_size: int = 50
    time_zone: str = "UTC"


@dataclass(frozen=True)
class MetricsConfig:
    """/metrics (Prometheus) and the /readyz probe: who may scrape, how long a check waits."""

    token: str = ""
    readiness_timeout: float = 1.0
    multiproc_dir: str = ""  # `ivr serve --production`; empty: <instance>/prometheus


@dataclass(frozen=True)
class LoggingConfig:
    """Log lines: "text" or "json" (one object a line), and the lowest level written."""

    format: str = "text"
    level: str = "INFO"


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    twilio: TwilioConfig = field(default_factory=TwilioConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    flows: FlowsConfig = field(default_factory=FlowsConfig)
    fallback: FallbackConfig = field(default_factory=FallbackConfig)
    lookup: LookupConfig = field(default_factory=LookupConfig)
    calllog: CallLogConfig = field(default_factory=CallLogConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    queues: QueuesConfig = field(default_factory=QueuesConfig)
    sms: SmsConfig = field(default_factory=SmsConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    base_dir: str = "."

    def path(self, value: str) -> Path:
        """A path setting resolved against the folder of the config file."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def instance_dir(self) -> Path:
        return self.path(self.server.instance_path)

    @property
    def flows_dir(self) -> Path:
        return self.path(self.flows.directory)

    @property
    def speech_model_path(self) -> Path | None:
        """The vosk model folder, or None when speech is off (no model configured)."""
        return self.path(self.speech.model_path) if self.speech.model_path else None

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.instance_dir.resolve() / 'ivr.sqlite3'}"

    def with_section(self, section: str, **values: Any) -> Config:
        return replace(self, **{section: replace(getattr(self, section), **values)})


def find_config_file(env: Mapping[str, str]) -> Path | None:
    if env.get("IVR_CONFIG"):
        return Path(env["IVR_CONFIG"])
    here = Path.cwd() / "config.toml"
    return here if here.exists() else None


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read config.toml (if any) and apply environment overrides."""
    env = os.environ if env is None else env
    file = Path(path) if path else find_config_file(env)
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{file}: {exc}") from None
        base_dir = file.resolve().parent
    sections: dict[str, Any] = {}
    for f in fields(Config):
        if f.name == "base_dir":
            continue
        cls = type(f.default_factory())  # type: ignore[misc]
        sections[f.name] = _section(cls, data.pop(f.name, {}), f"{file}: [{f.name}]")
    if data:
        raise ConfigError(f"{file}: unknown section(s) {', '.join(sorted(data))}")
    config = Config(base_dir=str(base_dir), **sections)
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var, "") != "":
            value = _coerce(getattr(getattr(config, section), key), env[var], var)
            config = config.with_section(section, **{key: value})
    return config


def _section(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    default = cls()
    out = {}
    for key, value in values.items():
        expected = getattr(default, key)
        if isinstance(expected, bool) and not isinstance(value, bool) or \
                isinstance(expected, int | float) and not isinstance(value, int | float) or \
                isinstance(expected, str) and not isinstance(value, str) or \
                isinstance(expected, dict) and not isinstance(value, dict):
            raise ConfigError(f"{where} {key} should be a {type(expected).__name__}")
        out[key] = value
    return cls(**out)


def _coerce(current: Any, raw: str, var: str) -> Any:
    if isinstance(current, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{var}={raw!r} should be true or false")
    if isinstance(current, int | float):
        try:
            return type(current)(raw)
        except ValueError:
            raise ConfigError(f"{var}={raw!r} should be a number") from None
    return raw
