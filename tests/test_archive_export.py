"""Every export format read back with a small reader written from FORMATS.md.

The exporters are pure functions of archive rows, so most checks need no network; the last
ones export an archive synced from the emulator and compare with the client's own history.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from PIL import Image

from archive_seed import Seeded, seed_account
from caiclient import AsyncClient, Author, Candidate, Endpoints, Turn, TurnKey
from caiclient.archive import (
    FORMATS,
    ArchiveWriteError,
    AsyncArchive,
    OutputExists,
    StoredAccount,
    StoredCharacter,
    StoredChat,
)
from caiclient.archive.export import _files, cai_dump, card, markdown, native, ooba, sillytavern
from caiclient.archive.export import html as html_export
from caiclient.emulator import Emulator
from caiclient.errors import ChatNotFound, ValidationError

T0 = datetime(2025, 5, 1, 14, 3, 22, 117205, tzinfo=timezone.utc)
CHAT_ID = "6f1a9a3e-4d1c-4a6e-9c55-0a1b2c3d4e5f"
CHAR_ID = "00nGgJmkFv7Ntw1QUfnzGRxnU1h0Un7VHg5N7qhg4Cs"
USER = Author(author_id="474480773", name="ada", is_human=True)
BOT = Author(author_id=CHAR_ID, name="Aru")


def _turn(n: int, author: Author, *texts: str, primary: int = 0, pinned: bool = False) -> Turn:
    """A turn whose candidates are given oldest first (stored newest first, as served)."""
    at = T0 + timedelta(minutes=n)
    candidates = [
        Candidate(candidate_id=f"c{n}-{i}", raw_content=t, create_time=at + timedelta(seconds=i))
        for i, t in enumerate(texts)
    ]
    return Turn(
        turn_key=TurnKey(chat_id=CHAT_ID, turn_id=f"t{n}"),
        author=author,
        candidates=candidates[::-1],
        primary_candidate_id=candidates[primary].candidate_id,
        create_time=at,
        last_update_time=at,
        is_pinned=pinned,
    )


TURNS = [
    _turn(0, BOT, "Hello, traveller."),
    _turn(1, USER, "Hi! <b>bold</b> & co"),
    _turn(2, BOT, "First reply", "Second reply", "Third reply", primary=1, pinned=True),
    _turn(3, USER, "One more"),
    _turn(4, USER, "and another"),
    _turn(5, BOT, "Last words"),
]
RAWS = [msgspec.json.encode(t) for t in TURNS]
CHARACTER_INFO = {
    "id": CHAR_ID,
    "name": "Aru",
    "title": "A wandering bard",
    "description": "Sings of far lands.",
    "greeting": "Hello, traveller.",
    "definition": "{{char}}: I sing.",
    "visibility": "PUBLIC",
    "creator_username": "maker",
    "updated": "2025-04-01T10:00:00Z",
}
CHARACTER = StoredCharacter(CHAR_ID, "Aru", "aru.webp", msgspec.json.encode(CHARACTER_INFO), False)
CHAT = StoredChat(
    CHAT_ID, CHAR_ID, "Aru", "Road trip", "STATE_ACTIVE", T0.isoformat(),
    msgspec.json.encode({"chat_id": CHAT_ID, "character_id": CHAR_ID}), False, True, len(TURNS),
)  # fmt: skip
ACCOUNT = StoredAccount("474480773", "ada", "Ada L.", b"{}")


def partial_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")]


def joined(chunks: Iterator[bytes]) -> bytes:
    return b"".join(chunks)


# --- readers, from FORMATS.md ------------------------------------------------------------


def read_sillytavern(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """§c1/§c8: header line with user_name; messages with aligned swipes."""
    lines = [json.loads(line) for line in data.decode().splitlines()]
    header, messages = lines[0], lines[1:]
    assert "user_name" in header and "character_name" in header
    for m in messages:
        assert {"name", "is_user", "send_date", "mes"} <= set(m)
        datetime.fromisoformat(m["send_date"].replace("Z", "+00:00"))  # a parseable date
        if "swipes" in m:
            assert m["mes"] == m["swipes"][m["swipe_id"]]
            assert len(m["swipe_info"]) == len(m["swipes"])
    return header, messages


def read_ooba(data: bytes) -> list[list[str]]:
    """§c3: all four keys, [user, bot] pairs, data == internal, data_visible == visible."""
    chat = json.loads(data)
    assert set(chat) >= {"internal", "visible", "data", "data_visible"}
    assert chat["data"] == chat["internal"] and chat["data_visible"] == chat["visible"]
    assert all(len(pair) == 2 for pair in chat["internal"])
    return chat["internal"]  # type: ignore[no-any-return]


def read_cai_dump(data: bytes) -> list[list[tuple[bool, str]]]:
    """§c2: what SillyTavern's importer reads: histories.histories[].msgs[].src.is_human/text."""
    dump = json.loads(data)
    assert "character" in dump["info"]
    return [
        [(m["src"]["is_human"], m["text"]) for m in history["msgs"]]
        for history in dump["histories"]["histories"]
    ]


