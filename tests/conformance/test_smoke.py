from __future__ import annotations

from tests.support import Client, datastream, location, thing


def test_thing_with_location_and_datastream_round_trip(client: Client) -> None:
    tid = client.create(
        "Things", thing("T1", locations=[location()], datastreams=[datastream("D1")])
    )
    ds = client.values(f"Things({tid})/Datastreams")
    assert [d["name"] for d in ds] == ["D1"]
    oid = client.create(
        f"Datastreams({ds[0]['@iot.id']})/Observations",
        {"result": 21.5, "phenomenonTime": "2024-05-01T12:00:00Z"},
    )
    obs = client.ok("GET", f"Observations({oid})?$expand=FeatureOfInterest")
    assert obs["result"] == 21.5
    assert obs["FeatureOfInterest"]["feature"] == location()["location"]
