"""Request sequences shaped like SillyTavern's, Open WebUI's and LibreChat's (BRIDGE.md §4),
with the exact c.ai operations (logger ``caiclient.bridge.ops``) and the final chats on the
emulator; client retries, disconnects and restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from bridge_util import Bridge, Ops, bridge_on, sqlite_url, texts
from caiclient.bridge import BridgeConfig, Policy
from caiclient.emulator import Emulator

CARD = {"role": "system", "content": "Write Echo's next reply in a fictional chat."}
ST_GREETING = {"role": "assistant", "content": "*Echo waves.* (the card's own greeting)"}
ST_QUIET_TITLE = "[Pause the roleplay. Write a title of at most five words for this chat.]"
ST_RAW_TITLE = "Write a short title for this conversation: Hi / Next / A different direction"


@pytest.fixture
async def bridge(emu: Emulator, tmp_path: Path) -> AsyncIterator[Bridge]:
    async with bridge_on(emu, sqlite_url(tmp_path)) as b:
        yield b


async def ask(b: Bridge, messages: list[dict[str, str]], **extra: Any) -> tuple[int, str, str]:
    """POST a completion; (status, X-Bridge-Action or error code, reply text)."""
    headers = extra.pop("headers", None)
    status, got, raw = await b.post({"model": b.echo, "messages": messages, **extra}, headers)
    if status == 200 and extra.get("stream"):
        return status, got["X-Bridge-Action"], streamed_text(raw)
    body = json.loads(raw)
    if status != 200:
        return status, body["error"]["code"], body["error"]["message"]
    return status, got["X-Bridge-Action"], body["choices"][0]["message"]["content"]


def streamed_text(raw: bytes) -> str:
    """The text of choice 0 of a complete SSE answer (which must end with ``[DONE]``)."""
    events = raw.decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    text = ""
    for event in events[:-2]:
        if event.startswith(":"):
            continue  # a keep-alive comment
        chunk = json.loads(event.removeprefix("data: "))
        assert "error" not in chunk
        text += "".join(c["delta"].get("content") or "" for c in chunk["choices"])
    return text


async def chat_ids(b: Bridge) -> set[str]:
    """The ids of the account's chats with Echo."""
    return {c.chat_id for c in await b.client.chats.recent(b.echo)}


