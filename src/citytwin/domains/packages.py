"""Solution packages: one city hands the set-up of a domain to the next.

A package is a JSON document (``*.citytwin.json``, described in docs/packages.md) with a
domain's ObservedProperties and Sensors as SensorThings bodies, its kinds of Thing, its
KPIs (each switched on or off) and the KPI settings a city chose. :func:`export_package`
writes one from a domain's templates and what this platform has installed;
:func:`parse_package` checks a document strictly; :func:`install` stores it on another
platform in one transaction and records it in the ``domain_packages`` table.

Versions follow semantic versioning (see :func:`check_compatible`): a package installs on
a platform whose domain has the same MAJOR version and at least the package's MINOR one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from citytwin.access.audit import Action, Origin, cli_origin
from citytwin.domains.base import Domain
from citytwin.errors import BadRequest, Conflict
from citytwin.model.values import format_instant, parse_instant
from citytwin.planner.dialect import param
from citytwin.planner.tables import ColumnTypes
from citytwin.service.drafts import DraftParser, Mode
from citytwin.storage.base import Reader, Storage, Writer

if TYPE_CHECKING:
    from citytwin.service import Service
    from citytwin.service.unit import Unit

FORMAT = "citytwin-package"
FORMAT_VERSION = 1
SUFFIX = ".citytwin.json"
NOTHING_CHANGED = "already installed, nothing changed"
_SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_TOP = (
    "format",
    "formatVersion",
    "domain",
    "version",
    "title",
    "created",
    "observedProperties",
    "sensors",
    "thingKinds",
    "kpis",
    "settings",
    "rules",
)


class PackageError(BadRequest):
    """A package document is malformed; the message names the field at fault."""


class IncompatiblePackage(Conflict):
    """A well-formed package that this platform cannot install (its domain is missing or
    of another version); the message names both versions."""


# --- the document ---------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: Any, where: str = "version") -> Version:
        match = _SEMVER.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise PackageError(f"{where}: expected a version MAJOR.MINOR.PATCH, found {text!r}")
        return cls(*(int(g) for g in match.groups()))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class Package:
    """A checked package document; ``document`` is the JSON as given."""

    domain: str
    version: Version
    title: str
    created: datetime
    observed_properties: tuple[dict[str, Any], ...]
    sensors: tuple[dict[str, Any], ...]
    thing_kinds: tuple[dict[str, Any], ...]
    kpis: tuple[dict[str, Any], ...]
    settings: dict[str, Any]
    document: dict[str, Any] = field(repr=False)


def sensor_template(domain: str, key: str) -> str:
    """How a Sensor made for a domain's SensorTemplate is found again (as the simulator
    runner finds it): ``Sensor.properties.template``."""
    return f"{domain}/{key}"


async def export_package(
    storage: Storage, domain: Domain, now: datetime | None = None
) -> dict[str, Any]:
    """The package document of ``domain`` as this platform has it set up: the domain's
    templates, and the settings and KPI switches of the package installed here, if any."""
    async with storage.reader() as r:
        installed = await _installed_row(r, storage, domain.name)
    settings = dict(domain.settings)
    enabled: dict[str, bool] = {}
    if installed is not None:
        settings.update(installed["settings"])
        enabled = {k["key"]: k["enabled"] for k in installed["kpis"]}
    return {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "domain": domain.name,
        "version": domain.version,
        "title": domain.title,
        "created": format_instant(now or datetime.now(UTC)),
        "observedProperties": [
            {
                "key": p.key,
                **p.observed_property(),
                "unitOfMeasurement": p.unit.as_sta(),
                "observationType": p.observation_type,
            }
            for p in domain.properties
        ],
        "sensors": [_sensor_body(domain.name, s.key, s.sensor()) for s in domain.sensors],
        "thingKinds": [
            {
                "key": t.key,
                "name": t.name,
                "description": t.description,
                "properties": list(t.properties),
                "sensor": t.sensor,
                "personal": t.personal,
                "openData": t.open_data,
            }
            for t in domain.thing_kinds
        ],
        "kpis": [
            {
                "key": k.key,
                "title": k.title,
                "unit": k.unit,
                "description": k.description,
                "enabled": enabled.get(k.key, True),
            }
            for k in domain.kpis
        ],
        "settings": settings,
        "rules": [],
    }


def _sensor_body(domain: str, key: str, body: Mapping[str, Any]) -> dict[str, Any]:
    props = dict(body.get("properties") or {})
    props.update(key=key, template=sensor_template(domain, key))
    return {"key": key, **body, "properties": props}


def loads(data: bytes | str) -> Package:
    """A package from its JSON text."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise PackageError(f"the package is not JSON: {exc}") from None
    return parse_package(doc)


