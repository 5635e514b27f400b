"""The MQTT 5 packets of the ingest connection, byte by byte against the protocol text."""

from __future__ import annotations

import random
import struct

import pytest

from citytwin.mqtt import wire


def publish_packet(
    topic: str,
    payload: bytes,
    *,
    qos: int = 0,
    packet_id: int = 0,
    props: bytes = b"",
) -> bytes:
    body = struct.pack("!H", len(topic.encode())) + topic.encode()
    if qos:
        body += struct.pack("!H", packet_id)
    body += bytes([len(props)]) + props + payload
    return bytes([0x30 | qos << 1]) + wire._varint(len(body)) + body


def user_property(key: str, value: str) -> bytes:
    return b"\x26" + wire._string(key) + wire._string(value)


def test_remaining_lengths_use_as_few_bytes_as_the_protocol_allows() -> None:
    assert wire._varint(0) == b"\x00"
    assert wire._varint(127) == b"\x7f"
    assert wire._varint(128) == b"\x80\x01"
    assert wire._varint(16_383) == b"\xff\x7f"
    assert wire._varint(2_097_152) == b"\x80\x80\x80\x01"


def test_connect_asks_for_a_kept_session_with_credentials() -> None:
    packet = wire.connect(
        "citytwin-a-ingest",
        keepalive=60,
        clean_start=False,
        session_expiry=86_400,
        username="u",
        password="p",
    )
    assert packet[0] == 0x10
    body = packet[2:]  # the packet is short enough for a one-byte length
    assert packet[1] == len(body)
    assert body[:6] == b"\x00\x04MQTT"
    assert body[6] == 5
    assert body[7] == 0x80 | 0x40  # username and password, no clean start
    assert struct.unpack("!H", body[8:10]) == (60,)
    assert body[10] == 8  # properties: session expiry (5 bytes) and receive maximum (3)
    assert body[11] == wire.PROP_SESSION_EXPIRY
    assert struct.unpack("!I", body[12:16]) == (86_400,)
    assert body[19:] == wire._string("citytwin-a-ingest") + wire._string("u") + wire._string("p")


def test_subscribe_and_puback_packets() -> None:
    sub = wire.subscribe(7, [("$share/citytwin/v1.1/Observations", 1)])
    assert sub[0] == 0x82  # SUBSCRIBE has flags 0010
    assert sub[2:5] == b"\x00\x07\x00"  # packet id, no properties
    assert sub.endswith(wire._string("$share/citytwin/v1.1/Observations") + b"\x01")
    assert wire.puback([1, 258]) == b"\x40\x02\x00\x01\x40\x02\x01\x02"


def test_the_reader_returns_each_whole_packet_however_the_bytes_arrive() -> None:
    stream = (
        publish_packet("v1.1/Observations", b'{"result": 1}')
        + publish_packet("v1.1/Datastreams(2)/Observations", b"x" * 300, qos=1, packet_id=9)
        + bytes([wire.PINGRESP << 4, 0])
    )
    whole = wire.Reader().feed(stream)
    reader = wire.Reader()
    piecewise = [p for i in range(len(stream)) for p in reader.feed(stream[i : i + 1])]
    assert whole == piecewise
    first, second, pong = whole
    assert isinstance(first, wire.Publish)
    assert isinstance(second, wire.Publish)
    assert (first.topic, first.payload, first.qos, first.packet_id) == (
        "v1.1/Observations",
        b'{"result": 1}',
        0,
        0,
    )
    assert (second.topic, second.payload, second.qos, second.packet_id) == (
        "v1.1/Datastreams(2)/Observations",
        b"x" * 300,
        1,
        9,
    )
    assert isinstance(pong, wire.Control)
    assert pong.kind == wire.PINGRESP


def test_a_stream_cut_anywhere_reads_as_it_does_whole() -> None:
    """Reads end anywhere: inside a remaining length, a topic, a payload of 70 KB that
    spans several reads, or between packets."""
    packets = [
        publish_packet(f"v1.1/Datastreams({i})/Observations", b"r" * size, qos=i % 2, packet_id=i)
        for i, size in enumerate([0, 1, 100, 127, 128, 300, 16_383, 16_384, 70_000, 5])
    ]
    packets.insert(3, publish_packet("t", b"p", props=user_property("api-key", "k")))
    stream = b"".join(packets) + bytes([wire.PINGRESP << 4, 0])
    whole = wire.Reader().feed(stream)
    assert len(whole) == len(packets) + 1
    rng = random.Random(7)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(1, 40)))
        reader = wire.Reader()
        read = []
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            read += reader.feed(stream[a:b])
        assert read == whole


def test_user_properties_are_read_among_the_others() -> None:
    props = (
        b"\x01\x01"  # payload format indicator
        + b"\x02\x00\x00\x00\x3c"  # message expiry
        + b"\x03"
        + wire._string("application/json")  # content type
        + user_property("citytwin", "notification")
        + b"\x0b\x81\x01"  # subscription identifier 129 (two bytes)
    )
    [packet] = wire.Reader().feed(publish_packet("t", b"{}", props=props))
    assert isinstance(packet, wire.Publish)
    assert packet.user_properties == [("citytwin", "notification")]
    assert packet.payload == b"{}"


@pytest.mark.parametrize(
    ("stream", "problem"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "remaining length"),
        (b"\x30\x03\x00\x05a", "shorter"),
        (b"\x32\x04\x00\x01t\x00" + b"\x30\x02\x00\x00", "shorter"),  # no whole packet id
        (publish_packet("t", b"", props=b"\x99\x00"), "unknown PUBLISH property"),
        (b"\x30\x05\x00\x02\xff\xfe\x00", "UTF-8"),
        (b"\x36\x03\x00\x00\x00", "QoS 3"),
    ],
)
def test_malformed_packets_are_refused(stream: bytes, problem: str) -> None:
    with pytest.raises(wire.ProtocolError, match=problem):
        wire.Reader().feed(stream)


def test_acknowledgements_of_the_broker_are_read() -> None:
    assert wire.connack(b"\x01\x00\x00") is True  # session present
    assert wire.connack(b"\x00\x00\x00") is False
    with pytest.raises(wire.ProtocolError, match="0x87"):
        wire.connack(b"\x00\x87\x00")  # not authorised
    assert wire.suback(b"\x00\x01\x00\x01\x80") == [1, 0x80]
    reason = b"\x1f" + wire._string("session taken over")
    assert wire.disconnect_reason(b"\x8e" + bytes([len(reason)]) + reason) == (
        "reason 0x8e: session taken over"
    )
    assert wire.disconnect_reason(b"") == "normal disconnection"
