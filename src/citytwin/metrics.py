"""Counters of what the service does, served at /metrics in Prometheus text format."""

from __future__ import annotations

from collections import Counter

HELP = {
    "citytwin_mqtt_received_total": "MQTT publishes received on create topics.",
    "citytwin_mqtt_created_total": "Entities created from MQTT publishes.",
    "citytwin_mqtt_rejected_total": "MQTT publishes refused (reported on the error topic).",
    "citytwin_mqtt_shared_write_failures_total": (
        "Batches of MQTT publishes whose shared write failed for no fault of a message; "
        "each publish was then stored alone."
    ),
    "citytwin_mqtt_notifications_total": "Notifications published to subscribers.",
    "citytwin_mqtt_notification_failures_total": "Notifications dropped after retrying.",
    "citytwin_mqtt_session_dropped_total": (
        "Messages the embedded broker dropped, oldest first, from the queue of a kept "
        "session whose client was away (mqtt_session_queue)."
    ),
    "citytwin_mqtt_clients_disconnected_total": (
        "Clients of the embedded broker disconnected because their key was revoked (or "
        "their token ran out) while they were connected."
    ),
    "citytwin_bus_remote_events_total": "Change events received from other instances.",
}


class Metrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def inc(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def __getitem__(self, name: str) -> int:
        return self.counts[name]

    def render(self) -> str:
        lines = []
        for name in sorted(set(HELP) | set(self.counts)):
            lines.append(f"# HELP {name} {HELP.get(name, name)}")
            lines.append(f"# TYPE {name} counter")
            lines.append(f"{name} {self.counts[name]}")
        return "\n".join(lines) + "\n"
