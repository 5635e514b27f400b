"""Solution packages: export from one platform, install on another, on SQLite and
PostgreSQL; the version rule; strict checking; all or nothing."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from citytwin.cli import main
from citytwin.domains import packages
from citytwin.domains.base import (
    Domain,
    Kpi,
    KpiQuery,
    KpiResult,
    PropertyTemplate,
    SensorTemplate,
    ThingKind,
    Unit,
)
from citytwin.domains.data import DomainData
from citytwin.domains.packages import (
    NOTHING_CHANGED,
    IncompatiblePackage,
    PackageError,
    check_compatible,
    export_package,
    install,
    parse_package,
)
from citytwin.plugins import manager
from citytwin.plugins.hookspecs import hookimpl
from tests.support import Client, Databases, make_client

# --- a small domain of its own, registered as a plugin for these tests --------------------
MOISTURE = "https://example.org/def/soil-moisture"
VISITORS = "https://example.org/def/visitor-count"
DEFAULTS = {"dry_below": 20.0, "k_min": 5, "time_zone": "Europe/Berlin"}


async def _dry_below(data: DomainData, query: KpiQuery) -> KpiResult:
    """The threshold the city set: a KPI that shows which settings KPIs see."""
    return KpiResult(value=(await data.settings("parks"))["dry_below"])


async def _nothing(data: DomainData, query: KpiQuery) -> KpiResult:
    return KpiResult()


def parks(version: str = "1.2.0") -> Domain:
    return Domain(
        name="parks",
        title="Parks",
        version=version,
        properties=(
            PropertyTemplate(
                "moisture", "Soil moisture", MOISTURE, "Water in the soil", Unit("percent", "%")
            ),
            PropertyTemplate(
                "visitors", "Visitors", VISITORS, "People through a gate", Unit("count", "1")
            ),
        ),
        sensors=(
            SensorTemplate("probe", "Soil probe", "Capacitive probe", "https://example.org/probe"),
            SensorTemplate("counter", "Gate counter", "Infrared counter", "https://example.org/c"),
        ),
        thing_kinds=(
            ThingKind("bed", "Flower bed", "A planted bed", ("moisture",), "probe"),
            ThingKind("gate", "Park gate", "An entrance", ("visitors",), "counter"),
        ),
        kpis=(
            Kpi("dry_below", "Dryness threshold", "%", "The threshold in use", _dry_below),
            Kpi("visits", "Visits", "1", "Visitors per day", _nothing),
        ),
        settings=DEFAULTS,
    )


@hookimpl
def citytwin_domains() -> tuple[Domain, ...]:
    return (parks(),)


@pytest.fixture(autouse=True)
def parks_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every plugin manager made during a test (the app's, the CLI's) has the parks domain."""
    monkeypatch.setattr(
        manager, "DEFAULT_PLUGINS", (*manager.DEFAULT_PLUGINS, sys.modules[__name__])
    )


def parks_doc(**changes: Any) -> dict[str, Any]:
    """The package of the parks domain as a city would hand it on, written out by hand."""
    doc: dict[str, Any] = {
        "format": "citytwin-package",
        "formatVersion": 1,
        "domain": "parks",
        "version": "1.2.0",
        "title": "Parks",
        "created": "2025-03-01T12:00:00Z",
        "observedProperties": [
            {
                "key": "moisture",
                "name": "Soil moisture",
                "definition": MOISTURE,
                "description": "Water in the soil",
                "properties": {"key": "moisture"},
            },
            {
                "key": "visitors",
                "name": "Visitors",
                "definition": VISITORS,
                "description": "People through a gate",
            },
        ],
        "sensors": [
            {
                "key": "probe",
                "name": "Soil probe",
                "description": "Capacitive probe",
                "encodingType": "text/html",
                "metadata": "https://example.org/probe",
            },
            {
                "key": "counter",
                "name": "Gate counter",
                "description": "Infrared counter",
                "encodingType": "text/html",
                "metadata": "https://example.org/c",
            },
        ],
        "thingKinds": [
            {
                "key": "bed",
                "name": "Flower bed",
                "description": "A planted bed",
                "properties": ["moisture"],
                "sensor": "probe",
            }
        ],
        "kpis": [
            {"key": "dry_below", "title": "T", "unit": "%", "description": "d", "enabled": True},
            {"key": "visits", "title": "V", "unit": "1", "description": "d", "enabled": False},
        ],
        "settings": {"dry_below": 15.0, "k_min": 10},
        "rules": [],
    }
    doc.update(changes)
    return doc


