"""Soak: 200 concurrent chats while the emulator keeps killing the socket.

Bounded (about 10 s of load): every completed reply must reach its own caller exactly once,
and no message may be stored twice. The counts are printed (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from caiclient import AsyncClient, Chat, Disconnected, Timeout
from caiclient.emulator import Emulator

CHATS = 200
LOAD_SECONDS = 8.0
DROP_EVERY = (0.8, 1.6)


async def test_soak_with_socket_drops(emu: Emulator, client: AsyncClient) -> None:
    emu.chunk_delay = 0.005
    echo = emu.character("Echo").id
    chats: list[Chat] = [
        c
        for c, _ in await asyncio.gather(
            *(client.chats.create(echo, greeting=False) for _ in range(CHATS))
        )
    ]
    counts: Counter[str] = Counter()
    sent_texts: dict[str, list[str]] = {c.chat_id: [] for c in chats}
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + LOAD_SECONDS

    async def worker(index: int, chat: Chat) -> None:
        n = 0
        while loop.time() < stop_at:
            n += 1
            text = f"chat {index} message {n}"
            sent_texts[chat.chat_id].append(text)
            counts["sent"] += 1
            try:
                reply = await client.chats.send(chat, text, timeout=20)
            except (Disconnected, Timeout) as exc:
                counts[type(exc).__name__] += 1
                continue
            assert reply.text.startswith(text), (text, reply.text)  # the right caller
            assert reply.chat_id == chat.chat_id
            counts["delivered"] += 1

    async def dropper() -> None:
        rng = random.Random(1234)
        while loop.time() < stop_at:
            await asyncio.sleep(rng.uniform(*DROP_EVERY))
            emu.faults.drop_after(rng.randrange(0, 30))
            counts["drops armed"] += 1

    await asyncio.gather(dropper(), *(worker(i, c) for i, c in enumerate(chats)))
    emu.faults.clear()

    stats = client.stats
    counts["recovered"] = stats.recovered_replies
    counts["re-sent"] = stats.resent_messages
    counts["reconnects"] = stats.reconnects
    print("\nsoak:", dict(counts))

    assert counts["delivered"] > 1000
    assert stats.reconnects >= 3
    assert stats.recovered_replies >= 1
    # A reply that completed on the server was never lost to a drop.
    assert counts["Disconnected"] + counts["Timeout"] <= counts["sent"] // 100

    # Idempotency: no message was stored twice, and every stored one was sent.
    histories = await asyncio.gather(*(client.chats.history(c) for c in chats))
    for chat, history in zip(chats, histories, strict=True):
        stored = Counter(t.text for t in history if t.is_human)
        assert all(n == 1 for n in stored.values()), stored.most_common(3)
        assert set(stored) <= set(sent_texts[chat.chat_id])
