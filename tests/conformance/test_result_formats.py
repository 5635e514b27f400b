"""``$resultFormat=CSV`` and ``$resultFormat=GeoJSON``: shape, values, quoting, and
streaming in pages.

The module's store serves pages of at most 3 entities and at most 7 rows per
result-format answer, so that ten Observations need several pages and hit the cap.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.support import Client, datastream, location, thing

PAGE = 3
CAP = 7
ODD_NAME = 'Tower, "north"\nwing'
TIMES = [f"2024-05-01T0{i}:00:00Z" for i in range(10)]


@pytest.fixture(scope="module")
def store(new_client: Callable[..., Client]) -> dict[str, Any]:
    c = new_client(max_page_size=PAGE, default_page_size=PAGE, result_format_max_rows=CAP)
    thing_id = c.create(
        "Things",
        thing(
            ODD_NAME,
            properties={"floor": 3, "tags": ["a", "b"]},
            locations=[location("Roof", lon=8.5, lat=51.5)],
            datastreams=[datastream("Air, temp")],
        ),
    )
    c.create("Things", thing("Bare"))
    [ds] = c.ids(f"Things({thing_id})/Datastreams")
    for i, t in enumerate(TIMES):
        result: Any = 20 + i / 2 if i != 4 else "n/a"
        c.create(f"Datastreams({ds})/Observations", {"phenomenonTime": t, "result": result})
    return {"client": c, "thing": thing_id, "datastream": ds}


def rows(resp: Any) -> list[list[str]]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(resp.content.decode(), newline="")))


def get_csv(c: Client, url: str) -> list[list[str]]:
    return rows(c.get(url))


def test_csv_header_follows_select_and_values_round_trip(store: dict[str, Any]) -> None:
    c: Client = store["client"]
    got = get_csv(c, "Things?$resultFormat=CSV&$select=name,id,properties&$orderby=id")
    assert got[0] == ["name", "id", "properties"]
    assert got[1][:2] == [ODD_NAME, str(store["thing"])]
    assert orjson.loads(got[1][2]) == {"floor": 3, "tags": ["a", "b"]}  # as JSON text
    assert got[2][0] == "Bare"
    assert got[2][2] == ""
    assert len(got) == 3


def test_csv_quotes_commas_quotes_and_line_breaks_as_rfc_4180(store: dict[str, Any]) -> None:
    resp = store["client"].get("Things?$resultFormat=csv&$select=name&$filter=name ne 'Bare'")
    assert resp.content == b'name\r\n"Tower, ""north""\nwing"\r\n'


def test_csv_without_select_has_every_property(store: dict[str, Any]) -> None:
    c: Client = store["client"]
    got = get_csv(c, "Locations?$resultFormat=CSV")
    assert got[0] == ["id", "name", "description", "encodingType", "location", "properties"]
    assert orjson.loads(got[1][4]) == {"type": "Point", "coordinates": [8.5, 51.5]}


def test_csv_expanded_single_entities_become_prefixed_columns(store: dict[str, Any]) -> None:
    c: Client = store["client"]
    url = (
        "Observations?$resultFormat=CSV&$select=result,phenomenonTime&$orderby=phenomenonTime"
        "&$expand=Datastream($select=name;$expand=Thing($select=name))&$top=2"
    )
    got = get_csv(c, url)
    assert got[0] == ["result", "phenomenonTime", "Datastream/name", "Datastream/Thing/name"]
    assert got[1:] == [
        ["20.0", TIMES[0], "Air, temp", ODD_NAME],
        ["20.5", TIMES[1], "Air, temp", ODD_NAME],
    ]


def test_csv_expanded_collections_are_one_json_column(store: dict[str, Any]) -> None:
    c: Client = store["client"]
    got = get_csv(c, "Things?$resultFormat=CSV&$select=name&$expand=Datastreams($select=name)")
    assert got[0] == ["name", "Datastreams"]
    by_name = {r[0]: r[1] for r in got[1:]}
    assert orjson.loads(by_name[ODD_NAME]) == [{"name": "Air, temp"}]
    assert orjson.loads(by_name["Bare"]) == []


def test_csv_filter_orderby_top_and_skip(store: dict[str, Any]) -> None:
    c: Client = store["client"]
    url = (
        "Observations?$resultFormat=CSV&$select=result&$filter=result ge 21"
        "&$orderby=result desc&$skip=1&$top=3"
    )
    assert get_csv(c, url)[1:] == [["24.0"], ["23.5"], ["23.0"]]


def test_non_numeric_results_are_text_in_csv(store: dict[str, Any]) -> None:
    c: Client = store["client"]
    got = get_csv(c, "Observations?$resultFormat=CSV&$select=result&$orderby=phenomenonTime")
    assert got[5] == ["n/a"]


@pytest.mark.parametrize("orderby", ["phenomenonTime", "result desc"])  # keyset, offset
def test_a_result_larger_than_a_page_is_read_in_pages_up_to_the_cap(
    store: dict[str, Any], orderby: str
) -> None:
    c: Client = store["client"]
    url = f"Observations?$resultFormat=CSV&$select=phenomenonTime,result&$orderby={orderby}"
    got = get_csv(c, url)
    body = c.ok("GET", f"Observations?$select=phenomenonTime,result&$orderby={orderby}&$top={CAP}")
    assert len(body["value"]) == PAGE  # JSON pages stop at the page size
    expected = [e["phenomenonTime"] for e in c.values(f"Observations?$orderby={orderby}")]
    assert [r[0] for r in got[1:]] == expected[:CAP]  # CSV: every row up to the cap, in order
    assert len(get_csv(c, f"{url}&$top=5")) == 1 + 5
    assert len(get_csv(c, f"{url}&$top=0")) == 1


def _asgi_get(
    c: Client, path: str, query: str, sent: list[dict[str, Any]] | None = None
) -> tuple[dict[str, Any], list[bytes]]:
    """The answer's start message and its body chunks, as the server sends them."""
    sent = [] if sent is None else sent

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
    }
    c.call(c.app(scope, receive, send))
    start = sent[0]
    assert start["type"] == "http.response.start"
    chunks = [m["body"] for m in sent[1:]]
    assert all(m.get("more_body") for m in sent[1:-1])
    assert not sent[-1].get("more_body")
    return start, chunks