# --- helpers on a running platform --------------------------------------------------------
def do_install(client: Client, doc: dict[str, Any]) -> packages.InstallReport:
    service = client.app.state.service
    return client.call(install(service, parse_package(doc), {"parks": parks()}))


def do_export(client: Client) -> dict[str, Any]:
    return client.call(export_package(client.app.state.service.storage, parks()))


def set_up(client: Client) -> dict[str, Any]:
    """ObservedProperties by definition and Sensors by template, as stored."""
    ops = client.values("ObservedProperties")
    sensors = client.values("Sensors")
    return {
        "observedProperties": sorted((o["definition"], o["name"]) for o in ops),
        "sensors": sorted(
            ((s.get("properties") or {}).get("template"), s["name"], s["metadata"]) for s in sensors
        ),
    }


def package_rows(client: Client) -> list[tuple[Any, ...]]:
    storage = client.app.state.service.storage
    table = packages.packages_table(storage.dialect.column_types)

    async def read() -> list[tuple[Any, ...]]:
        async with storage.reader() as r:
            return [tuple(row) for row in await r.fetch(sa.select(table))]

    return client.call(read())


# --- export from one platform, install on another -----------------------------------------
def test_export_from_one_platform_installs_the_same_set_up_on_another(
    new_client: Callable[..., Client],
) -> None:
    a = new_client("a")
    first = do_install(a, parks_doc())
    assert first.first_install
    assert first.created_observed_properties == ["moisture", "visitors"]
    assert first.created_sensors == ["probe", "counter"]

    doc = do_export(a)
    assert doc["format"] == "citytwin-package"
    assert doc["formatVersion"] == 1
    assert doc["version"] == "1.2.0"
    # the city's choices over the domain's defaults; time_zone was left at its default
    assert doc["settings"] == {"dry_below": 15.0, "k_min": 10, "time_zone": "Europe/Berlin"}
    assert [(k["key"], k["enabled"]) for k in doc["kpis"]] == [
        ("dry_below", True),
        ("visits", False),
    ]
    assert [s["properties"]["template"] for s in doc["sensors"]] == ["parks/probe", "parks/counter"]
    assert [o["key"] for o in doc["observedProperties"]] == ["moisture", "visitors"]
    assert doc["observedProperties"][0]["unitOfMeasurement"]["symbol"] == "%"

    b = new_client("b")
    text = orjson.dumps(doc)  # through JSON text, as a file would carry it
    report = b.call(install(b.app.state.service, packages.loads(text), {"parks": parks()}))
    assert report.first_install
    assert report.summary().startswith("parks 1.2.0 installed: 2 ObservedProperties and 2 Sensors")
    assert set_up(b) == set_up(a)
    assert set_up(b)["sensors"] == [
        ("parks/counter", "Gate counter", "https://example.org/c"),
        ("parks/probe", "Soil probe", "https://example.org/probe"),
    ]

    listed = b.ok("GET", "/api/v1/packages")["value"]
    assert [(p["domain"], p["version"]) for p in listed] == [("parks", "1.2.0")]
    assert listed[0]["settings"] == doc["settings"]
    assert listed[0]["kpis"] == [
        {"key": "dry_below", "enabled": True},
        {"key": "visits", "enabled": False},
    ]
    assert listed[0]["installedAt"].endswith("Z")

    # the KPIs of B see A's settings: the threshold is 15.0 there, not the default 20.0
    kpi = b.ok("GET", "/api/v1/kpis/parks/dry_below?interval=2025-03-01T00:00:00Z/P1D")
    assert kpi["value"] == 15.0
    data = DomainData(b.app.state.service.storage, b.app.state.service.registry, (parks(),))
    assert b.call(data.settings("parks")) == doc["settings"]
    assert b.call(data.settings("unknown")) == {}
    # the package switched "visits" off: B does not compute it, and says why
    off = b.request("GET", "/api/v1/kpis/parks/visits")
    assert off.status_code == 404
    assert (
        "switched off on this platform by its installed package (parks 1.2.0)"
        in (off.json()["message"])
    )


