"""The HTML export in a real headless browser: offline, searchable, swipes viewable.

Playwright drives Debian's Chromium (``/usr/bin/chromium``; ``.ci/run`` installs it when
missing). Every request the pages make is watched: anything but ``file://`` fails the test.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from archive_seed import seed_account
from caiclient import AsyncClient, Endpoints
from caiclient.archive import AsyncArchive
from caiclient.emulator import Emulator

CHROMIUM = Path("/usr/bin/chromium")
ROOM_WORDS = "tea in the garden room"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium package")


def browse(site: Path, swiped_turn: str, swipes: list[str]) -> None:
    """What a person does with the exported site, in a fresh browser (in this thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=30_000)
        try:
            _steps(browser, site, swiped_turn, swipes)
        finally:
            browser.close()


def _steps(browser: Any, site: Path, swiped_turn: str, swipes: list[str]) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.set_default_timeout(10_000)
    page.goto((site / "index.html").as_uri())
    assert page.locator("tbody tr").count() == 5  # every chat is listed, the room too
    page.fill("#q", ROOM_WORDS)  # a group chat is searched like the others
    results = page.locator("#results li")
    expect(results.first).to_contain_text(ROOM_WORDS)
    results.first.locator("a").click()
    page.wait_for_load_state()
    expect(page.locator("p.meta")).to_contain_text("group chat")
    expect(page.locator("main")).to_contain_text(ROOM_WORDS)
    page.go_back()
    page.wait_for_load_state()
    page.fill("#q", "question 3")  # search across every chat
    expect(results.first).to_contain_text("question 3")
    expect(page.locator("#count")).to_contain_text("match")
    page.fill("#q", "to be archived")  # the archived chat is searchable too
    expect(results.first).to_contain_text("to be archived")
    hrefs = {a.get_attribute("href").split("#")[0] for a in results.locator("a").all()}
    assert len(hrefs) == 1  # the message and the reply quoting it, both in that one chat
    page.fill("#q", swipes[0][:40])  # a swipe that is not the shown reply is found too
    expect(results.first).to_be_visible()
    results.first.locator("a").click()
    page.wait_for_load_state()
    assert "/chats/" in page.url and page.url.endswith(f"#t-{swiped_turn}")
    turn = page.locator(f"#t-{swiped_turn}")
    visible = turn.locator(".cand:visible")
    expect(visible).to_have_count(1)
    expect(visible).to_have_text(swipes[-1])  # the primary one, shown first
    expect(turn.locator(".pos")).to_have_text(f"{len(swipes)}/{len(swipes)}")
    turn.locator("button.next").click()  # flip to the other swipe
    expect(turn.locator(".cand:visible")).to_have_text(swipes[0])
    expect(turn.locator(".pos")).to_have_text(f"1/{len(swipes)}")
    turn.locator("button.prev").click()
    expect(turn.locator(".cand:visible")).to_have_text(swipes[-1])
    page.locator("nav a").click()
    page.wait_for_load_state()
    assert page.url.endswith("/index.html")
    page.close()
    assert requests and all(url.startswith("file://") for url in requests), requests


async def test_the_html_site_searches_across_chats_and_flips_swipes_offline(
    tmp_path: Path, emu: Emulator
) -> None:
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        seeded = await seed_account(client, emu, long_messages=8)
        room = await client.rooms.create([emu.character(n).id for n in ("Echo", "Sage")])
        await client.rooms.send(room, ROOM_WORDS)
        await client.rooms.generate(room)
        async with AsyncArchive(tmp_path / "a.cai") as archive:
            assert (await archive.sync(client, rate=None)).ok
            result = await archive.export("html", tmp_path / "site")
    assert {p.name for p in result.files} >= {"index.html", "search-index.js"}
    swipes = [c.raw_content for c in seeded.swiped.candidates[::-1]]  # oldest first
    # Playwright's sync API must not run on the test's event loop: a worker thread.
    await asyncio.to_thread(browse, tmp_path / "site", seeded.swiped.turn_id, swipes)