def read_png_card(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """§c4: tEXt chunks chara (V2) and ccv3 (V3), base64 of UTF-8 JSON, before IEND."""
    assert data.startswith(card.PNG_MAGIC)
    chunks = card.png_text_chunks(data)
    assert data.rstrip(b"\x00")[-12:-8] == b"\x00\x00\x00\x00"  # IEND (empty) is last
    assert data[-8:-4] == b"IEND"
    v2 = json.loads(base64.b64decode(chunks["chara"]))
    v3 = json.loads(base64.b64decode(chunks["ccv3"]))
    with Image.open(io.BytesIO(data)) as image:  # still a valid image
        image.verify()
    return v2, v3


# --- pure exports ------------------------------------------------------------------------


def test_sillytavern_keeps_every_swipe_with_real_timestamps_and_ids() -> None:
    header, messages = read_sillytavern(
        joined(sillytavern.render_chat(CHAT, CHARACTER, ACCOUNT, RAWS))
    )
    assert header["user_name"] == "Ada L." and header["character_name"] == "Aru"
    assert header["create_date"] == "2025-05-01@14h03m22s"
    assert [m["mes"] for m in messages] == [t.text for t in TURNS]
    assert [m["is_user"] for m in messages] == [t.is_human for t in TURNS]
    assert [m["name"] for m in messages] == ["Aru", "ada", "Aru", "ada", "ada", "Aru"]
    swiped = messages[2]
    assert swiped["swipes"] == ["First reply", "Second reply", "Third reply"]
    assert swiped["swipe_id"] == 1
    assert [s["send_date"] for s in swiped["swipe_info"]] == [
        c.create_time.isoformat().replace("+00:00", "Z")  # type: ignore[union-attr]
        for c in TURNS[2].candidates[::-1]
    ]
    assert swiped["send_date"] == "2025-05-01T14:05:22.117205Z"
    cai = swiped["extra"]["cai"]
    assert (cai["chat_id"], cai["turn_id"], cai["is_pinned"]) == (CHAT_ID, "t2", True)
    assert cai["candidate_ids"] == ["c2-0", "c2-1", "c2-2"]
    assert "swipes" not in messages[1]  # user messages carry no swipes


def test_ooba_pairs_open_with_the_greeting_and_merge_runs_of_one_side() -> None:
    pairs = read_ooba(joined(ooba.render_chat(RAWS)))
    assert pairs == [
        [ooba.BEGIN, "Hello, traveller."],
        ["Hi! <b>bold</b> & co", "Second reply"],
        ["One more\n\nand another", "Last words"],
    ]
    visible = json.loads(joined(ooba.render_chat(RAWS)))["visible"]
    assert visible[0][0] == "" and visible[1][0] == "Hi! &lt;b&gt;bold&lt;/b&gt; &amp; co"


def test_cai_dump_holds_each_history_as_the_importer_reads_it() -> None:
    user = "Ada L."
    histories = [(CHAT_ID, cai_dump.v2_messages(RAWS, "Aru", user))]
    [history] = read_cai_dump(joined(cai_dump.render_character(CHARACTER, histories)))
    assert history == [(t.is_human, t.text) for t in TURNS]


def test_native_is_the_raw_turns_after_a_header() -> None:
    data = joined(native.render_chat(CHAT, CHARACTER, RAWS, exported_at="now", tool_version="x"))
    lines = data.splitlines()
    header = json.loads(lines[0])
    assert set(header) >= {"chat", "character", "exported_at", "tool_version", "schema"}
    assert header["character"]["name"] == "Aru" and header["chat"]["chat_id"] == CHAT_ID
    assert [msgspec.json.decode(line, type=Turn) for line in lines[1:]] == TURNS


def test_markdown_shows_every_swipe() -> None:
    text = joined(markdown.render_chat(CHAT, CHARACTER, RAWS)).decode()
    assert text.startswith("# Road trip")
    for turn in TURNS:
        for candidate in turn.candidates:
            assert candidate.raw_content in text
    assert "3 swipes" in text and "2/3 (shown above)" in text and "📌" in text


def test_cards_map_the_character_and_the_png_carries_both_chunks() -> None:
    v2, v3 = card.card_v2(CHARACTER), card.card_v3(CHARACTER)
    assert (v2["spec"], v2["spec_version"]) == ("chara_card_v2", "2.0")
    assert (v3["spec"], v3["spec_version"]) == ("chara_card_v3", "3.0")
    data = v2["data"]
    assert data["first_mes"] == "Hello, traveller." and data["mes_example"] == "{{char}}: I sing."
    assert data["creator_notes"] == "A wandering bard" and data["creator"] == "maker"
    assert data["extensions"]["cai"]["external_id"] == CHAR_ID
    assert v3["data"]["modification_date"] == 1743501600
    webp = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 10, 10)).save(webp, format="WEBP")
    png = card.png_card(CHARACTER, webp.getvalue())
    chara, ccv3 = read_png_card(png)
    assert chara == v2 and ccv3 == v3
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (32, 24)  # the avatar, converted from WebP
    again = card.png_card(CHARACTER, png)  # re-carding replaces, never duplicates, chunks
    assert again.count(b"tEXtchara") == 1 and again.count(b"tEXtccv3") == 1
    read_png_card(card.png_card(CHARACTER, None))  # no avatar: a plain tile