def test_settings_without_an_installed_package_are_the_domain_defaults(
    new_client: Callable[..., Client],
) -> None:
    c = new_client("defaults")
    data = DomainData(c.app.state.service.storage, c.app.state.service.registry, (parks(),))
    assert c.call(data.settings("parks")) == DEFAULTS
    assert c.ok("GET", "/api/v1/kpis/parks/dry_below")["value"] == 20.0
    assert c.request("GET", "/api/v1/kpis/parks/visits").status_code == 200  # all are on
    assert c.ok("GET", "/api/v1/packages") == {"value": []}
    exported = do_export(c)
    assert exported["settings"] == DEFAULTS
    assert all(k["enabled"] for k in exported["kpis"])


def test_installing_twice_changes_nothing_and_new_settings_update(
    new_client: Callable[..., Client],
) -> None:
    c = new_client("twice")
    do_install(c, parks_doc())
    before, rows = set_up(c), package_rows(c)

    again = do_install(c, parks_doc(created="2025-04-01T00:00:00Z"))  # a later export
    assert not again.changed
    assert again.summary() == f"parks 1.2.0: {NOTHING_CHANGED}"
    assert set_up(c) == before
    assert package_rows(c) == rows  # not even the installation time moved
    assert len(c.values("ObservedProperties")) == 2
    assert len(c.values("Sensors")) == 2

    changed = do_install(c, parks_doc(settings={"dry_below": 12.5, "k_min": 10}))
    assert changed.changed
    assert not changed.first_install
    assert changed.settings_changed == ["dry_below"]
    assert changed.created_observed_properties == []
    assert changed.created_sensors == []
    assert "updated" in changed.summary()
    assert "dry_below" in changed.summary()
    assert c.ok("GET", "/api/v1/packages")["value"][0]["settings"] == {
        "dry_below": 12.5,
        "k_min": 10,
    }
    assert c.ok("GET", "/api/v1/kpis/parks/dry_below")["value"] == 12.5
    assert set_up(c) == before


def test_stored_entities_of_the_domain_are_found_not_duplicated(
    new_client: Callable[..., Client],
) -> None:
    c = new_client("found")
    # as the simulator runner makes them: an ObservedProperty by its definition and a
    # Sensor marked with its template
    c.create(
        "ObservedProperties",
        {"name": "Moisture (ours)", "definition": MOISTURE, "description": "already here"},
    )
    c.create(
        "Sensors",
        {
            "name": "Probe (ours)",
            "description": "already here",
            "encodingType": "text/html",
            "metadata": "https://example.org/ours",
            "properties": {"template": "parks/probe"},
        },
    )
    report = do_install(c, parks_doc())
    assert report.created_observed_properties == ["visitors"]
    assert report.created_sensors == ["counter"]
    names = sorted(o["name"] for o in c.values("ObservedProperties"))
    assert names == ["Moisture (ours)", "Visitors"]
    assert sorted(s["name"] for s in c.values("Sensors")) == ["Gate counter", "Probe (ours)"]


def test_a_failed_import_stores_nothing(
    new_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = new_client("failing")
    seen: list[int] = []

    async def broken(w: Any, *args: Any, **kwargs: Any) -> None:
        # by now the transaction holds the new ObservedProperties and Sensors
        seen.append(await w.scalar(sa.text("SELECT count(*) FROM observed_properties")))
        seen.append(await w.scalar(sa.text("SELECT count(*) FROM sensors")))
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(packages, "_record", broken)
    with pytest.raises(RuntimeError, match="the disk is full"):
        do_install(c, parks_doc())
    assert seen == [2, 2]
    assert c.values("ObservedProperties") == []
    assert c.values("Sensors") == []
    assert package_rows(c) == []


# --- the version rule ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("package", "platform"),
    [
        ("1.2.0", "1.2.0"),
        ("1.2.9", "1.2.0"),  # a patch release changes no template
        ("1.0.0", "1.2.0"),  # an older minor: the platform still has all it uses
        ("1.2.0", "1.3.1"),
    ],
)
def test_same_major_and_at_most_the_platforms_minor_installs(package: str, platform: str) -> None:
    found = check_compatible(parse_package(parks_doc(version=package)), {"parks": parks(platform)})
    assert found.version == platform


@pytest.mark.parametrize(
    ("package", "platform", "message"),
    [
        ("2.0.0", "1.2.0", "the package is for parks 2.0.0, this platform has parks 1.2.0"),
        ("1.2.0", "2.0.0", "the package is for parks 1.2.0, this platform has parks 2.0.0"),
        ("0.9.0", "1.2.0", "same major version (0)"),
        ("1.3.0", "1.2.5", "it needs parks 1.3 or newer"),
    ],
)
def test_other_majors_and_newer_minors_are_refused_naming_both_versions(
    package: str, platform: str, message: str
) -> None:
    with pytest.raises(IncompatiblePackage) as caught:
        check_compatible(parse_package(parks_doc(version=package)), {"parks": parks(platform)})
    assert message in caught.value.message
    assert package in caught.value.message
    assert platform in caught.value.message
    assert caught.value.status == 409


