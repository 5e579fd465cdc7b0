"""SPDY/3.1 framing, as much as `kubectl port-forward` uses: the frames of draft 3.1 with their header blocks
compressed by zlib with the protocol's dictionary, one compression context per direction for the whole
connection (section 2.6.10.1 of the draft).

No well-kept Python SPDY library exists (spdy-py 0.2 only decodes, and misreads the flags byte), hence this
codec. Flow control is not enforced: kubectl's SPDY library (moby/spdystream) neither sends nor honours
WINDOW_UPDATE, and neither does the kubelet's side.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
MAX_DATA = 0xFFFFFF  # a frame's length field is 24 bits
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6

# The header compression dictionary of the SPDY/3 draft (2.6.10.1): length-prefixed header names and common
# values, then status lines, dates and content types run together.
_DICTIONARY_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age "
    "allow authorization cache-control connection content-base content-encoding content-language content-length "
    "content-location content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding "
    "upgrade user-agent vary via warning www-authenticate method get status|200 OK|version HTTP/1.1 url public "
    "set-cookie keep-alive origin")
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")


def _dictionary() -> bytes:
    words = []
    for part in _DICTIONARY_WORDS.split("|"):
        # "200 OK" is the one entry with a space in it
        words.extend([part] if part == "200 OK" else part.split())
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + _DICTIONARY_TAIL.encode()


DICTIONARY = _dictionary()


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3.1: the session must end."""


@dataclass
class Frame:
    """One frame. Data frames have type 0; `headers` (lowercase names) for SYN_STREAM/SYN_REPLY/HEADERS."""
    type: int
    flags: int = 0
    stream_id: int = 0
    data: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0        # RST_STREAM, GOAWAY
    ping_id: int = 0       # PING
    delta: int = 0         # WINDOW_UPDATE
    associated: int = 0    # SYN_STREAM
    priority: int = 0      # SYN_STREAM

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class Codec:
    """Turns bytes into frames and frames into bytes for one end of one connection."""

    def __init__(self):
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, zdict=DICTIONARY)

    # --- reading -----------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by `data` (bytes may arrive split anywhere, e.g. across WebSocket messages)."""
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if len(self._buffer) < 8 + length:
                break
            head, payload = bytes(self._buffer[:8]), bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            frames.append(self._parse(head, payload))
        return frames

    def _parse(self, head: bytes, payload: bytes) -> Frame:
        flags = head[4]
        if not head[0] & 0x80:
            return Frame(type=0, flags=flags, stream_id=int.from_bytes(head[:4], "big") & 0x7FFFFFFF, data=payload)
        version = int.from_bytes(head[:2], "big") & 0x7FFF
        kind = int.from_bytes(head[2:4], "big")
        if version != VERSION:
            raise ProtocolError(f"SPDY version {version}, expected {VERSION}")
        try:
            if kind == SYN_STREAM:
                sid, assoc = (v & 0x7FFFFFFF for v in struct.unpack(">II", payload[:8]))
                return Frame(SYN_STREAM, flags, sid, associated=assoc, priority=payload[8] >> 5,
                             headers=self._headers(payload[10:]))
            if kind in (SYN_REPLY, HEADERS):
                return Frame(kind, flags, struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF,
                             headers=self._headers(payload[4:]))
            if kind == RST_STREAM:
                sid, status = struct.unpack(">II", payload[:8])
                return Frame(RST_STREAM, flags, sid & 0x7FFFFFFF, status=status)
            if kind == PING:
                return Frame(PING, flags, ping_id=struct.unpack(">I", payload[:4])[0])
            if kind == GOAWAY:
                sid, status = struct.unpack(">II", payload[:8])
                return Frame(GOAWAY, flags, sid & 0x7FFFFFFF, status=status)
            if kind == WINDOW_UPDATE:
                sid, delta = struct.unpack(">II", payload[:8])
                return Frame(WINDOW_UPDATE, flags, sid & 0x7FFFFFFF, delta=delta & 0x7FFFFFFF)
        except (struct.error, IndexError) as e:
            raise ProtocolError(f"short control frame of type {kind}: {e}") from None
        return Frame(kind, flags, data=payload)  # SETTINGS and unknown types: the caller ignores them

    def _headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as e:
            raise ProtocolError(f"header block does not decompress: {e}") from None
        try:
            (count,), at, headers = struct.unpack_from(">I", raw), 4, {}
            for _ in range(count):
                (n,) = struct.unpack_from(">I", raw, at)
                name = raw[at + 4:at + 4 + n].decode()
                at += 4 + n
                (n,) = struct.unpack_from(">I", raw, at)
                # several values of one header are NUL-separated: the first is what port-forward reads
                headers[name.lower()] = raw[at + 4:at + 4 + n].decode().split("\0")[0]
                at += 4 + n
        except (struct.error, UnicodeDecodeError) as e:
            raise ProtocolError(f"bad header block: {e}") from None
        return headers

    # --- writing -----------------------------------------------------------------------------------

    def _control(self, kind: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload

    def _block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.lower().encode() + struct.pack(">I", len(v.encode())) + v.encode()
            for k, v in headers.items())
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_stream(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
        return self._control(SYN_STREAM, FLAG_FIN if fin else 0,
                             struct.pack(">IIBB", stream_id, 0, 0, 0) + self._block(headers))

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0,
                             struct.pack(">I", stream_id) + self._block(headers or {}))

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream_id: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream_id, status))

    def data(self, stream_id: int, payload: bytes, fin: bool = False) -> bytes:
        """One or more DATA frames carrying `payload`; FIN on the last."""
        out, views = [], [payload[i:i + MAX_DATA] for i in range(0, len(payload), MAX_DATA)] or [b""]
        for i, chunk in enumerate(views):
            flags = FLAG_FIN if fin and i == len(views) - 1 else 0
            out.append(struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(chunk)) + chunk)
        return b"".join(out)
