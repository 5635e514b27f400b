"""The domain API without its transport: describe the installed domains, list the areas
and compute a KPI for an area and a period. The HTTP adapter (:mod:`citytwin.http.domains`)
only translates; see docs/domains.md for the JSON documents.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from citytwin.access import Principal, audit
from citytwin.access.audit import Action, Origin
from citytwin.domains.base import Domain, KpiQuery, KpiResult, UnknownKey
from citytwin.domains.data import DomainData, check_area
from citytwin.domains.packages import installed, switched_off
from citytwin.domains.sensors import sensors as latest_sensors
from citytwin.errors import BadRequest, NotFound, TooLarge
from citytwin.model import Registry
from citytwin.model.values import floor_time, format_instant, parse_duration, parse_interval
from citytwin.planner.filters import Visibility
from citytwin.storage.base import Storage

KPI_PARAMETERS = ("area", "interval", "bucket")
DEFAULT_PERIOD = timedelta(hours=24)
QUARTER = timedelta(minutes=15)
MIN_BUCKET = timedelta(minutes=1)
MAX_BUCKETS = 20_000
_LAYER_NAME = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_LAYER_BYTES = 50_000_000


class DomainService:
    def __init__(
        self,
        storage: Storage,
        registry: Registry,
        domains: Sequence[Domain],
        layers_dir: Path | None = None,
        visibility: Callable[[Principal], Visibility | None] | None = None,
        privacy_k: int = 5,
    ) -> None:
        self.storage = storage
        self.registry = registry
        self.domains = {d.name: d for d in domains}
        self.layers_dir = layers_dir
        # what a principal may read (see citytwin.access); None: everyone reads all
        self.visibility = visibility
        self.privacy_k = privacy_k  # households in every sum of personal data (privacy.py)

    def _visible(self, principal: Principal | None) -> Visibility | None:
        """The read conditions of ``principal`` (None: it reads everything)."""
        if principal is None or self.visibility is None:
            return None
        return self.visibility(principal)

    def data(self, principal: Principal | None = None) -> DomainData:
        return DomainData(
            self.storage,
            self.registry,
            tuple(self.domains.values()),
            self._visible(principal),
            self.privacy_k,
        )

    def describe(self) -> dict[str, Any]:
        return {"value": [describe(d) for d in self.domains.values()]}

    async def areas(self) -> dict[str, Any]:
        return {"value": await self.data().areas()}

    async def kpi(
        self,
        domain: str,
        key: str,
        params: Sequence[tuple[str, str]],
        now: datetime | None = None,
        principal: Principal | None = None,
    ) -> dict[str, Any]:
        """A KPI computed from the Datastreams ``principal`` may read."""
        found = self.domains.get(domain)
        if found is None:
            known = ", ".join(sorted(self.domains)) or "none"
            raise NotFound(f"no domain named {domain!r}; installed: {known}")
        try:
            kpi = found.kpi(key)
        except UnknownKey:
            known = ", ".join(k.key for k in found.kpis)
            raise NotFound(f"domain {domain} has no KPI {key!r}; it has {known}") from None
        off, version = await switched_off(self.storage, domain)
        if key in off:
            raise NotFound(
                f"KPI {key} of domain {domain} is switched off on this platform by its "
                f"installed package ({domain} {version}); install the package with "
                f'"enabled": true for it to switch it on'
            )
        query = parse_query(params, now or datetime.now(UTC), kpi.default_bucket)
        result = await kpi.compute(self.data(principal), query)
        return render(found, kpi.key, query, result)

    async def sensors(self, principal: Principal | None = None) -> dict[str, Any]:
        """Every sensor ``principal`` may read, with its place and latest value, compactly
        (see domains/sensors.py)."""
        return await latest_sensors(self.storage, self.registry, self._visible(principal))

    async def packages(self) -> dict[str, Any]:
        """The solution packages installed here (docs/packages.md), without their
        documents."""
        return {
            "value": [
                {k: v for k, v in p.items() if k != "document"}
                for p in await installed(self.storage)
            ]
        }

    def layers(self) -> dict[str, Any]:
        names = sorted(p.stem for p in self._layer_files())
        return {
            "value": [
                {"name": n, "title": n.replace("_", " ").capitalize(), "url": f"/api/v1/layers/{n}"}
                for n in names
            ]
        }

    def layer(self, name: str) -> bytes:
        if not name or not set(name) <= _LAYER_NAME:
            raise NotFound(f"no layer named {name!r}")
        for path in self._layer_files():
            if path.stem == name:
                return path.read_bytes()
        raise NotFound(f"no layer named {name!r}; see /api/v1/layers")

    async def put_layer(self, name: str, body: bytes, origin: Origin) -> bool:
        """Store (or replace) layer ``name``; True if it is new. The file is replaced
        inside the transaction that records it in the audit log, after the row is
        written: a failed replace leaves no row (only a failed commit after it would
        leave the file unrecorded)."""
        if self.layers_dir is None:
            raise NotFound("this platform keeps no layers (no layers_dir)")
        if not name or not set(name) <= _LAYER_NAME or len(name) > 64:
            raise BadRequest(
                f"a layer name is 1 to 64 of lower-case letters, digits, '-' and '_', not {name!r}"
            )
        if len(body) > MAX_LAYER_BYTES:
            raise TooLarge(f"a layer may hold at most {MAX_LAYER_BYTES // 1_000_000} MB")
        check_feature_collection(body)
        self.layers_dir.mkdir(parents=True, exist_ok=True)
        path = self.layers_dir / f"{name}.geojson"
        new = not path.exists()
        partial = path.with_suffix(".partial")
        partial.write_bytes(body)
        done = Action("create" if new else "update", "layer", count=1, detail={"name": name})
        async with self.storage.writer() as w:
            await audit.record(w, self.storage, origin, [done], datetime.now(UTC))
            partial.replace(path)  # readers see the old layer or the new one, never half
        return new

    def _layer_files(self) -> list[Path]:
        if self.layers_dir is None or not self.layers_dir.is_dir():
            return []
        return [p for p in self.layers_dir.glob("*.geojson") if set(p.stem) <= _LAYER_NAME]


def describe(domain: Domain) -> dict[str, Any]:
    return {
        "name": domain.name,
        "title": domain.title,
        "version": domain.version,
        "kpis": [
            {"key": k.key, "title": k.title, "unit": k.unit, "description": k.description}
            for k in domain.kpis
        ],
        "thingKinds": [
            {
                "key": t.key,
                "name": t.name,
                "description": t.description,
                "properties": list(t.properties),
                "personal": t.personal,
                "openData": t.open_data,
            }
            for t in domain.thing_kinds
        ],
        "observedProperties": [
            {"key": p.key, "name": p.name, "definition": p.definition, "unit": p.unit.symbol}
            for p in domain.properties
        ],
    }


def parse_query(
    params: Sequence[tuple[str, str]], now: datetime, default_bucket: timedelta | None = None
) -> KpiQuery:
    given: dict[str, str] = {}
    options: dict[str, str] = {}
    for name, value in params:
        if name in given or name in options:
            raise BadRequest(f"KPI parameter {name} is given more than once")
        if name in KPI_PARAMETERS:
            given[name] = value
        else:
            options[name] = value
    area = check_area(given.get("area") or "city")
    if "interval" in given:
        try:
            interval = parse_interval(given["interval"], allow_instant=False)
        except ValueError as exc:
            raise BadRequest(f"KPI interval: {exc}") from None
        start, end = interval.start, interval.end
        if end <= start:
            raise BadRequest("KPI interval: it must end after it starts")
    else:  # the last 24 hours, in whole quarter hours so that buckets fall on the clock
        end = floor_time(now, QUARTER) + QUARTER
        start = end - DEFAULT_PERIOD
    bucket = default_bucket
    if "bucket" in given:
        try:
            duration = parse_duration(given["bucket"])
        except ValueError as exc:
            raise BadRequest(f"KPI bucket: {exc}") from None
        if duration.months:
            raise BadRequest("KPI bucket: use a duration of fixed length (days or less)")
        bucket = timedelta(microseconds=duration.micros)
        if bucket < MIN_BUCKET:
            raise BadRequest("KPI bucket: it must be at least one minute (PT1M)")
    if bucket is not None and (end - start) / bucket > MAX_BUCKETS:
        raise BadRequest(f"KPI bucket: the interval would hold more than {MAX_BUCKETS} buckets")
    return KpiQuery(area, start, end, bucket, options)


def render(domain: Domain, key: str, query: KpiQuery, result: KpiResult) -> dict[str, Any]:
    kpi = domain.kpi(key)
    return {
        "domain": domain.name,
        "kpi": kpi.key,
        "title": kpi.title,
        "unit": kpi.unit,
        "area": query.area,
        "interval": f"{format_instant(query.start)}/{format_instant(query.end)}",
        "value": _tidy(result.value),
        "values": _tidy(result.values),
        "units": result.units,
        "series": _tidy(result.series),
        "items": _tidy(result.items),
        **({} if result.privacy is None else {"privacy": result.privacy}),
    }


def _tidy(value: Any) -> Any:
    """Floats without the noise of binary arithmetic (0.1 + 0.2 is shown as 0.3): ten
    significant digits, more than any sensor measures."""
    if isinstance(value, float):
        return float(f"{value:.10g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    return value


def dumps(doc: Mapping[str, Any]) -> bytes:
    """JSON of a domain API document; datetimes become ISO 8601 instants in UTC."""
    return orjson.dumps(doc, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(type(value).__name__)


def check_feature_collection(body: bytes) -> None:
    """A layer is a GeoJSON FeatureCollection whose features have geometries (RFC 7946)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"a layer must be JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise BadRequest('a layer must be a GeoJSON object with "type": "FeatureCollection"')
    features = doc.get("features")
    if not isinstance(features, list):
        raise BadRequest('a layer\'s "features" must be an array')
    for i, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise BadRequest(f'features[{i}] must be an object with "type": "Feature"')
        geometry = feature.get("geometry")
        if geometry is not None and not (
            isinstance(geometry, dict) and isinstance(geometry.get("type"), str)
        ):
            raise BadRequest(f"features[{i}].geometry must be a GeoJSON geometry or null")