def test_a_package_of_a_domain_the_platform_lacks_is_refused() -> None:
    with pytest.raises(IncompatiblePackage, match=r"parks domain 1\.2\.0, which this platform "):
        check_compatible(parse_package(parks_doc()), {})


# --- strict checking ----------------------------------------------------------------------
def _without(path: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        del target[int(last) if last.isdigit() else last]

    return change


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        target[int(last) if last.isdigit() else last] = value

    return change


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_set("format", "frost-export"), "format:"),
        (_without("format"), "format:"),
        (_set("formatVersion", 2), "formatVersion:"),
        (_set("formatVersion", "1"), "formatVersion:"),
        (_set("formatVersion", True), "formatVersion:"),
        (_set("extra", 1), "extra:"),
        (_set("domain", "Parks & Gardens"), "domain:"),
        (_without("domain"), "domain:"),
        (_set("version", "1.2"), "version:"),
        (_set("version", "v1.2.0"), "version:"),
        (_set("version", 1), "version:"),
        (_set("title", ""), "title:"),
        (_set("created", "yesterday"), "created:"),
        (_set("observedProperties", {}), "observedProperties:"),
        (_set("observedProperties.1", "visitors"), "observedProperties[1]:"),
        (_without("observedProperties.1.definition"), "observedProperties[1].definition:"),
        (_set("observedProperties.0.name", 3), "observedProperties[0].name:"),
        (_set("observedProperties.0.colour", "red"), "observedProperties[0].colour:"),
        (_set("observedProperties.1.key", "moisture"), "observedProperties[1].key:"),
        (_set("observedProperties.1.definition", MOISTURE), "observedProperties[1].definition:"),
        (_without("sensors.0.key"), "sensors[0].key:"),
        (_set("sensors.0.encodingType", None), "sensors[0].encodingType:"),
        (_set("sensors.1.properties", {"template": "energy/counter"}), "sensors[1].properties"),
        (_set("thingKinds.0.properties", ["moisture", "ph"]), "thingKinds[0].properties[1]:"),
        (_set("thingKinds.0.properties", "moisture"), "thingKinds[0].properties:"),
        (_set("thingKinds.0.sensor", "camera"), "thingKinds[0].sensor:"),
        (_set("thingKinds.0.personal", "no"), "thingKinds[0].personal:"),
        (_set("thingKinds.0.openData", 1), "thingKinds[0].openData:"),
        (_without("kpis.1.enabled"), "kpis[1].enabled:"),
        (_set("kpis.1.enabled", "yes"), "kpis[1].enabled:"),
        (_set("settings", [1]), "settings:"),
        (_set("rules", {}), "rules:"),
        (_set("rules", [{"if": "x"}]), "rules:"),
    ],
)
def test_malformed_documents_are_refused_naming_the_field(
    change: Callable[[dict[str, Any]], None], field: str
) -> None:
    doc = copy.deepcopy(parks_doc())
    change(doc)
    with pytest.raises(PackageError) as caught:
        parse_package(doc)
    assert caught.value.message.startswith(field), caught.value.message
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (parks_doc(settings={"dry_below": "dry"}), "settings.dry_below: expected a number"),
        (parks_doc(settings={"rain": 1}), "settings.rain: the parks domain has no such setting"),
        (
            parks_doc(
                kpis=[{"key": "x", "title": "", "unit": "", "description": "", "enabled": True}]
            ),
            "kpis[0].key: the parks domain 1.2.0 has no KPI 'x'",
        ),
    ],
)
def test_settings_and_kpis_must_be_the_domains(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(PackageError) as caught:
        check_compatible(parse_package(doc), {"parks": parks()})
    assert caught.value.message.startswith(field), caught.value.message


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(PackageError, match="not JSON"):
        packages.loads(b"{format: citytwin")
    with pytest.raises(PackageError, match="must be a JSON object"):
        packages.loads(b"[]")


# --- the command line ---------------------------------------------------------------------
@pytest.fixture
def two_databases(backend: str, databases: Databases, tmp_path: Path) -> Iterator[tuple[str, str]]:
    urls = (databases.create(backend, tmp_path / "a"), databases.create(backend, tmp_path / "b"))
    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "b").mkdir(exist_ok=True)
    yield urls
    for url in urls:
        databases.drop(url)


