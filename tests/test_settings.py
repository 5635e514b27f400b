"""Settings: one declaration each, resolved from defaults, file, environment, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from citytwin.errors import ConfigurationError
from citytwin.settings import SETTINGS, load_settings


def test_every_setting_has_a_default_and_help() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for s in SETTINGS:
        assert s.help.strip(), s.name
    defaults = load_settings(environ={})
    assert defaults.port == 8080
    assert defaults.default_page_size == 100
    assert defaults.max_page_size == 1000
    assert defaults.source("port") == "default"
    assert defaults.database_url == "sqlite:///citytwin-data/citytwin.db"


def test_precedence_file_then_environment_then_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "city.toml"
    cfg.write_text('[citytwin]\nport = 9000\nhost = "0.0.0.0"\nmax_page_size = 50\n')
    s = load_settings(
        {"max_page_size": 20},
        config_file=cfg,
        environ={"CITYTWIN_PORT": "9100", "CITYTWIN_DEFAULT_PAGE_SIZE": "10"},
    )
    assert (s.host, s.port, s.default_page_size, s.max_page_size) == ("0.0.0.0", 9100, 10, 20)
    assert s.source("host") == str(cfg)
    assert s.source("port") == "CITYTWIN_PORT"
    assert s.source("max_page_size") == "command line"


def test_config_file_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("auto_migrate = false\n")
    s = load_settings(environ={"CITYTWIN_CONFIG": str(cfg)})
    assert s.auto_migrate is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CITYTWIN_PORT": "eighty"}, "CITYTWIN_PORT"),
        ({"CITYTWIN_PORT": "70000"}, "TCP port"),
        ({"CITYTWIN_MAX_PAGE_SIZE": "0"}, "greater than 0"),
        ({"CITYTWIN_AUTO_MIGRATE": "maybe"}, "not a boolean"),
        ({"CITYTWIN_DB": "mysql://x"}, "sqlite:///path or postgresql"),
        ({"CITYTWIN_DEFAULT_PAGE_SIZE": "500", "CITYTWIN_MAX_PAGE_SIZE": "100"}, "must not exceed"),
        ({"CITYTWIN_SQLITE_SYNCHRONOUS": "OFF"}, "FULL or NORMAL"),
    ],
)
def test_invalid_values_are_refused_with_their_origin(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(environ=env)


def test_bad_settings_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = \n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings(config_file=bad, environ={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("prot = 1\n")
    with pytest.raises(ConfigurationError, match="unknown setting"):
        load_settings(config_file=unknown, environ={})


def test_settings_round_trip_through_environment(tmp_path: Path) -> None:
    s = load_settings({"port": 8123, "data_dir": str(tmp_path), "auto_migrate": False}, environ={})
    again = load_settings(environ=s.as_env())
    assert dict(again) == dict(s)