def test_html_chat_page_holds_every_candidate_escaped() -> None:
    link = html_export.ChatLink("chats/x.html", "Road trip", "Aru", T0.isoformat(), len(TURNS))
    page = joined(html_export.render_chat(link, RAWS)).decode()
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page and "<b>bold</b>" not in page
    assert page.count('class="cand"') == 8 and page.count(" hidden>") == 2
    assert "http://" not in page and "https://" not in page  # nothing from the network
    index = joined(html_export.render_search_index([(link, RAWS)])).decode()
    turns = json.loads(index.split("var CAI_TURNS=", 1)[1].split(";\nvar CAI_CHATS=")[0])
    assert [t[1] for t in turns] == [f"t{i}" for i in range(6)]
    assert "Third reply" in turns[2][3]


# --- through the archive ------------------------------------------------------------------


@pytest.fixture
async def synced(
    tmp_path: Path, emu: Emulator
) -> AsyncIterator[tuple[AsyncArchive, AsyncClient, Seeded]]:
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        seeded = await seed_account(client, emu, long_messages=8)
        async with AsyncArchive(tmp_path / "a.cai") as archive:
            assert (await archive.sync(client, rate=None)).ok
            yield archive, client, seeded


async def test_every_format_reads_back_what_the_service_holds(
    tmp_path: Path, synced: tuple[AsyncArchive, AsyncClient, Seeded]
) -> None:
    archive, client, seeded = synced
    chat = seeded.long
    history = await client.chats.history(chat, all_candidates=True)
    out = tmp_path / "out"
    for fmt in FORMATS:
        result = await archive.export(fmt, out / fmt, chats=[chat.chat_id])
        assert result.files and all(p.exists() for p in result.files), fmt
    [st_file] = (out / "sillytavern").rglob("*.jsonl")
    assert st_file.parent.name == "Sage" and chat.chat_id[:8] in st_file.name
    _, messages = read_sillytavern(st_file.read_bytes())
    assert [m["extra"]["cai"]["turn_id"] for m in messages] == [t.turn_id for t in history]
    assert [m["mes"] for m in messages] == [t.text for t in history]
    assert [m["send_date"] for m in messages] == [
        msgspec.json.encode(t.create_time).decode().strip('"') for t in history
    ]
    swiped = next(m for m in messages if m["extra"]["cai"]["turn_id"] == seeded.swiped.turn_id)
    assert swiped["swipes"] == [c.raw_content for c in seeded.swiped.candidates[::-1]]
    [native_file] = (out / "native").rglob("*.jsonl")
    lines = native_file.read_bytes().splitlines()
    assert [msgspec.json.decode(x, type=Turn) for x in lines[1:]] == history
    [ooba_file] = (out / "ooba").rglob("*.json")
    assert read_ooba(ooba_file.read_bytes())[0][0] == ooba.BEGIN
    [dump] = (out / "cai-dump").glob("*.json")
    assert read_cai_dump(dump.read_bytes()) == [[(t.is_human, t.text) for t in history]]
    [png] = (out / "card").glob("*.png")
    v2, _ = read_png_card(png.read_bytes())
    assert v2["data"]["name"] == "Sage" and v2["data"]["first_mes"] == history[0].text