def test_cli_export_import_and_import_again(two_databases: tuple[str, str], tmp_path: Path) -> None:
    a, b = two_databases
    runner = CliRunner()
    env = {"CITYTWIN_DATA_DIR": str(tmp_path)}
    handmade = tmp_path / "handmade.citytwin.json"
    handmade.write_bytes(orjson.dumps(parks_doc()))
    first = runner.invoke(main, ["package", "import", str(handmade), "--db", a], env=env)
    assert first.exit_code == 0, first.output
    assert "parks 1.2.0 installed" in first.output

    out = tmp_path / "parks.citytwin.json"
    exported = runner.invoke(
        main, ["package", "export", "parks", "-o", str(out), "--db", a], env=env
    )
    assert exported.exit_code == 0, exported.output
    assert f"wrote the parks package, version 1.2.0, to {out}" in exported.output
    doc = orjson.loads(out.read_bytes())
    assert doc["settings"]["dry_below"] == 15.0

    installed = runner.invoke(main, ["package", "import", str(out), "--db", b], env=env)
    assert installed.exit_code == 0, installed.output
    assert "parks 1.2.0 installed: 2 ObservedProperties and 2 Sensors created" in installed.output
    again = runner.invoke(main, ["package", "import", str(out), "--db", b], env=env)
    assert again.exit_code == 0, again.output
    assert f"parks 1.2.0: {NOTHING_CHANGED}" in again.output

    newer = tmp_path / "newer.citytwin.json"
    newer.write_bytes(orjson.dumps({**doc, "version": "2.0.0"}))
    refused = runner.invoke(main, ["package", "import", str(newer), "--db", b], env=env)
    assert refused.exit_code == 1
    assert "parks 2.0.0, this platform has parks 1.2.0" in refused.output
    assert "Traceback" not in refused.output

    broken = tmp_path / "broken.citytwin.json"
    broken.write_bytes(orjson.dumps({**doc, "formatVersion": 7}))
    refused = runner.invoke(main, ["package", "import", str(broken), "--db", b], env=env)
    assert refused.exit_code == 1
    assert f"{broken}: formatVersion: this citytwin reads format version 1" in refused.output

    unknown = runner.invoke(
        main, ["package", "export", "tides", "-o", str(out), "--db", b], env=env
    )
    assert unknown.exit_code == 1
    assert "no domain named 'tides'; it has: " in unknown.output
    assert "parks" in unknown.output.split("it has: ")[1]


@pytest.mark.parametrize("domain", ["energy", "mobility", "water", "environment"])
def test_each_built_in_domain_travels_to_a_fresh_platform(
    domain: str, two_databases: tuple[str, str], tmp_path: Path
) -> None:
    from citytwin.plugins.manager import domains as installed_domains
    from citytwin.plugins.manager import plugin_manager

    (template,) = [d for d in installed_domains(plugin_manager()) if d.name == domain]
    a, b = two_databases
    runner = CliRunner()
    env = {"CITYTWIN_DATA_DIR": str(tmp_path)}
    out = tmp_path / f"{domain}.citytwin.json"
    exported = runner.invoke(
        main, ["package", "export", domain, "-o", str(out), "--db", a], env=env
    )
    assert exported.exit_code == 0, exported.output
    kinds = orjson.loads(out.read_bytes())["thingKinds"]
    assert {k["key"]: (k["personal"], k["openData"]) for k in kinds} == {
        t.key: (t.personal, t.open_data) for t in template.thing_kinds
    }
    installed = runner.invoke(main, ["package", "import", str(out), "--db", b], env=env)
    assert installed.exit_code == 0, installed.output
    client = make_client(tmp_path / "b", db=b)
    try:
        stored = client.get("ObservedProperties?$select=definition&$top=1000").json()["value"]
        assert sorted(op["definition"] for op in stored) == sorted(
            {p.definition for p in template.properties}
        )
        sensors = client.get("Sensors?$select=properties&$top=1000").json()["value"]
        assert sorted(s["properties"]["template"] for s in sensors) == sorted(
            f"{domain}/{s.key}" for s in template.sensors
        )
        (package,) = [
            p for p in client.get("/api/v1/packages").json()["value"] if p["domain"] == domain
        ]
        assert package["version"] == template.version
    finally:
        client.close()
