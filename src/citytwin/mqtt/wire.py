"""MQTT 5 packets, as far as a subscriber that stores what it receives needs them.

Only the client side of CONNECT, SUBSCRIBE, PUBLISH (received), PUBACK, PINGREQ and
DISCONNECT: enough for the connection that takes in Observations, where a general
client library spends more time on each message than storing it costs
(docs/performance.md). :class:`Reader` takes bytes as they arrive and returns whole
packets, many per read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14

PROP_SESSION_EXPIRY = 0x11
PROP_RECEIVE_MAXIMUM = 0x21
PROP_REASON_STRING = 0x1F

MAX_PACKET = 256 * 1024 * 1024  # the largest remaining length MQTT can express


class ProtocolError(Exception):
    """The broker sent something that is not MQTT 5, or refused us."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _binary(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _varint(len(body)) + body


def connect(
    client_id: str,
    *,
    keepalive: int,
    clean_start: bool,
    session_expiry: int,
    receive_maximum: int = 65535,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    flags = 0x02 if clean_start else 0
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    props = (
        bytes([PROP_SESSION_EXPIRY])
        + struct.pack("!I", session_expiry)
        + bytes([PROP_RECEIVE_MAXIMUM])
        + struct.pack("!H", receive_maximum)
    )
    body = _string("MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive)
    body += _varint(len(props)) + props + _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _binary(password.encode())
    return _packet(CONNECT, 0, body)


def subscribe(packet_id: int, filters: list[tuple[str, int]]) -> bytes:
    """Subscribe to (topic filter, QoS) pairs."""
    body = struct.pack("!H", packet_id) + b"\x00"
    for topic, qos in filters:
        body += _string(topic) + bytes([qos])
    return _packet(SUBSCRIBE, 0x02, body)


def puback(packet_ids: list[int]) -> bytes:
    """PUBACKs (success, no properties) for several packet ids, in that order."""
    return b"".join(b"\x40\x02" + struct.pack("!H", pid) for pid in packet_ids)


PINGREQ_PACKET = bytes([PINGREQ << 4, 0])
DISCONNECT_PACKET = bytes([DISCONNECT << 4, 0])


@dataclass(slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int
    packet_id: int  # 0 at QoS 0
    user_properties: list[tuple[str, str]]


@dataclass(slots=True)
class Control:
    """Any packet other than PUBLISH: its type, flags and body."""

    kind: int
    flags: int
    body: bytes


class Reader:
    """Splits the byte stream from the broker into packets."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._needed = 0  # bytes the unfinished packet in the buffer takes, where known
        self._topics: dict[bytes, str] = {}  # the same few topics come again and again

    def feed(self, data: bytes) -> list[Publish | Control]:
        # parsed from immutable bytes, whose slices are the topics and payloads as they
        # are (a bytearray's would be copied twice); only an unfinished packet is kept
        if self._buffer:
            self._buffer += data
            if len(self._buffer) < self._needed:
                return []  # a long packet still arriving: not copied and scanned each time
            buf = bytes(self._buffer)
        else:
            buf = bytes(data)
        out: list[Publish | Control] = []
        pos, end = 0, len(buf)
        self._needed = 0
        while end - pos >= 2:
            first = buf[pos]
            byte = buf[pos + 1]
            if byte < 0x80:  # the usual short packet: a one-byte remaining length
                length, i, whole = byte, pos + 2, True
            else:
                length, shift, i, whole = 0, 0, pos + 1, False
                while i < end:
                    byte = buf[i]
                    i += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        whole = True
                        break
                    shift += 7
                    if shift > 21:
                        raise ProtocolError("malformed remaining length")
            if not whole or i + length > end:
                self._needed = i + length - pos if whole else 0
                break  # the rest of this packet has not arrived yet
            if first >> 4 == PUBLISH:
                try:
                    out.append(self._publish(first, buf, i, i + length))
                except IndexError:
                    raise ProtocolError("PUBLISH shorter than its header says") from None
            else:
                out.append(Control(first >> 4, first & 0x0F, buf[i : i + length]))
            pos = i + length
        self._buffer = bytearray(buf[pos:]) if pos < end else bytearray()
        return out

    def _publish(self, first: int, buf: bytes, start: int, stop: int) -> Publish:
        qos = (first >> 1) & 0x03
        if qos == 3:
            raise ProtocolError("PUBLISH with QoS 3")
        n = buf[start] << 8 | buf[start + 1]
        i = start + 2 + n
        if i + (2 if qos else 0) >= stop:  # a packet id (QoS 1, 2) and the properties' length
            raise ProtocolError("PUBLISH shorter than its header says")
        raw = buf[start + 2 : i]
        topic = self._topics.get(raw)
        if topic is None:
            try:
                topic = raw.decode()
            except UnicodeDecodeError:
                raise ProtocolError("a topic name that is not UTF-8") from None
            if len(self._topics) < 10_000:
                self._topics[raw] = topic
        packet_id = 0
        if qos:
            packet_id = buf[i] << 8 | buf[i + 1]
            i += 2
        props = buf[i]
        if props < 0x80:
            i += 1
        else:
            props, i = _read_varint(buf, i)
        user: list[tuple[str, str]] = []
        if props:
            if i + props > stop:
                raise ProtocolError("PUBLISH shorter than its header says")
            user = _user_properties(buf[i : i + props])
            i += props
        if i > stop:
            raise ProtocolError("PUBLISH shorter than its header says")
        return Publish(topic, buf[i:stop], qos, packet_id, user)


# bytes each PUBLISH property takes after its identifier; None: a length-prefixed string
# or binary, "pair": two strings, "varint": a variable byte integer
_PUBLISH_PROPS: dict[int, int | str | None] = {
    0x01: 1,  # payload format indicator
    0x02: 4,  # message expiry interval
    0x23: 2,  # topic alias
    0x08: None,  # response topic
    0x09: None,  # correlation data
    0x03: None,  # content type
    0x26: "pair",  # user property
    0x0B: "varint",  # subscription identifier
}


def _user_properties(props: bytes) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i, end = 0, len(props)
    try:
        while i < end:
            ident = props[i]
            i += 1
            size = _PUBLISH_PROPS.get(ident, -1)
            if isinstance(size, int) and size >= 0:
                i += size
            elif size is None:
                i += 2 + (props[i] << 8 | props[i + 1])
            elif size == "varint":
                _, i = _read_varint(props, i)
            elif size == "pair":
                pair = []
                for _ in range(2):
                    n = props[i] << 8 | props[i + 1]
                    pair.append(props[i + 2 : i + 2 + n].decode(errors="replace"))
                    i += 2 + n
                out.append((pair[0], pair[1]))
            else:
                raise ProtocolError(f"unknown PUBLISH property {ident:#04x}")
    except IndexError:
        raise ProtocolError("malformed PUBLISH properties") from None
    return out


def _read_varint(buf: bytearray | bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift > 21:
            raise ProtocolError("malformed variable byte integer")


def connack(body: bytes) -> bool:
    """Whether the broker kept our session; raises when it refused the connection."""
    if len(body) < 2:
        raise ProtocolError("CONNACK too short")
    if body[1] >= 0x80:
        raise ProtocolError(f"the broker refused the connection (reason {body[1]:#04x})")
    return bool(body[0] & 0x01)


def suback(body: bytes) -> list[int]:
    """The reason codes of a SUBACK (granted QoS, or >= 0x80 for a refusal)."""
    if len(body) < 3:
        raise ProtocolError("SUBACK too short")
    props, i = _read_varint(body, 2)
    return list(body[i + props :])


def disconnect_reason(body: bytes) -> str:
    if not body:
        return "normal disconnection"
    reason = f"reason {body[0]:#04x}"
    if len(body) > 1:
        props, i = _read_varint(body, 1)
        end = i + props
        while i < end:
            ident = body[i]
            i += 1
            if ident != PROP_REASON_STRING:
                break
            n = body[i] << 8 | body[i + 1]
            return f"{reason}: {body[i + 2 : i + 2 + n].decode(errors='replace')}"
    return reason