def parse_package(doc: Any) -> Package:
    """Check a package document strictly; :class:`PackageError` names the first field at
    fault."""
    if not isinstance(doc, dict):
        raise PackageError("the package must be a JSON object")
    if doc.get("format") != FORMAT:
        raise PackageError(f"format: expected {FORMAT!r}, found {doc.get('format')!r}")
    fv = doc.get("formatVersion")
    if fv != FORMAT_VERSION or isinstance(fv, bool):
        raise PackageError(
            f"formatVersion: this citytwin reads format version {FORMAT_VERSION}, "
            f"the package has {fv!r}"
        )
    unknown = sorted(set(doc) - set(_TOP))
    if unknown:
        raise PackageError(f"{unknown[0]}: not a member of a package (format version 1)")
    domain = _text(doc, "domain", "domain")
    if not _NAME.fullmatch(domain):
        raise PackageError(f"domain: expected a lower-case name like 'energy', found {domain!r}")
    version = Version.parse(doc.get("version"))
    title = _text(doc, "title", "title")
    try:
        created = parse_instant(_text(doc, "created", "created"))
    except ValueError as exc:
        raise PackageError(f"created: {exc}") from None
    props = _items(doc, "observedProperties", _OBSERVED_PROPERTY)
    _unique(props, "observedProperties", "definition")
    sensors = _items(doc, "sensors", _SENSOR)
    for i, s in enumerate(sensors):
        template = (s.get("properties") or {}).get("template")
        if template is not None and template != sensor_template(domain, s["key"]):
            raise PackageError(
                f"sensors[{i}].properties.template: expected "
                f"{sensor_template(domain, s['key'])!r}, found {template!r}"
            )
    kinds = _items(doc, "thingKinds", _THING_KIND)
    prop_keys = {p["key"] for p in props}
    sensor_keys = {s["key"] for s in sensors}
    for i, kind in enumerate(kinds):
        for j, key in enumerate(kind["properties"]):
            if key not in prop_keys:
                raise PackageError(f"thingKinds[{i}].properties[{j}]: no observedProperty {key!r}")
        if kind["sensor"] not in sensor_keys:
            raise PackageError(f"thingKinds[{i}].sensor: no sensor {kind['sensor']!r}")
    kpis = _items(doc, "kpis", _KPI)
    settings = doc.get("settings")
    if not isinstance(settings, dict):
        raise PackageError("settings: expected an object of KPI settings")
    rules = doc.get("rules", [])
    if not isinstance(rules, list):
        raise PackageError("rules: expected a list")
    if rules:
        raise PackageError("rules: alert rules are not part of format version 1; leave it []")
    return Package(
        domain=domain,
        version=version,
        title=title,
        created=created,
        observed_properties=tuple(props),
        sensors=tuple(sensors),
        thing_kinds=tuple(kinds),
        kpis=tuple(kpis),
        settings=settings,
        document=doc,
    )


