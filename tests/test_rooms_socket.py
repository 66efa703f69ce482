"""Tier 1 and 2: the Centrifugo protocol of group chats — the pure codec with literal frames,
and the rooms socket against an in-memory server (MockTransport) that speaks §9 the way the
service does: several objects in one frame, pings, publications routed by request id."""

from __future__ import annotations

import json
from typing import Any

import pytest

from caiclient import AsyncClient, RoomNotFound
from caiclient.protocol import rooms as proto
from caiclient.protocol.http import Request, Response
from caiclient.transports import MockTransport, MockWebSocket

USER = {"user": {"user": {"username": "tester", "id": 42, "account": {"name": "Tester"}}}}
ROOM = "room-1"


def test_codec_reads_several_objects_in_one_frame_and_pings() -> None:
    frame = (
        '{"id":1,"connect":{"client":"c","ping":25,"pong":true}}\n'
        '{"push":{"channel":"room:r","pub":{"data":{"command":"add_turn"},"offset":3}}}'
        "{}"
    )
    first, second, third = proto.parse_frame(frame)
    assert isinstance(first, proto.Reply) and first.method == "connect" and first.id == 1
    assert second == proto.Publication("room:r", {"command": "add_turn"}, 3)
    assert isinstance(third, proto.Ping)


def test_codec_errors_unsubscribes_and_junk() -> None:
    (error,) = proto.parse_frame('{"id":4,"error":{"code":103,"message":"permission denied"}}')
    assert isinstance(error, proto.Reply) and error.error == (103, "permission denied")
    (gone,) = proto.parse_frame('{"push":{"channel":"room:r","unsubscribe":{"code":2500}}}')
    assert gone == proto.ServerUnsubscribe("room:r")
    assert all(isinstance(m, proto.Junk) for m in proto.parse_frame('[1] {"x": 1} not json'))
    assert isinstance(proto.parse_frame("[" * 5000)[0], proto.Junk)  # never raises
    assert isinstance(proto.centrifugo_error(103, "permission denied"), RoomNotFound)


def test_subscribe_asks_for_recovery_from_an_offset() -> None:
    plain = json.loads(proto.subscribe(2, "room:r"))
    assert plain == {"subscribe": {"channel": "room:r"}, "id": 2}
    since = json.loads(proto.subscribe(3, "room:r", since=(7, "ep")))
    assert since["subscribe"] == {"channel": "room:r", "recover": True, "offset": 7, "epoch": "ep"}


def test_rpc_carries_the_envelope_as_its_data() -> None:
    envelope = proto.generate_turn(request_id="q", room_id=ROOM, character_id=None)
    sent = json.loads(proto.rpc(5, envelope))
    assert sent["id"] == 5 and sent["rpc"]["method"] == "unused_command"
    data = sent["rpc"]["data"]
    assert data["command"] == "generate_turn" and data["request_id"] == "q"
    assert data["payload"]["chat_type"] == "TYPE_MU_ROOM"
    assert data["payload"]["smart_reply"] == "CHARACTERS"
    named = json.loads(proto.generate_turn(request_id="q", room_id=ROOM, character_id="c"))
    assert named["payload"] == {"chat_type": "TYPE_MU_ROOM", "chat_id": ROOM, "character_id": "c"}


def _turn(turn_id: str, text: str, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"candidate_id": "k", "raw_content": text}
    if final:
        candidate["is_final"] = True
    return {
        "turn_key": {"chat_id": ROOM, "turn_id": turn_id},
        "author": {"author_id": "char", "name": "Char"},
        "candidates": [candidate],
        "primary_candidate_id": "k",
    }


class FakeCentrifugo:
    """Answers like §9: the connect reply and a ping in one frame; an rpc's ack and all of
    its publications concatenated in one frame; every push also pinged."""

    def __init__(self) -> None:
        self.pongs = 0

    def __call__(self, frame: bytes, ws: MockWebSocket) -> None:
        for message in proto._values(frame.decode()):
            self.answer(message, ws)

    def answer(self, message: Any, ws: MockWebSocket) -> None:
        if message == {}:
            self.pongs += 1
        elif "connect" in message:
            ws.push(
                json.dumps({"id": message["id"], "connect": {"client": "c", "ping": 25}}) + "\n{}"
            )
        elif "subscribe" in message:
            channel = message["subscribe"]["channel"]
            if channel != f"room:{ROOM}":
                ws.push(
                    json.dumps(
                        {
                            "id": message["id"],
                            "error": {"code": 103, "message": "permission denied"},
                        }
                    )
                )
                return
            ws.push(
                json.dumps({"id": message["id"], "subscribe": {"recoverable": True, "epoch": "e"}})
            )
        elif "rpc" in message:
            rid = message["rpc"]["data"]["request_id"]
            ack = json.dumps({"id": message["id"], "rpc": {"data": {"request_id": rid}}})
            pubs = [
                self.pub(rid, "add_turn", _turn("t1", "Hel", False), 1),
                self.pub(rid, "update_turn", _turn("t1", "Hello", False), 2),
                self.pub(rid, "update_turn", _turn("t1", "Hello there", True), 3),
            ]
            ws.push(ack + "".join(pubs))  # everything in one frame, concatenated

    @staticmethod
    def pub(rid: str, command: str, turn: dict[str, Any], offset: int) -> str:
        data = {
            "turn": turn,
            "chat_info": {"type": "TYPE_MU_ROOM"},
            "command": command,
            "request_id": rid,
        }
        return json.dumps(
            {"push": {"channel": f"room:{ROOM}", "pub": {"data": data, "offset": offset}}}
        )


def _rest(request: Request) -> Response:
    return Response(200, {}, json.dumps(USER).encode())


async def test_a_generation_over_concatenated_frames_with_pings() -> None:
    server = FakeCentrifugo()
    transport = MockTransport(_rest, websocket=server)
    async with AsyncClient("f" * 40, transport=transport) as client:
        chunks = [c async for c in client.rooms.stream_generate(ROOM, timeout=5)]
        assert "".join(c.delta for c in chunks) == "Hello there"
        assert chunks[-1].final and chunks[-1].turn.turn_id == "t1"
        (ws,) = transport.sockets
        assert ws.url.endswith("/connection/websocket")
        assert server.pongs == 1  # the ping that came with the connect reply was answered
        assert client._core.rooms_socket.in_flight == 0


async def test_a_room_the_server_refuses_to_subscribe_is_room_not_found() -> None:
    transport = MockTransport(_rest, websocket=FakeCentrifugo())
    async with AsyncClient("f" * 40, transport=transport) as client:
        with pytest.raises(RoomNotFound):
            await client.rooms.generate("another-room", timeout=5)
