"""The SPDY/3.1 codec kubectl port-forward runs over (kfab.node.spdy): frames both ways, header blocks sharing
one zlib context per direction, bytes arriving split anywhere."""

from __future__ import annotations

import zlib

import pytest

from kfab.node import spdy


def test_the_header_dictionary_is_the_drafts():
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2   # the DICTID a SPDY/3 peer's zlib stream names
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"utf-,*,enq=0.")


def test_streams_opened_by_a_client_arrive_with_their_headers_even_split_byte_by_byte():
    client, server = spdy.Codec(), spdy.Codec()
    wire = client.syn_stream(1, {"streamType": "error", "port": "8080", "requestID": "0"}, fin=True) + \
        client.syn_stream(3, {"streamType": "data", "port": "8080", "requestID": "0"}) + \
        client.data(3, b"GET / HTTP/1.0\r\n\r\n")
    frames = []
    for i in range(len(wire)):
        frames += server.feed(wire[i:i + 1])
    assert [(f.type, f.stream_id, f.fin) for f in frames] == [(spdy.SYN_STREAM, 1, True), (spdy.SYN_STREAM, 3, False),
                                                              (0, 3, False)]
    assert frames[0].headers == {"streamtype": "error", "port": "8080", "requestid": "0"}
    assert frames[1].headers["streamtype"] == "data"        # the second block decompresses in the shared context
    assert frames[2].data == b"GET / HTTP/1.0\r\n\r\n"


def test_replies_data_fin_ping_reset_and_goaway_round_trip():
    server, client = spdy.Codec(), spdy.Codec()
    big = bytes(range(256)) * 300
    frames = client.feed(server.syn_reply(1) + server.data(3, big) + server.data(3, b"", fin=True) +
                         server.ping(7) + server.rst_stream(5, spdy.CANCEL) + server.goaway(3))
    assert [f.type for f in frames] == [spdy.SYN_REPLY, 0, 0, spdy.PING, spdy.RST_STREAM, spdy.GOAWAY]
    assert frames[0].headers == {} and frames[1].data == big and frames[2].fin
    assert frames[3].ping_id == 7 and (frames[4].stream_id, frames[4].status) == (5, spdy.CANCEL)
    assert frames[5].stream_id == 3


def test_not_spdy_3_or_a_corrupt_header_block_is_a_protocol_error():
    with pytest.raises(spdy.ProtocolError, match="version 2"):
        spdy.Codec().feed(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")
    frame = spdy.Codec().syn_stream(1, {"port": "80"})
    with pytest.raises(spdy.ProtocolError, match="header block"):
        spdy.Codec().feed(frame[:18] + b"\xff" * (len(frame) - 18))