# member name -> (required, accepted JSON types); "key" is required everywhere
_Shape = Mapping[str, tuple[bool, tuple[type, ...]]]
_OBSERVED_PROPERTY: _Shape = {
    "name": (True, (str,)),
    "definition": (True, (str,)),
    "description": (True, (str,)),
    "properties": (False, (dict,)),
    "unitOfMeasurement": (False, (dict,)),
    "observationType": (False, (str,)),
}
_SENSOR: _Shape = {
    "name": (True, (str,)),
    "description": (True, (str,)),
    "encodingType": (True, (str,)),
    "metadata": (True, (str, dict)),
    "properties": (False, (dict,)),
}
_THING_KIND: _Shape = {
    "name": (True, (str,)),
    "description": (True, (str,)),
    "properties": (True, (list,)),
    "sensor": (True, (str,)),
    "personal": (False, (bool,)),
    "openData": (False, (bool,)),
}
_KPI: _Shape = {
    "title": (True, (str,)),
    "unit": (True, (str,)),
    "description": (True, (str,)),
    "enabled": (True, (bool,)),
}
_STA_OBSERVED_PROPERTY = ("name", "definition", "description", "properties")
_TYPE_NAMES = {str: "a string", dict: "an object", list: "a list", bool: "true or false"}


def _text(obj: Mapping[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PackageError(f"{where}: expected a non-empty string, found {value!r}")
    return value


def _items(doc: Mapping[str, Any], member: str, shape: _Shape) -> list[dict[str, Any]]:
    items = doc.get(member)
    if not isinstance(items, list):
        raise PackageError(f"{member}: expected a list, found {items!r}")
    for i, item in enumerate(items):
        where = f"{member}[{i}]"
        if not isinstance(item, dict):
            raise PackageError(f"{where}: expected an object, found {item!r}")
        _text(item, "key", f"{where}.key")
        unknown = sorted(set(item) - set(shape) - {"key"})
        if unknown:
            raise PackageError(f"{where}.{unknown[0]}: not a member of {member}")
        for name, (required, types) in shape.items():
            if name not in item:
                if required:
                    raise PackageError(f"{where}.{name}: missing")
                continue
            value = item[name]
            if not isinstance(value, types):
                expected = " or ".join(_TYPE_NAMES[t] for t in types)
                raise PackageError(f"{where}.{name}: expected {expected}, found {value!r}")
            if isinstance(value, list) and not all(isinstance(v, str) for v in value):
                raise PackageError(f"{where}.{name}: expected a list of property keys")
    _unique(items, member, "key")
    return items


def _unique(items: Sequence[Mapping[str, Any]], member: str, name: str) -> None:
    seen: set[Any] = set()
    for i, item in enumerate(items):
        if item[name] in seen:
            raise PackageError(f"{member}[{i}].{name}: {item[name]!r} appears twice")
        seen.add(item[name])


# --- compatibility ---------------------------------------------------------------------------
def check_compatible(package: Package, domains: Mapping[str, Domain]) -> Domain:
    """The platform's domain that ``package`` installs on, or :class:`IncompatiblePackage`.

    The rule: the package's MAJOR version must equal the platform domain's; the platform's
    MAJOR.MINOR must be at least the package's (a minor release adds templates and KPIs a
    package of it may use; a patch release changes none, so PATCH is not compared). The
    package's KPIs and settings must be ones the platform's domain has.
    """
    domain = domains.get(package.domain)
    if domain is None:
        have = ", ".join(sorted(domains)) or "none"
        raise IncompatiblePackage(
            f"the package is for the {package.domain} domain {package.version}, which this "
            f"platform does not have (installed domains: {have})"
        )
    mine = Version.parse(domain.version, f"version of the installed {domain.name} domain")
    theirs = package.version
    if theirs.major != mine.major:
        raise IncompatiblePackage(
            f"the package is for {domain.name} {theirs}, this platform has {domain.name} "
            f"{mine}: a package installs only on the same major version ({theirs.major})"
        )
    if (theirs.major, theirs.minor) > (mine.major, mine.minor):
        raise IncompatiblePackage(
            f"the package is for {domain.name} {theirs}, this platform has {domain.name} "
            f"{mine}: it needs {domain.name} {theirs.major}.{theirs.minor} or newer"
        )
    known = {k.key for k in domain.kpis}
    for i, kpi in enumerate(package.kpis):
        if kpi["key"] not in known:
            raise PackageError(
                f"kpis[{i}].key: the {domain.name} domain {mine} has no KPI {kpi['key']!r}"
            )
    for name, value in package.settings.items():
        if name not in domain.settings:
            have = ", ".join(sorted(domain.settings)) or "none"
            raise PackageError(
                f"settings.{name}: the {domain.name} domain has no such setting (it has {have})"
            )
        default = domain.settings[name]
        if default is not None and _kind(value) != _kind(default):
            raise PackageError(
                f"settings.{name}: expected {_kind(default)} like the default {default!r}, "
                f"found {value!r}"
            )
    return domain


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"


# --- installing ----------------------------------------------------------------------------
@dataclass
class InstallReport:
    """What :func:`install` did."""

    domain: str
    version: str
    created_observed_properties: list[str] = field(default_factory=list)  # keys
    created_sensors: list[str] = field(default_factory=list)
    first_install: bool = False
    settings_changed: list[str] = field(default_factory=list)  # names
    kpis_changed: bool = False
    version_changed: bool = False

    @property
    def changed(self) -> bool:
        return bool(
            self.created_observed_properties
            or self.created_sensors
            or self.first_install
            or self.settings_changed
            or self.kpis_changed
            or self.version_changed
        )

    def summary(self) -> str:
        head = f"{self.domain} {self.version}"
        if not self.changed:
            return f"{head}: {NOTHING_CHANGED}"
        parts = [
            f"{len(self.created_observed_properties)} ObservedProperties and "
            f"{len(self.created_sensors)} Sensors created"
        ]
        if self.settings_changed:
            parts.append("settings changed: " + ", ".join(self.settings_changed))
        if self.kpis_changed:
            parts.append("KPI switches changed")
        if self.version_changed:
            parts.append("version changed")
        verb = "installed" if self.first_install else "updated"
        return f"{head} {verb}: " + "; ".join(parts)


async def install(
    service: Service,
    package: Package,
    domains: Mapping[str, Domain],
    origin: Origin | None = None,
) -> InstallReport:
    """Install ``package``: create the ObservedProperties (matched by definition) and
    Sensors (matched by ``properties.template``) this platform lacks and record the
    package and its settings, all in one transaction. Installing the same package again
    changes nothing. The audit log names ``origin`` (default: the command line's user)."""
    check_compatible(package, domains)
    storage = service.storage
    report = InstallReport(package.domain, str(package.version))
    kpis = [{"key": k["key"], "enabled": k["enabled"]} for k in package.kpis]
    async with service.transaction(origin or cli_origin(), datetime.now(UTC)) as unit:
        w = unit.w
        report.created_observed_properties = await _observed_properties(unit, package)
        report.created_sensors = await _sensors(unit, package)
        before = await _installed_row(w, storage, package.domain)
        if before is None:
            report.first_install = True
            report.settings_changed = sorted(package.settings)
        else:
            old = before["settings"]
            new = package.settings
            report.settings_changed = sorted(
                n for n in set(old) | set(new) if old.get(n, _MISSING) != new.get(n, _MISSING)
            )
            report.kpis_changed = before["kpis"] != kpis
            report.version_changed = before["version"] != str(package.version)
        if report.changed:
            await _record(w, storage, package, kpis, unit.now, replace=before is not None)
            detail = {"domain": package.domain, "version": str(package.version)}
            unit.actions.append(Action("install", "package", count=1, detail=detail))
    await service.bus.publish(unit.events)
    return report


async def _observed_properties(unit: Unit, package: Package) -> list[str]:
    """Create the package's ObservedProperties that no stored one has the definition of;
    return their keys."""
    et = unit.registry.type("ObservedProperty")
    table = unit.table(et)
    parser = DraftParser(unit.registry)
    created = []
    for item in package.observed_properties:
        where = table.c.definition == param(item["definition"])
        if await unit.w.scalar(sa.select(table.c.id).where(where).limit(1)) is None:
            body = {k: v for k, v in item.items() if k in _STA_OBSERVED_PROPERTY}
            await unit.create(parser.parse(et, body, Mode.CREATE))
            created.append(item["key"])
    return created


async def _sensors(unit: Unit, package: Package) -> list[str]:
    """Create the package's Sensors that no stored one has the template of; return their
    keys."""
    et = unit.registry.type("Sensor")
    table = unit.table(et)
    parser = DraftParser(unit.registry)
    created = []
    for item in package.sensors:
        template = sensor_template(package.domain, item["key"])
        where = unit.dialect.json_text(table.c.properties, ("template",)) == param(template)
        if await unit.w.scalar(sa.select(table.c.id).where(where).limit(1)) is None:
            body = {k: v for k, v in item.items() if k != "key"}
            body = _sensor_body(package.domain, item["key"], body)
            del body["key"]
            await unit.create(parser.parse(et, body, Mode.CREATE))
            created.append(item["key"])
    return created


_MISSING = object()


async def installed(storage: Storage) -> list[dict[str, Any]]:
    """The packages installed on this platform, by domain name."""
    t = packages_table(storage.dialect.column_types)
    async with storage.reader() as r:
        rows = await r.fetch(sa.select(t).order_by(t.c.domain))
    return [_decode(storage, row) for row in rows]


async def installed_settings(
    reader: Reader, storage: Storage, domain: str
) -> dict[str, Any] | None:
    """The settings of the package installed for ``domain``, or None if there is none."""
    row = await _installed_row(reader, storage, domain)
    return None if row is None else row["settings"]


async def switched_off(storage: Storage, domain: str) -> tuple[set[str], str | None]:
    """The KPIs of ``domain`` that its installed package switches off, with the
    package's version (none and None when no package is installed)."""
    async with storage.reader() as r:
        row = await _installed_row(r, storage, domain)
    if row is None:
        return set(), None
    return {k["key"] for k in row["kpis"] if not k["enabled"]}, str(row["version"])


# --- the table ------------------------------------------------------------------------
@cache
def packages_table(types: ColumnTypes) -> sa.Table:
    """``domain_packages`` in a backend's column types (its migrations create it)."""
    return sa.Table(
        "domain_packages",
        sa.MetaData(),
        sa.Column("domain", types.text, primary_key=True),
        sa.Column("version", types.text, nullable=False),
        sa.Column("settings", types.json, nullable=False),
        sa.Column("kpis", types.json, nullable=False),
        sa.Column("installed_at", types.time, nullable=False),
        sa.Column("document", types.json, nullable=False),
    )


async def _installed_row(r: Reader, storage: Storage, domain: str) -> dict[str, Any] | None:
    t = packages_table(storage.dialect.column_types)
    rows = await r.fetch(sa.select(t).where(t.c.domain == param(domain)))
    return _decode(storage, rows[0]) if rows else None


async def _record(
    w: Writer,
    storage: Storage,
    package: Package,
    kpis: list[dict[str, Any]],
    now: datetime,
    *,
    replace: bool,
) -> None:
    t = packages_table(storage.dialect.column_types)
    values = {
        "version": param(str(package.version)),
        "settings": _json_param(t.c.settings, package.settings),
        "kpis": _json_param(t.c.kpis, kpis),
        "installed_at": storage.dialect.time_param(now),
        "document": _json_param(t.c.document, package.document),
    }
    if replace:
        await w.execute(sa.update(t).where(t.c.domain == param(package.domain)).values(values))
    else:
        await w.execute(sa.insert(t).values(domain=param(package.domain), **values))


def _json_param(column: sa.Column[Any], value: Any) -> Any:
    return sa.bindparam(None, orjson.dumps(value).decode(), type_=column.type)


def _decode(storage: Storage, row: Any) -> dict[str, Any]:
    return {
        "domain": row["domain"],
        "version": row["version"],
        "settings": _json(row["settings"]),
        "kpis": _json(row["kpis"]),
        "installedAt": storage.decode_time(row["installed_at"]),
        "document": _json(row["document"]),
    }


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value