def test_the_answer_is_sent_in_chunks_one_per_page(store: dict[str, Any]) -> None:
    c: Client = store["client"]
    start, chunks = _asgi_get(
        c, "/v1.1/Observations", "$resultFormat=CSV&$select=result&$orderby=phenomenonTime"
    )
    assert start["status"] == 200
    headers = dict(start["headers"])
    assert b"content-length" not in headers
    assert headers[b"content-type"] == b"text/csv; charset=utf-8"
    # header + 3 rows, 3 rows, 1 row (the cap of 7), then the empty end of the body
    data = [chunk for chunk in chunks if chunk]
    assert len(data) == 3
    assert [chunk.count(b"\r\n") for chunk in data] == [1 + PAGE, PAGE, CAP - 2 * PAGE]
    assert chunks[-1] == b""


def test_geojson_features_carry_the_geometry_and_flat_properties(store: dict[str, Any]) -> None:
    c: Client = store["client"]
    resp = c.get("Locations?$resultFormat=GeoJSON")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/geo+json"
    fc = resp.json()
    assert fc["type"] == "FeatureCollection"
    [feature] = fc["features"]
    assert feature["type"] == "Feature"
    assert feature["geometry"] == {"type": "Point", "coordinates": [8.5, 51.5]}
    assert isinstance(feature["id"], int)
    assert feature["properties"]["name"] == "Roof"
    assert feature["properties"]["encodingType"] == "application/geo+json"
    assert "location" not in feature["properties"]


