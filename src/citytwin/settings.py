"""Every setting of citytwin, declared once with its type, default and help.

Values are looked up, later ones winning, in: the declared default, a TOML settings
file (``--config``, ``CITYTWIN_CONFIG`` or ``./citytwin.toml``), environment variables
``CITYTWIN_<NAME>`` and explicit overrides (command-line options). Nothing is read at
import time; :func:`load_settings` builds a frozen :class:`Settings` when asked.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citytwin.errors import ConfigurationError

ENV_PREFIX = "CITYTWIN_"
DEFAULT_CONFIG_FILE = "citytwin.toml"


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _port(value: Any) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port (0-65535)"


def _db_url(value: Any) -> str | None:
    if value is None or str(value).startswith(("sqlite:", "postgresql:", "postgres:")):
        return None
    return "must be a sqlite:///path or postgresql://... URL"


def _http_url(value: Any) -> str | None:
    if value is None or str(value).startswith(("https://", "http://")):
        return None
    return "must be an https:// (or http://) URL"


def _role_map(value: Any) -> str | None:
    from citytwin.access.oidc import parse_role_map

    try:
        parse_role_map(str(value))
    except ValueError as exc:
        return str(exc)
    return None


SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "127.0.0.1", "Address the HTTP server listens on."),
    Setting(
        "auth",
        str,
        "on",
        "Access control (docs/security.md): 'on' checks every request against its API key "
        "(anonymous requests read open data only); 'off' lets anyone read and write "
        "everything (set by --insecure; only for local experiments).",
        lambda v: None if v in ("on", "off") else "must be on or off",
    ),
    Setting(
        "oidc_issuer",
        str,
        None,
        "OpenID Connect issuer whose bearer tokens (JWTs) are accepted besides API keys, "
        "e.g. https://login.example.org/realms/city for Keycloak; it must equal the tokens' "
        "iss claim. Default: none, only API keys (docs/security.md).",
        _http_url,
    ),
    Setting(
        "oidc_audience",
        str,
        None,
        "The aud a token must carry to be accepted (the client id citytwin is registered "
        "as at the issuer); needed with oidc_issuer.",
    ),
    Setting(
        "oidc_jwks_url",
        str,
        None,
        "URL of the issuer's signing keys (JWKS). Default: the jwks_uri of the issuer's "
        "/.well-known/openid-configuration.",
        _http_url,
    ),
    Setting(
        "oidc_role_claim",
        str,
        "realm_access.roles",
        "Claim holding a token's role names, a dotted path into the claims (Keycloak: "
        "realm_access.roles, or resource_access.<client>.roles for client roles).",
    ),
    Setting(
        "oidc_role_map",
        str,
        "citytwin-admin=admin,citytwin-operator=operator,citytwin-reader=reader",
        "Role names in the role claim and the citytwin role each gives, as NAME=ROLE,...; "
        "a token with several gets the highest, one with none the public role.",
        _role_map,
    ),
    Setting(
        "oidc_org_claim",
        str,
        "organization",
        "Claim naming a token's organisation (a citytwin organisation's name): a string, a "
        "list of one, or an object with one key as Keycloak's organizations put it.",
    ),
    Setting(
        "oidc_leeway",
        float,
        30.0,
        "Seconds of clock difference to the issuer tolerated when checking exp and nbf.",
        lambda v: None if v >= 0 else "must be 0 or more",
    ),
    Setting(
        "privacy_k",
        int,
        5,
        "Household privacy (docs/security.md): personal meter data a request may not read "
        "enters KPIs only as sums over at least this many households; smaller sums are "
        "withheld.",
        lambda v: None if v >= 2 else "must be at least 2",
    ),
    Setting("port", int, 8080, "TCP port of the HTTP server.", _port),
    Setting(
        "workers",
        int,
        1,
        "Server processes. Each is a full citytwin instance; use about one per CPU core "
        "left over by the database (on a machine shared with PostgreSQL, about half the "
        "cores; SQLite serialises the workers' writes, PostgreSQL runs them side by side).",
        _positive,
    ),
    Setting(
        "data_dir",
        str,
        "citytwin-data",
        "Directory for the embedded database and other local state.",
    ),
    Setting(
        "layers_dir",
        str,
        None,
        "Directory of the city's GeoJSON layers (districts, streets, buildings) served at "
        "/api/v1/layers; the simulator writes its district there. Default: data_dir/layers.",
    ),
    Setting(
        "db",
        str,
        None,
        "Database URL: sqlite:///path/file.db or postgresql://user@host/db. "
        "Default: a SQLite file citytwin.db in data_dir.",
        _db_url,
    ),
    Setting(
        "mqtt",
        str,
        "embedded",
        "MQTT broker: 'embedded' (in this process), 'off', or an external broker's URL "
        "mqtt://user:password@host:port (several instances share one external broker).",
        lambda v: (
            None
            if v in ("embedded", "off") or str(v).startswith(("mqtt://", "mqtts://"))
            else "must be embedded, off or an mqtt://host:port URL"
        ),
    ),
    Setting("mqtt_host", str, "127.0.0.1", "Address the embedded MQTT broker listens on."),
    Setting(
        "mqtt_client_id",
        str,
        None,
        "This instance's name towards an external broker (its persistent session). "
        "Default: <host name>-<HTTP port>; must differ between instances.",
    ),
    Setting("mqtt_port", int, 1883, "TCP port of the embedded MQTT broker.", _port),
    Setting(
        "mqtt_ws_port",
        int,
        9001,
        "Port of the embedded broker's MQTT over WebSocket listener (for browsers); 0: none.",
        _port,
    ),
    Setting(
        "mqtt_session_queue",
        int,
        1000,
        "Messages the embedded broker keeps for a client that is away while its session is "
        "kept (a clean start of false); when more come, the oldest are dropped and counted in "
        "citytwin_mqtt_session_dropped_total.",
        _positive,
    ),
    Setting(
        "mqtt_key_recheck_seconds",
        float,
        60.0,
        "How often the embedded broker asks again for the keys of connected clients (access "
        "control on): a client whose key was revoked since it connected is disconnected "
        "within this time.",
        _positive,
    ),
    Setting(
        "mqtt_error_topic",
        str,
        "citytwin/errors",
        "Prefix of the topics where refused MQTT publishes are reported: a publish to "
        "v1.1/Observations that cannot be stored is explained on "
        "citytwin/errors/v1.1/Observations.",
    ),
    Setting(
        "mqtt_expand_topics",
        bool,
        False,
        "Allow $expand in subscription topics (an extension of the standard).",
    ),
    Setting(
        "mqtt_filter_topics",
        bool,
        False,
        "Allow $filter in subscription topics (an extension of the standard).",
    ),
    Setting(
        "service_root_url",
        str,
        None,
        "Public base URL (e.g. https://data.example.org) used in selfLinks and nextLinks. "
        "Default: taken from each request.",
    ),
    Setting("default_page_size", int, 100, "Entities per page when $top is not given.", _positive),
    Setting(
        "max_page_size",
        int,
        1000,
        "Largest page served; a larger $top is capped and continued by @iot.nextLink.",
        _positive,
    ),
    Setting(
        "max_expand_depth",
        int,
        5,
        "Most levels of $expand one request may nest (Things?$expand=Datastreams/"
        "Observations is 2); a deeper one is refused with 400. 0: no limit.",
        _not_negative,
    ),
    Setting(
        "max_body_bytes",
        int,
        64 * 1024 * 1024,
        "Largest request body, in bytes (a $batch, a CreateObservations array, a layer); "
        "a larger one is refused with 413 before it is read. 0: no limit.",
        _not_negative,
    ),
    Setting(
        "rate_limit",
        float,
        0.0,
        "Requests a second each identity (API key, or client address for anonymous "
        "requests) may send on average; faster ones are answered 429 with Retry-After. "
        "Counted by each instance (each server worker) on its own. 0: no limit.",
        _not_negative,
    ),
    Setting(
        "rate_limit_burst",
        int,
        50,
        "With rate_limit: requests an identity may send at once before the average counts.",
        _positive,
    ),
    Setting(
        "cors_origins",
        str,
        None,
        "Web origins whose pages may call the API from a browser (CORS), comma-separated, "
        "e.g. 'https://dashboard.example.org'; '*' for any. Default: none, only pages of "
        "this server's own origin.",
    ),
    Setting(
        "audit_retention_days",
        int,
        0,
        "Days the audit log keeps its rows; older ones are deleted when the server starts "
        "and by 'citytwin audit --prune'. 0: keep every row.",
        _not_negative,
    ),
    Setting(
        "count_mode",
        str,
        "estimate",
        "How @iot.count is found when no maintained total answers it: 'exact' counts every "
        "match; 'estimate' counts exactly up to count_exact_limit matches and reports the "
        "database's estimate above (PostgreSQL; SQLite always counts exactly).",
        lambda v: None if v in ("exact", "estimate") else "must be exact or estimate",
    ),
    Setting(
        "count_exact_limit",
        int,
        100_000,
        "With count_mode 'estimate': up to this many matches are counted exactly.",
        _positive,
    ),
    Setting(
        "result_format_max_rows",
        int,
        1_000_000,
        "Most entities in one $resultFormat=CSV or GeoJSON answer (streamed, so memory "
        "stays small); without $top a request gets all its matches up to this many.",
        _positive,
    ),
    Setting(
        "aggregate_max_buckets",
        int,
        100_000,
        "Most time buckets one Observations/$aggregate request may ask for "
        "(e.g. 100,000: 15-minute buckets over nearly 3 years).",
        _positive,
    ),
    Setting(
        "max_batch_requests",
        int,
        1000,
        "Most requests one $batch request may hold, counting those inside change sets; "
        "a larger batch is refused with 413 before any of it runs.",
        _positive,
    ),
    Setting(
        "filtered_delete",
        bool,
        False,
        "Allow DELETE /v1.1/Observations?$filter=... (and Datastreams(id)/Observations?"
        "$filter=...), which deletes every matching Observation in one transaction, for "
        "retention and clean-up. Off: such requests are refused with 405.",
    ),
    Setting("sqlite_readers", int, 4, "Concurrent read connections to a SQLite store.", _positive),
    Setting(
        "sqlite_synchronous",
        str,
        "FULL",
        "SQLite durability: FULL keeps every acknowledged write through a power loss; "
        "NORMAL is faster and keeps them through a crash of citytwin but not of the machine.",
        lambda v: None if str(v).upper() in ("FULL", "NORMAL") else "must be FULL or NORMAL",
    ),
    Setting(
        "pg_pool_size",
        int,
        10,
        "Connections per instance in each PostgreSQL pool (one pool reads, one writes).",
        _positive,
    ),
    Setting(
        "task_timeout",
        float,
        10.0,
        "Seconds a device may take to answer a Task handed to it over a webhook.",
        _positive,
    ),
    Setting(
        "task_webhook_allow",
        str,
        "",
        "Private, loopback or link-local hosts and networks that webhook Task drivers may "
        "reach, comma-separated (e.g. '10.20.0.0/16,gw.internal'). Public addresses are "
        "always allowed; default: no private ones.",
    ),
    Setting(
        "web_basemap_style",
        str,
        None,
        "URL of a MapLibre style for the web UI's base map (online tiles in production). "
        "Default: none; the map shows the city's own layers on a plain background and "
        "needs nothing from the internet.",
    ),
    Setting(
        "web_mqtt_url",
        str,
        None,
        "MQTT over WebSocket URL the web UI connects to for live updates (ws:// or wss://, "
        "e.g. the external broker's WebSocket listener behind a proxy). Default: the "
        "embedded broker's mqtt_ws_port on the host the page was loaded from.",
        lambda v: (
            None
            if v is None or str(v).startswith(("ws://", "wss://"))
            else "must be a ws:// or wss:// URL"
        ),
    ),
    Setting("auto_migrate", bool, True, "Apply pending schema migrations when the server starts."),
    Setting("log_level", str, "info", "Logging level: debug, info, warning or error."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


class Settings(Mapping[str, Any]):
    """Resolved settings; read as attributes (``settings.port``) or by name."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str]) -> None:
        self._values = values
        self._sources = sources

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def source(self, name: str) -> str:
        """Where a value came from: default, a file path, an env variable or override."""
        return self._sources[name]

    @property
    def database_url(self) -> str:
        if self._values["db"]:
            return str(self._values["db"])
        return "sqlite:///" + str(Path(self._values["data_dir"]) / "citytwin.db")

    def as_env(self) -> dict[str, str]:
        """The settings as CITYTWIN_* variables, to hand to worker processes."""
        env = {}
        for name, value in self._values.items():
            if value is not None:
                env[ENV_PREFIX + name.upper()] = _format(value)
        return env


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _convert(setting: Setting, raw: Any, origin: str) -> Any:
    if raw is None:
        return None
    try:
        if setting.type is bool:
            if isinstance(raw, bool):
                value: Any = raw
            elif str(raw).strip().lower() in ("1", "true", "yes", "on"):
                value = True
            elif str(raw).strip().lower() in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError(f"{raw!r} is not a boolean (true/false)")
        elif setting.type is int:
            if isinstance(raw, bool):
                raise ValueError(f"{raw!r} is not an integer")
            value = int(raw)
        else:
            value = setting.type(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"setting {setting.name} (from {origin}): {exc}") from None
    if setting.check is not None:
        problem = setting.check(value)
        if problem:
            raise ConfigurationError(f"setting {setting.name} (from {origin}) {problem}: {raw!r}")
    return value


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigurationError(f"cannot read settings file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"settings file {path} is not valid TOML: {exc}") from None
    table = data.get("citytwin", data)
    if not isinstance(table, dict):
        raise ConfigurationError(f"settings file {path}: [citytwin] must be a table")
    unknown = sorted(set(table) - set(_BY_NAME))
    if unknown:
        raise ConfigurationError(f"settings file {path}: unknown setting(s) {', '.join(unknown)}")
    return table


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting from defaults, settings file, environment and overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    sources = {s.name: "default" for s in SETTINGS}

    path: Path | None = None
    if config_file is not None:
        path = Path(config_file)
    elif env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    elif Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)
    if path is not None:
        for name, raw in _read_file(path).items():
            values[name] = _convert(_BY_NAME[name], raw, str(path))
            sources[name] = str(path)

    for setting in SETTINGS:
        key = ENV_PREFIX + setting.name.upper()
        if key in env:
            values[setting.name] = _convert(setting, env[key], key)
            sources[setting.name] = key

    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        if name not in _BY_NAME:
            raise ConfigurationError(f"unknown setting {name}")
        values[name] = _convert(_BY_NAME[name], raw, "command line")
        sources[name] = "command line"

    if values["default_page_size"] > values["max_page_size"]:
        raise ConfigurationError(
            f"default_page_size ({values['default_page_size']}) must not exceed "
            f"max_page_size ({values['max_page_size']})"
        )
    if values["oidc_issuer"] and not values["oidc_audience"]:
        raise ConfigurationError(
            "setting oidc_audience is needed with oidc_issuer: tokens the issuer made for "
            "its other clients must not be accepted"
        )
    return Settings(values, sources)
