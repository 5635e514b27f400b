"""The results as a table (terminal and Markdown) and the targets met or missed."""

from __future__ import annotations

from typing import Any

READ_TARGETS = {  # ms, p50, PG at 10M
    "time_range": 10.0,
    "count": 50.0,
    "latest": 30.0,
    "aggregate": 50.0,
}
BULK_RATIO_TARGET = 0.5
SINGLE_POST_TARGET = 3000.0  # Observations/s with 16 clients, PostgreSQL
MQTT_INGEST_TARGET = 0.5  # of the external broker's raw rate, QoS 0


def _target(name: str, value: float | None, goal: float, unit: str, higher: bool) -> dict[str, Any]:
    met = value is not None and (value >= goal if higher else value <= goal)
    margin = "" if value is None else f"{(value / goal - 1) * 100:+.0f}% vs goal"
    return {
        "name": name,
        "value": None if value is None else round(value, 3),
        "target": f"{'>=' if higher else '<='} {goal:g} {unit}",
        "met": met,
        "margin": margin,
    }


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, evaluated on this run (they are set for PostgreSQL with
    10M Observations on 2 cores; elsewhere they are indicative)."""
    writes, reads = result["writes"], result["reads"]
    checks = [
        _target(
            "bulk ingest through the API / raw bulk rate",
            writes["bulk"]["ratio"],
            BULK_RATIO_TARGET,
            "(ratio)",
            higher=True,
        )
    ]
    sixteen = writes["single_post"].get("16")
    if sixteen is not None:
        checks.append(
            _target(
                "single POST, 16 clients",
                sixteen["api"]["median"],
                SINGLE_POST_TARGET,
                "Obs/s",
                higher=True,
            )
        )
    for name, goal in READ_TARGETS.items():
        if name in reads:
            checks.append(
                _target(
                    f"{reads[name]['label']} p50", reads[name]["api"]["p50_ms"], goal, "ms", False
                )
            )
    external = result.get("mqtt", {}).get("external", {}).get("ingest", {}).get("qos0")
    if external is not None:
        checks.append(
            _target(
                "MQTT ingest / raw broker rate (external, QoS 0)",
                external["ratio"],
                MQTT_INGEST_TARGET,
                "(ratio)",
                higher=True,
            )
        )
    applies = result["backend"] == "postgresql" and result["dataset"]["observations"] >= 10**7
    return {"applies": applies, "checks": checks}


# --- formatting -------------------------------------------------------------------------------


def _n(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:.2f}" if x < 100 else f"{x:,.0f}")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def _times(x: float | None) -> str:
    return "-" if x is None else (f"{x:.1f}x" if x >= 0.1 else f"{x:.3f}x")


def _headline(result: dict[str, Any]) -> str:
    d, m, db = result["dataset"], result["machine"], result["database"]
    return (
        f"citytwin {result['citytwin']['version']} ({result['citytwin']['commit']}) on "
        f"{db['server']}, {d['observations']:,} Observations in {d['datastreams']:,} "
        f"Datastreams; {m['cores']} cores, {m['memory_gib']} GiB; {result['timestamp']}"
    )


def write_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    w = result["writes"]
    for clients, r in w["single_post"].items():
        rows.append(
            [
                f"single POST, {clients} client{'s' if clients != '1' else ''}",
                _n(r["api"]["median"]),
                _n(r["raw"]["median"]),
                _pct(r["ratio"]),
                f"{r['cpu']['server_cores']} / {r['cpu']['client_cores']}",
            ]
        )
    b = w["bulk"]
    rows.append(
        [
            f"bulk, {b['observations_per_request']:,} Obs per POST",
            _n(b["api"]["median"]),
            _n(b["raw"]["median"]),
            _pct(b["ratio"]),
            f"{b['cpu']['server_cores']} / {b['cpu']['client_cores']}",
        ]
    )
    return rows


WRITE_HEAD = ["writes (Obs/s, median)", "citytwin", "raw DB", "citytwin/raw", "CPU srv/gen"]
READ_HEAD = [
    "reads (ms)",
    "citytwin p50",
    "p95",
    "raw SQL p50",
    "p95",
    "citytwin/raw p50",
]


def read_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in result["reads"].values():
        label = r["label"] + ("" if r["check"] == "ok" else f" [CHECK: {r['check']}]")
        rows.append(
            [
                label,
                _ms(r["api"]["p50_ms"]),
                _ms(r["api"]["p95_ms"]),
                _ms(r["raw"]["p50_ms"]),
                _ms(r["raw"]["p95_ms"]),
                _times(r["ratio_p50"]),
            ]
        )
    return rows


def target_rows(result: dict[str, Any]) -> list[list[str]]:
    return [
        [
            c["name"],
            str(c["value"]),
            c["target"],
            "met" if c["met"] else "MISSED",
            c["margin"] or "",
        ]
        for c in result["targets"]["checks"]
    ]


TARGET_HEAD = ["target", "value", "goal", "", "margin"]

MQTT_HEAD = [
    "MQTT (per second, median)",
    "citytwin",
    "raw broker",
    "citytwin/raw",
    "stored",
    "CPU us/Obs srv/DB",
]


def _cpu_per_obs(m: dict[str, Any]) -> str:
    server, database = m.get("server_us_per_obs"), m.get("database_us_per_obs")
    if server is None:
        return ""
    return f"{server:g} / {'-' if database is None else f'{database:g}'}"


def mqtt_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for broker, r in result.get("mqtt", {}).items():
        if "skipped" in r:
            rows.append([f"{broker} broker: {r['skipped']}", "-", "-", "-", "-", ""])
            continue
        for qos, m in r["ingest"].items():
            rows.append(
                [
                    f"ingest, {broker} broker, QoS {qos[-1]} (Obs)",
                    _n(m["api"]["median"]),
                    _n(m["raw"]["median"]),
                    _pct(m["ratio"]),
                    f"{min(m['stored']):,}-{max(m['stored']):,} of {m['published']:,}",
                    _cpu_per_obs(m),
                ]
            )
        f = r["fanout"]
        rows.append(
            [
                f"fan-out to {f['subscribers']}, {broker} broker (deliveries)",
                _n(f["api"]["deliveries_per_second"]),
                _n(f["raw"]["deliveries_per_second"]),
                _pct(f["ratio"]),
                f"{f['api']['delivered']:,} of {f['api']['expected']:,}",
                "",
            ]
        )
        rows.append(
            [
                f"one Observation to all {f['subscribers']}, {broker} broker (p50 ms)",
                _ms(f["api"]["latency_p50_ms"]),
                _ms(f["raw"]["latency_p50_ms"]),
                _times(
                    f["api"]["latency_p50_ms"] / f["raw"]["latency_p50_ms"]
                    if f["raw"]["latency_p50_ms"]
                    else None
                ),
                "",
                "",
            ]
        )
    return rows


def _table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, rows)])


def _applies(result: dict[str, Any]) -> str:
    if result["targets"]["applies"]:
        return ""
    return " (set for PostgreSQL with 10M Observations; indicative here)"


def text(result: dict[str, Any]) -> str:
    return "\n\n".join(
        [
            _headline(result),
            _table(WRITE_HEAD, write_rows(result)),
            _table(READ_HEAD, read_rows(result)),
            *([_table(MQTT_HEAD, mqtt_rows(result))] if result.get("mqtt") else []),
            "targets" + _applies(result) + "\n" + _table(TARGET_HEAD, target_rows(result)),
        ]
    )


def _md(head: list[str], rows: list[list[str]]) -> str:
    out = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|",
    ]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def markdown(result: dict[str, Any]) -> str:
    d = result["dataset"]
    load = (
        f"Loaded in {d['load_seconds']} s ({d['load_rows_per_second']:,} rows/s), summaries "
        f"recomputed in {d['summary_seconds']} s, analysed in {d['analyze_seconds']} s. "
        if "load_seconds" in d
        else ""
    )
    settings = ", ".join(f"{k}={v}" for k, v in result["database"]["settings"].items())
    return (
        "\n\n".join(
            [
                _headline(result) + ".",
                f"{load}Database size {d['database_bytes'] / 2**30:.2f} GiB. Settings: {settings}.",
                _md(WRITE_HEAD, write_rows(result)),
                _md(READ_HEAD, read_rows(result)),
                *([_md(MQTT_HEAD, mqtt_rows(result))] if result.get("mqtt") else []),
                "Targets" + _applies(result) + ":",
                _md(TARGET_HEAD, target_rows(result)),
            ]
        )
        + "\n"
    )