def test_geojson_takes_the_geometry_of_an_expanded_entity(store: dict[str, Any]) -> None:
    c: Client = store["client"]
    fc = c.ok(
        "GET",
        "Observations?$resultFormat=GeoJSON&$select=id,result&$orderby=phenomenonTime"
        "&$expand=FeatureOfInterest($select=name,feature),Datastream($select=name)",
    )
    features = fc["features"]
    assert len(features) == CAP  # streamed in pages, up to the cap
    first = features[0]
    assert first["geometry"] == {"type": "Point", "coordinates": [8.5, 51.5]}
    assert first["properties"] == {
        "id": first["id"],
        "result": 20.0,
        "FeatureOfInterest/name": "Roof",
        "Datastream/name": "Air, temp",
    }


def test_geojson_entities_without_geometry_have_null_geometry(store: dict[str, Any]) -> None:
    c: Client = store["client"]
    fc = c.ok("GET", "Things?$resultFormat=GeoJSON&$select=name&$orderby=name")
    assert [(f["geometry"], f["properties"]) for f in fc["features"]] == [
        (None, {"name": "Bare"}),
        (None, {"name": ODD_NAME}),
    ]
    empty = c.ok("GET", "Things?$resultFormat=GeoJSON&$filter=name eq 'nobody'")
    assert empty == {"type": "FeatureCollection", "features": []}


def test_a_single_entity_is_one_row(store: dict[str, Any]) -> None:
    c: Client = store["client"]
    ds = store["datastream"]
    got = get_csv(c, f"Datastreams({ds})?$resultFormat=CSV&$select=name,unitOfMeasurement")
    assert got[0] == ["name", "unitOfMeasurement"]
    assert got[1][0] == "Air, temp"
    assert orjson.loads(got[1][1])["symbol"] == "Cel"
    assert len(got) == 2
    assert c.get("Datastreams(999999)?$resultFormat=CSV").status_code == 404
    assert c.get("Datastreams(999999)/Observations?$resultFormat=CSV").status_code == 404


def test_unknown_formats_and_misplaced_ones_are_refused(store: dict[str, Any]) -> None:
    c: Client = store["client"]
    resp = c.get("Things?$resultFormat=XML")
    assert resp.status_code == 400
    message = resp.json()["message"]
    assert "XML" in message
    assert "CSV" in message
    assert "GeoJSON" in message
    resp = c.get(f"Things({store['thing']})/name?$resultFormat=CSV")
    assert resp.status_code == 400
    assert "property" in resp.json()["message"]
    bad = c.get("Things?$resultFormat=CSV&$select=nothing")
    assert bad.status_code == 400
    assert "nothing" in bad.json()["message"]


def test_head_answers_without_a_body(store: dict[str, Any]) -> None:
    resp = store["client"].head("Things?$resultFormat=CSV")
    assert resp.status_code == 200
    assert resp.content == b""
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"


def test_a_failure_after_the_answer_started_leaves_it_unfinished(
    store: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    c: Client = store["client"]
    storage = c.app.state.service.storage
    real = storage.reader
    readers = 0

    def reader() -> Any:
        nonlocal readers
        readers += 1
        if readers > 2:  # the path check and the first page succeed, the next page fails
            raise RuntimeError("the database went away")
        return real()

    monkeypatch.setattr(storage, "reader", reader)
    sent: list[dict[str, Any]] = []
    with pytest.raises(RuntimeError, match="went away"):
        _asgi_get(c, "/v1.1/Observations", "$resultFormat=CSV&$select=result", sent)
    assert sent[0]["status"] == 200  # already sent: it cannot change any more
    assert all(m.get("more_body") for m in sent[1:])  # the body was never finished
    assert sent[1]["body"].count(b"\r\n") == 1 + PAGE
    assert "failed after it had started" in caplog.text