def reply(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


async def test_sillytavern_session(bridge: Bridge, caplog: pytest.LogCaptureFixture) -> None:
    ops = Ops(caplog)
    chat = [CARD, ST_GREETING, user("Hi")]
    status, action, a1 = await ask(bridge, chat)
    assert (status, action) == (200, "first_contact+noise+new_turn")
    assert ops() == ["create", "stream"]
    [main] = await chat_ids(bridge)

    status, action, a1_swipe = await ask(bridge, chat)  # swipe →: the identical request
    assert (action, a1_swipe != a1) == ("swipe", True)
    assert ops() == ["regenerate"]

    chat += [reply(a1), user("Next")]  # swipe ← back to the first reply, then a message
    status, action, a2 = await ask(bridge, chat)
    assert action == "select+new_turn"
    assert ops() == ["select", "stream"]

    chat[-2:] = [reply(a1), user("Next")]
    chat += [reply("I rewrote this reply by hand."), user("After the edit")]
    status, action, a3 = await ask(bridge, chat)
    assert action == "refresh+edit+new_turn"
    assert ops() == ["history", "edit", "stream"]

    chat[-1] = user("After the edit, reworded")  # edit the last message and send again
    status, action, a3b = await ask(bridge, chat)
    assert action == "edit_last_user+new_turn"
    assert ops() == ["history", "delete", "stream"]  # the id of the user turn is read back

    snapshot = texts(await bridge.history())
    for shape, message in (
        ("unsupported_continue", {"role": "system", "content": "[Continue your last message.]"}),
        ("unsupported_instruction", {"role": "system", "content": "[Write as {{user}}.]"}),
        ("unsupported_instruction", {"role": "system", "content": "Summarize the chat."}),
        # A quiet prompt asking for a title: the history and a trailing system instruction.
        ("unsupported_instruction", {"role": "system", "content": ST_QUIET_TITLE}),
    ):
        status, code, _ = await ask(bridge, [*chat, reply(a3b), message])
        assert (status, code) == (400, shape)
    # Continue with ST's continue_prefill: the last reply again, the prefill before it.
    status, code, _ = await ask(bridge, [*chat, reply("*Echo goes on.*\n\n" + a3b)])
    assert (status, code) == (400, "unsupported_continue")
    assert ops() == []
    assert texts(await bridge.history()) == snapshot  # nothing written into the chat

    # Delete the last exchange in ST (the reworded message and its reply), send another.
    chat = [*chat[:-1], user("A different direction")]
    status, action, a4 = await ask(bridge, chat)
    assert action == "edit_last_user+new_turn"
    assert ops() == ["history", "delete", "stream"]

    final = texts(await bridge.history())
    assert [who for who, _ in final] == ["char", "user", "char", "user", "char", "user", "char"]
    assert final[1][1] == ["Hi"]
    assert final[2][1][0] == a1 and a1_swipe in final[2][1]  # primary: the chosen swipe
    assert final[3][1] == ["Next"]
    assert final[4][1][0] == "I rewrote this reply by hand." and a2 in final[4][1]
    assert final[5][1] == ["A different direction"]
    assert a3 not in str(final) and a3b not in str(final)
    assert final[6][1] == [a4]

    # Delete the tail in ST: the last exchange ("A different direction" and its reply) is
    # removed, nothing new is written, and Regenerate is pressed on what remains; ST drops the
    # reply shown last, so the request ends with the user message before it ("Next").
    # Continue on what remains is refused first, and changes nothing either.
    status, code, _ = await ask(bridge, [*chat[:-1], {"role": "system", "content": "[Continue]"}])
    assert (status, code, ops()) == (400, "unsupported_continue", [])
    assert texts(await bridge.history(main)) == final
    status, action, a5 = await ask(bridge, chat[:-2])
    assert (status, action) == (200, "delete_tail+swipe")
    assert ops() == ["history", "delete", "regenerate"]  # the user turn's id is read back
    final = texts(await bridge.history())
    assert [who for who, _ in final] == ["char", "user", "char", "user", "char"]
    assert final[3][1] == ["Next"]
    assert final[4][1] == [a5, "I rewrote this reply by hand.", a2]  # a new primary swipe
    assert "A different direction" not in str(final) and a4 not in str(final)

    # A title from an extension's raw generation (a single user message, no chat history):
    # a background task, answered in the character's scratch chat and never in this one.
    status, action, title = await ask(bridge, [user(ST_RAW_TITLE)])
    assert (status, action) == (200, "task") and title
    assert ops() == ["create", "stream", "delete"]
    assert texts(await bridge.history(main)) == final
    [scratch] = await chat_ids(bridge) - {main}
    assert texts(await bridge.history(scratch)) == []

    # A branch from the first reply: a new chat; the original is left as it was.
    branch = [CARD, ST_GREETING, user("Hi"), reply(a1), user("Branching off")]
    branch += [reply("An invented reply"), user("Deeper in the branch")]
    status, action, deeper = await ask(bridge, branch)
    assert action.startswith("branch")
    assert ops()[:2] == ["copy", "history"]
    [copy] = await chat_ids(bridge) - {main, scratch}
    assert texts(await bridge.history(main)) == final  # the original is left as it was
    forked = texts(await bridge.history(copy))
    assert forked[:3] == final[:3] and len(forked) == 7
    assert forked[3:6:2] == [("user", ["Branching off"]), ("user", ["Deeper in the branch"])]
    assert forked[4][1][0] == "An invented reply"  # imported: sent, then edited to match
    assert forked[6] == ("char", [deeper])


async def test_open_webui_conversation_and_title_task(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    ops = Ops(caplog)
    owui = {"X-OpenWebUI-Chat-Id": "owui-chat-1"}
    status, action, a1 = await ask(bridge, [user("Hello")], headers=owui)
    assert (status, action) == (200, "first_contact+new_turn")
    status, action, _ = await ask(bridge, [user("Hello"), reply(a1), user("More")], headers=owui)
    assert action == "new_turn"
    before = texts(await bridge.history())
    title = (
        "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat "
        "history.\n### Chat History:\n<chat_history>\nUSER: Hello\n"
        f"ASSISTANT: {a1}\n</chat_history>"
    )
    ops()
    status, action, _ = await ask(bridge, [user(title)], headers=owui)
    assert (status, action) == (200, "task")
    assert ops() == ["create", "stream", "delete"]
    chats = await bridge.client.chats.recent(bridge.echo)
    histories = [texts(await bridge.history(c.chat_id)) for c in chats]
    assert sorted(histories, key=len) == [[], before]  # the scratch chat is empty again
    # Regenerate in Open WebUI (a sibling): a swipe of the same turn.
    status, action, _ = await ask(bridge, [user("Hello"), reply(a1), user("More")], headers=owui)
    assert action == "swipe"
    # The same words in another Open WebUI chat are another conversation.
    status, action, _ = await ask(bridge, [user("Hello")], headers={"X-OpenWebUI-Chat-Id": "2"})
    assert action == "first_contact+new_turn"


async def test_sillytavern_multiple_swipes(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    # ST's "multiple swipes" (n > 1): choice 0 is shown, the others become its swipes.
    ops = Ops(caplog)
    chat = [CARD, ST_GREETING, user("Hi")]
    status, got, raw = await bridge.post({"model": bridge.echo, "messages": chat, "n": 2})
    assert (status, got["X-Bridge-Action"]) == (200, "first_contact+noise+new_turn")
    first, second = (c["message"]["content"] for c in json.loads(raw)["choices"])
    assert first != second
    assert ops() == ["create", "stream", "regenerate", "select"]
    [main] = await chat_ids(bridge)
    assert texts(await bridge.history(main))[2] == ("char", [first, second])
    # Swipe to the second choice in ST, then send: it becomes c.ai's primary.
    status, action, _ = await ask(bridge, [*chat, reply(second), user("Next")])
    assert (status, action) == (200, "select+new_turn")
    assert ops() == ["select", "stream"]
    assert texts(await bridge.history(main))[2] == ("char", [second, first])


async def test_sillytavern_instructions_in_a_scratch_copy(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # With instructions="scratch", impersonate and quiet prompts are answered in a copy of
    # the chat made for the one request and archived after it; the chat itself is unchanged.
    config = BridgeConfig(policy=Policy(instructions="scratch"))
    async with bridge_on(emu, sqlite_url(tmp_path), config=config) as b:
        ops = Ops(caplog)
        chat = [CARD, ST_GREETING, user("Hi")]
        _, _, a1 = await ask(b, chat)
        [main] = await chat_ids(b)
        before = texts(await b.history(main))
        ops()
        for instruction in (
            "[Write your next reply from the point of view of {{user}}.]",
            ST_QUIET_TITLE,
        ):
            status, action, answer = await ask(
                b, [*chat, reply(a1), {"role": "system", "content": instruction}]
            )
            assert (status, action, bool(answer)) == (200, "instruction", True)
            assert ops() == ["copy", "stream", "archive"]
            assert instruction in answer  # Echo repeats the instruction it was sent
        assert texts(await b.history(main)) == before
        assert await chat_ids(b) == {main}  # the copies are archived
        # The chat goes on as if nothing happened.
        status, action, _ = await ask(b, [*chat, reply(a1), user("Back to it")])
        assert (status, action, ops()) == (200, "new_turn", ["stream"])


def owui_task(instruction: str, history: str) -> str:
    """An Open WebUI background task prompt (titles, tags, follow-ups): one user message."""
    return (
        f"### Task:\n{instruction}\n### Chat History:\n<chat_history>\n{history}\n</chat_history>"
    )


async def test_open_webui_tree_operations(bridge: Bridge, caplog: pytest.LogCaptureFixture) -> None:
    # Open WebUI keeps each chat as a tree and sends the selected path with its chat id.
    ops = Ops(caplog)
    owui = {"X-OpenWebUI-Chat-Id": "owui-tree"}

    async def send(messages: list[dict[str, str]]) -> tuple[int, str, str]:
        extra = {"stream": True, "stream_options": {"include_usage": True}}
        return await ask(bridge, messages, headers=owui, **extra)

    status, action, a1 = await send([user("Hello")])
    assert (status, action) == (200, "first_contact+new_turn")
    assert ops() == ["create", "stream"]
    [main] = await chat_ids(bridge)
    greeting = texts(await bridge.history(main))[0]

    status, action, a1b = await send([user("Hello")])  # Regenerate: a sibling reply
    assert (action, a1b != a1) == ("swipe", True)
    assert ops() == ["regenerate"]

    # Back to the first sibling with the arrows, then a message under it.
    status, action, a2 = await send([user("Hello"), reply(a1), user("More")])
    assert action == "select+new_turn"
    assert ops() == ["select", "stream"]

    # The reply is edited in place (saved, no request); the next message carries it.
    path = [user("Hello"), reply(a1), user("More"), reply("Edited in Open WebUI."), user("Third")]
    status, action, a3 = await send(path)
    assert action == "refresh+edit+new_turn"
    assert ops() == ["history", "edit", "stream"]

    # Editing the last user message makes a sibling of it and sends the new path.
    path[-1] = user("Third, reworded")
    status, action, a3b = await send(path)
    assert action == "edit_last_user+new_turn"
    assert ops() == ["history", "delete", "stream"]
    chat = [
        greeting,
        ("user", ["Hello"]),
        ("char", [a1, a1b]),
        ("user", ["More"]),
        ("char", ["Edited in Open WebUI.", a2]),
        ("user", ["Third, reworded"]),
        ("char", [a3b]),
    ]
    assert texts(await bridge.history(main)) == chat and a3 not in str(chat)

    # Continue Response: the path ends with the reply to extend; c.ai cannot.
    status, code, _ = await send([*path, reply(a3b)])
    assert (status, code) == (400, "unsupported_continue")
    assert ops() == []

    # The title, tags and follow-up tasks go to the character's scratch chat and are removed.
    shown = f"USER: Hello\nASSISTANT: {a1}\nUSER: More"
    for instruction in (
        "Generate a concise, 3-5 word title with an emoji summarizing the chat history.",
        "Generate 1-3 broad tags categorizing the main themes of the chat history.",
        "Suggest 3-5 relevant follow-up questions or prompts that the user might ask next.",
    ):
        status, action, answer = await send([user(owui_task(instruction, shown))])
        assert (status, action, bool(answer)) == (200, "task", True)
    assert ops() == ["create", "stream", "delete", "stream", "delete", "stream", "delete"]
    [scratch] = await chat_ids(bridge) - {main}
    assert texts(await bridge.history(scratch)) == []
    assert texts(await bridge.history(main)) == chat

    # Editing "More" (deep in the tree) forks the path: a copy up to the first reply serves
    # the new branch; the original chat is left as it was.
    status, action, other = await send([user("Hello"), reply(a1), user("Another way")])
    assert action.startswith("branch") and action.endswith("new_turn")
    assert ops()[:2] == ["copy", "history"]
    [fork] = await chat_ids(bridge) - {main, scratch}
    assert texts(await bridge.history(fork)) == [
        *chat[:3],
        ("user", ["Another way"]),
        ("char", [other]),
    ]
    assert texts(await bridge.history(main)) == chat

    # Back on the first branch (the same Open WebUI chat id): its chat continues.
    status, action, a4 = await send([*path, reply(a3b), user("Fourth")])
    assert action == "new_turn"
    assert ops() == ["stream"]
    chat += [("user", ["Fourth"]), ("char", [a4])]
    assert texts(await bridge.history(main)) == chat

    # Delete the last exchange ("Fourth" and its reply), then regenerate the reply before it.
    status, action, a3c = await send(path)
    assert action == "delete_tail+swipe"
    assert ops() == ["history", "delete", "regenerate"]
    chat[-3:] = [("char", [a3c, a3b])]
    assert texts(await bridge.history(main)) == chat
    assert texts(await bridge.history(fork))[3:] == [("user", ["Another way"]), ("char", [other])]

    # A new Open WebUI chat opening with the same words: another chat id, another c.ai chat.
    owui["X-OpenWebUI-Chat-Id"] = "owui-tree-2"
    status, action, again = await send([user("Hello")])
    assert (status, action) == (200, "first_contact+new_turn")
    assert ops() == ["create", "stream"]
    [second] = await chat_ids(bridge) - {main, scratch, fork}
    assert texts(await bridge.history(second)) == [greeting, ("user", ["Hello"]), ("char", [again])]
    assert texts(await bridge.history(main)) == chat


async def test_librechat_conversation_header_and_title(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    ops = Ops(caplog)
    lc = {"X-Conversation-Id": "lc-42"}
    body = {"user": "librechat-user-1", "stream": True, "temperature": 1, "top_p": 1}
    status, headers, raw = await bridge.post(
        {"model": bridge.echo, "messages": [user("Hey")], **body}, lc
    )
    assert status == 200 and headers["X-Bridge-Action"] == "first_contact+new_turn"
    assert raw.endswith(b"data: [DONE]\n\n")
    prompt = (
        "Provide a concise, 5-word-or-less title for the conversation, using title case "
        "conventions. Only return the title itself.\n\nConversation:\nUser: Hey"
    )
    ops()
    status, action, _ = await ask(bridge, [user(prompt)], headers=lc)
    assert action == "task"
    assert ops() == ["create", "stream", "delete"]
    chats = await bridge.client.chats.recent(bridge.echo)
    histories = [texts(await bridge.history(c.chat_id)) for c in chats]
    assert sorted(len(h) for h in histories) == [0, 3]  # the conversation, the empty scratch
    assert [("user", ["Hey"])] in [h[1:2] for h in histories]


async def test_librechat_operations(bridge: Bridge, caplog: pytest.LogCaptureFixture) -> None:
    # LibreChat streams always, sends its user id and default sampling parameters, and names
    # the conversation in a templated header; it has no greeting and no message deletion.
    ops = Ops(caplog)

    async def send(conversation: str, messages: list[dict[str, str]]) -> tuple[int, str, str]:
        body = {"stream": True, "user": "librechat-user-1", "temperature": 1, "top_p": 1}
        return await ask(bridge, messages, headers={"X-Conversation-Id": conversation}, **body)

    status, action, a1 = await send("lc-ops", [user("Hey")])
    assert (status, action) == (200, "first_contact+new_turn")
    assert ops() == ["create", "stream"]
    [main] = await chat_ids(bridge)
    greeting = texts(await bridge.history(main))[0]

    status, action, a1b = await send("lc-ops", [user("Hey")])  # Regenerate
    assert (action, a1b != a1) == ("swipe", True)
    assert ops() == ["regenerate"]

    status, action, a2 = await send("lc-ops", [user("Hey"), reply(a1b), user("Tell me more")])
    assert action == "new_turn"  # the regenerated reply is the one shown
    assert ops() == ["stream"]

    # The reply is edited and saved; the next message carries the edited text.
    path = [user("Hey"), reply(a1b), user("Tell me more"), reply("Edited in LibreChat.")]
    status, action, a3 = await send("lc-ops", [*path, user("And then?")])
    assert action == "refresh+edit+new_turn"
    assert ops() == ["history", "edit", "stream"]

    # Edit the last user message, then "Save & Submit".
    status, action, a3b = await send("lc-ops", [*path, user("And after that?")])
    assert action == "edit_last_user+new_turn"
    assert ops() == ["history", "delete", "stream"]
    chat = [
        greeting,
        ("user", ["Hey"]),
        ("char", [a1b, a1]),
        ("user", ["Tell me more"]),
        ("char", ["Edited in LibreChat.", a2]),
        ("user", ["And after that?"]),
        ("char", [a3b]),
    ]
    assert texts(await bridge.history(main)) == chat and a3 not in str(chat)

    # Continue: the messages end with the reply to extend.
    status, code, _ = await send("lc-ops", [*path, user("And after that?"), reply(a3b)])
    assert (status, code) == (400, "unsupported_continue")
    assert ops() == []

    # The title, generated through the same endpoint: the scratch chat, emptied again.
    prompt = (
        "Provide a concise, 5-word-or-less title for the conversation, using title case "
        "conventions. Only return the title itself.\n\nConversation:\nUser: Hey"
    )
    status, action, title = await send("lc-ops", [user(prompt)])
    assert (status, action, bool(title)) == (200, "task", True)
    assert ops() == ["create", "stream", "delete"]
    [scratch] = await chat_ids(bridge) - {main}
    assert texts(await bridge.history(scratch)) == []
    assert texts(await bridge.history(main)) == chat

    # Fork: LibreChat copies the messages up to the fork point into a new conversation with a
    # new id. The bridge does not know that id: a new chat, the history imported into it.
    status, action, forked = await send("lc-fork", [*path, user("In the fork")])
    assert (status, action) == (200, "first_contact+import+new_turn")
    assert ops() == ["create", "send", "edit", "send", "edit", "stream"]
    [fork] = await chat_ids(bridge) - {main, scratch}
    got = texts(await bridge.history(fork))
    assert [(who, c[0]) for who, c in got[1:]] == [
        ("user", "Hey"),
        ("char", a1b),
        ("user", "Tell me more"),
        ("char", "Edited in LibreChat."),
        ("user", "In the fork"),
        ("char", forked),
    ]
    assert texts(await bridge.history(main)) == chat  # the original conversation is untouched

    # Both conversations go on, each in its own chat.
    status, action, a4 = await send(
        "lc-ops", [*path, user("And after that?"), reply(a3b), user("4")]
    )
    assert (action, ops()) == ("new_turn", ["stream"])
    status, action, _ = await send(
        "lc-fork", [*path, user("In the fork"), reply(forked), user("5")]
    )
    assert (action, ops()) == ("new_turn", ["stream"])
    assert texts(await bridge.history(main)) == [*chat, ("user", ["4"]), ("char", [a4])]
    assert texts(await bridge.history(fork))[-2][1] == ["5"]


async def test_client_retry_after_a_timeout_makes_one_turn(tmp_path: Path) -> None:
    # The reply takes 1.6 s (5 frames 0.4 s apart): the first attempt times out at 1 s; the
    # retry (after openai's 0.4-0.5 s back-off) waits for it and gets it, with a margin of
    # about 0.6 s each way, so a loaded machine does not decide the outcome.
    async with Emulator(chunk_delay=0.4) as emu, bridge_on(emu, sqlite_url(tmp_path)) as b:
        async with openai.AsyncOpenAI(
            base_url=b.v1, api_key="unused", timeout=1.0, max_retries=1
        ) as oa:
            got = await oa.chat.completions.create(
                model=b.echo, messages=[{"role": "user", "content": "Slow one"}]
            )
        content = got.choices[0].message.content
        history = texts(await b.history())
        assert [who for who, _ in history] == ["char", "user", "char"]
        assert history[1][1] == ["Slow one"]
        assert history[2][1] == [content]  # one reply, replayed to the retry


async def _give_up(b: Bridge, body: dict[str, Any], seconds: float) -> None:
    """POST a completion and go away after ``seconds``, before any answer came."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as http:
        with pytest.raises(asyncio.TimeoutError):
            async with http.post(b.v1 + "/chat/completions", json=body) as response:
                await response.read()


async def _hang_up_after_first_delta(b: Bridge, messages: list[dict[str, str]]) -> str:
    """Stream a completion, read its first delta, close the connection; the text read."""
    body = {"model": b.echo, "stream": True, "messages": messages}
    async with aiohttp.ClientSession() as http:
        response = await http.post(b.v1 + "/chat/completions", json=body)
        assert response.status == 200
        role = json.loads((await response.content.readuntil(b"\n\n"))[6:])
        assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        first = json.loads((await response.content.readuntil(b"\n\n"))[6:])
        response.close()
    return str(first["choices"][0]["delta"]["content"])


async def test_disconnect_mid_stream_stops_the_generation(tmp_path: Path) -> None:
    # Frames 0.25 s apart: the stop reaches the emulator long before the reply would end.
    async with Emulator(chunk_delay=0.25) as emu, bridge_on(emu, sqlite_url(tmp_path)) as b:
        seen = await _hang_up_after_first_delta(b, [user("Cut me off")])
        assert seen
        # The conversation is free at once; the service was told to stop generating.
        status, action, full = await ask(b, [user("Cut me off")])
        assert (status, action) == (200, "swipe")  # a stopped reply is never replayed
        assert b.client.stats.aborted_generations == 1
        [_, said, answer] = texts(await b.history())
        assert said == ("user", ["Cut me off"])
        new, stopped = answer[1]
        assert new == full and stopped.startswith(seen) and len(stopped) < len(full)


async def test_a_stream_left_before_its_first_frame_is_stopped_and_read_back(
    tmp_path: Path,
) -> None:
    # Nothing is sent before the first frame, so the client leaves without a status.
    async with Emulator(chunk_delay=0.5) as emu, bridge_on(emu, sqlite_url(tmp_path)) as b:
        await _give_up(b, {"model": b.echo, "stream": True, "messages": [user("Too slow")]}, 0.2)
        # The conversation is free at once; the chat's history says what c.ai kept.
        status, action, full = await ask(b, [user("Too slow")])
        assert (status, action) == (200, "swipe")
        assert b.client.stats.aborted_generations == 1
        [_, said, answer] = texts(await b.history())
        assert said == ("user", ["Too slow"]) and answer[1][0] == full


async def test_after_a_stop_the_front_ends_partial_reply_matches_the_chat(
    tmp_path: Path,
) -> None:
    # SillyTavern keeps the partial reply when Stop is pressed, and sends it next time.
    async with Emulator(chunk_delay=0.1) as emu, bridge_on(emu, sqlite_url(tmp_path)) as b:
        seen = await _hang_up_after_first_delta(b, [user("Cut me off")])
        status, action, _ = await ask(b, [user("Cut me off"), reply(seen), user("Go on")])
        assert (status, action) == (200, "new_turn")  # the mirror knew what was shown
        history = texts(await b.history())
        assert [who for who, _ in history] == ["char", "user", "char", "user", "char"]
        assert history[2][1][0].startswith(seen)  # the stopped reply, as c.ai kept it


async def test_disconnect_of_a_non_streaming_request_keeps_the_reply_for_the_retry(
    tmp_path: Path,
) -> None:
    async with Emulator(chunk_delay=0.1) as emu, bridge_on(emu, sqlite_url(tmp_path)) as b:
        await _give_up(b, {"model": b.echo, "messages": [user("Wait for it")]}, 0.25)
        status, action, text = await ask(b, [user("Wait for it")])
        assert (status, action) == (200, "replay")
        assert b.client.stats.aborted_generations == 0
        assert texts(await b.history())[2][1] == [text]  # the whole reply, one candidate
        status, action, _ = await ask(b, [user("Wait for it")])
        assert action == "swipe"  # delivered now: the same request again is a new swipe


async def test_restart_keeps_the_conversation(emu: Emulator, tmp_path: Path) -> None:
    state = sqlite_url(tmp_path)
    async with bridge_on(emu, state) as first:
        _, action, a1 = await ask(first, [CARD, user("Remember me")])
        assert action == "first_contact+new_turn"
    async with bridge_on(emu, state) as second:
        _, action, _ = await ask(second, [CARD, user("Remember me"), reply(a1), user("Still?")])
        assert action == "new_turn"
        assert len(await second.client.chats.recent(second.echo)) == 1