async def test_cai_dump_of_a_character_holds_all_its_chats_and_v1_histories(
    tmp_path: Path, synced: tuple[AsyncArchive, AsyncClient, Seeded], emu: Emulator
) -> None:
    archive, client, seeded = synced
    result = await archive.export("cai-dump", tmp_path / "d", characters=[emu.character("Sage").id])
    histories = read_cai_dump(result.files[0].read_bytes())
    assert len(histories) == 3  # two V2 chats (one archived) and the V1 history
    v1 = await client.v1.messages(seeded.v1_history_id)
    assert histories[-1] == [(m.is_human, m.text) for m in v1]


async def test_exports_never_overwrite_without_force_and_never_leave_half_a_file(
    tmp_path: Path,
    synced: tuple[AsyncArchive, AsyncClient, Seeded],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive, _, seeded = synced
    target = tmp_path / "chat.jsonl"
    result = await archive.export("sillytavern", target, chats=[seeded.long.chat_id])
    assert result.files == [target]  # one file and a matching suffix: that file
    good = target.read_bytes()
    with pytest.raises(OutputExists):
        await archive.export("sillytavern", target, chats=[seeded.long.chat_id])
    assert target.read_bytes() == good

    class FullDisk(io.BytesIO):
        def write(self, data: Any) -> int:
            if self.tell() > 100:
                raise OSError(28, "No space left on device")
            return super().write(data)

    monkeypatch.setattr(_files, "_open", lambda *a, **k: FullDisk())
    with pytest.raises(ArchiveWriteError, match="No space left"):
        await archive.export("sillytavern", target, chats=[seeded.long.chat_id], force=True)
    assert target.read_bytes() == good
    assert not partial_files(tmp_path)


async def test_bad_export_requests_are_typed_errors(
    tmp_path: Path, synced: tuple[AsyncArchive, AsyncClient, Seeded]
) -> None:
    archive, _, _ = synced
    with pytest.raises(ValidationError, match="unknown export format 'pdf'"):
        await archive.export("pdf", tmp_path / "x")
    with pytest.raises(ChatNotFound, match="not in the archive"):
        await archive.export("native", tmp_path / "x", chats=["nope"])
    assert not (tmp_path / "x").exists()
