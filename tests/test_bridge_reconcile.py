"""The reconcile rules as a table: literal messages + a literal mirror -> the exact plan.

No I/O, no loop. Turn ids are ``t0, t1, …`` (the index), candidate ids ``t<i>c<k>``;
mirror turns are written as ``("user"|"char", [candidate texts], primary index)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from caiclient.bridge import reconcile as rc

GREETING = "Hello! I am Echo."


def mirror(
    *turns: tuple[str, Sequence[str]] | tuple[str, Sequence[str], int],
    fresh: bool = False,
    texts: bool = False,
    unknown_user_ids: bool = False,
) -> rc.Mirror:
    built = []
    known: dict[str, str] = {}
    for i, spec in enumerate(turns):
        who, candidates = spec[0], spec[1]
        primary = spec[2] if len(spec) == 3 else 0  # type: ignore[misc]
        cands = []
        for k, text in enumerate(candidates):
            cid = f"t{i}c{k}"
            cands.append(rc.MCandidate(cid, (rc.digest(rc.normalise(text)),)))
            known[cid] = rc.normalise(text)
        turn_id = None if unknown_user_ids and who == "user" else f"t{i}"
        built.append(rc.MTurn(turn_id, who == "user", tuple(cands), cands[primary].candidate_id))
    return rc.Mirror(tuple(built), fresh=fresh, texts=known if texts else None)


def dialogue(*messages: tuple[str, str], continue_flag: bool = False) -> rc.Dialogue:
    return rc.extract(
        [rc.Message(role, text) for role, text in messages],
        names=("Echo",),
        continue_flag=continue_flag,
        salt="model",
    )


# The chat on c.ai: greeting, "Hi", a reply with two swipes (the second one primary), "More",
# a reply.
CHAT = mirror(
    ("char", [GREETING]),
    ("user", ["Hi"]),
    ("char", ["Hi back", "Hi there"], 1),
    ("user", ["More"]),
    ("char", ["More back"]),
)
HISTORY = [
    ("system", "You are Echo. {{char}} card."),
    ("assistant", GREETING),
    ("user", "Hi"),
    ("assistant", "Hi there"),
    ("user", "More"),
    ("assistant", "More back"),
]

CASES: list[tuple[str, list[tuple[str, str]], rc.Mirror, dict[str, object], rc.Plan]] = [
    (
        "new user turn",
        [*HISTORY, ("user", "Third")],
        CHAT,
        {},
        rc.Plan(("new_turn",), rc.Generate("Third")),
    ),
    (
        "new user turn, head truncated and a depth injection in the middle",
        [HISTORY[3], ("user", "[Author's note: rain]"), *HISTORY[4:], ("user", "Third")],
        CHAT,
        {},
        rc.Plan(("noise", "new_turn"), rc.Generate("Third")),
    ),
    (
        "trailing system message after a new user turn is ignored",
        [*HISTORY, ("user", "Third"), ("system", "[Post-history instructions]")],
        CHAT,
        {},
        rc.Plan(("new_turn",), rc.Generate("Third")),
    ),
    (
        "swipe: the same request as the one that produced the last reply",
        HISTORY[:-1],
        CHAT,
        {},
        rc.Plan(("swipe",), rc.Regenerate(4)),
    ),
    (
        "retry of a reply that was never delivered: replay it",
        HISTORY[:-1],
        CHAT,
        {"prior": "undelivered"},
        rc.Plan(("replay",), rc.Replay(4, ("t4c0",))),
    ),
    (
        "client retry (x-stainless-retry-count 1) of a delivered reply: replay it",
        HISTORY[:-1],
        CHAT,
        {"prior": "delivered", "retry": 1},
        rc.Plan(("replay",), rc.Replay(4, ("t4c0",))),
    ),
    (
        "a delivered reply asked for again without a retry count: a new swipe",
        HISTORY[:-1],
        CHAT,
        {"prior": "delivered"},
        rc.Plan(("swipe",), rc.Regenerate(4)),
    ),
    (
        "an older swipe chosen in the front end, then a new message: select it",
        [*HISTORY[:3], ("assistant", "Hi back"), *HISTORY[4:], ("user", "Third")],
        CHAT,
        {},
        rc.Plan(("select", "new_turn"), rc.Generate("Third"), (rc.Select(2, "t2c0"),)),
    ),
    (
        "the last reply edited in the front end (texts known): edit the turn",
        [*HISTORY[:-1], ("assistant", "A reply the user rewrote entirely"), ("user", "Third")],
        mirror(
            *[
                (t, c, p)
                for t, c, p in [
                    ("char", [GREETING], 0),
                    ("user", ["Hi"], 0),
                    ("char", ["Hi back", "Hi there"], 1),
                    ("user", ["More"], 0),
                    ("char", ["More back"], 0),
                ]
            ],
            texts=True,
        ),
        {},
        rc.Plan(
            ("edit", "new_turn"),
            rc.Generate("Third"),
            (rc.Edit(4, "A reply the user rewrote entirely"),),
        ),
    ),
    (
        "an edited reply without texts: read the history first",
        [*HISTORY[:-1], ("assistant", "A reply the user rewrote entirely"), ("user", "Third")],
        CHAT,
        {},
        rc.Plan(("refresh",), rc.NeedHistory("a message differs from the mirror")),
    ),
    (
        "Stop kept a prefix of the reply: remembered as a variant, no c.ai change",
        [*HISTORY[:-1], ("assistant", "More"), ("user", "Third")],
        mirror(
            ("char", [GREETING]),
            ("user", ["Hi"]),
            ("char", ["Hi back", "Hi there"], 1),
            ("user", ["More"]),
            ("char", ["More back"]),
            texts=True,
        ),
        {},
        rc.Plan(
            ("truncated", "new_turn"),
            rc.Generate("Third"),
            (rc.Alias(4, "t4c0", rc.digest("More")),),
        ),
    ),
    (
        "a cosmetic change (markdown fix) deep in the history: a variant, not an edit",
        [
            HISTORY[0],
            HISTORY[1],
            HISTORY[2],
            ("assistant", "Hi there!"),
            *HISTORY[4:],
            ("user", "x"),
        ],
        mirror(
            ("char", [GREETING]),
            ("user", ["Hi"]),
            ("char", ["Hi back", "Hi there"], 1),
            ("user", ["More"]),
            ("char", ["More back"]),
            texts=True,
        ),
        {},
        rc.Plan(
            ("cosmetic", "new_turn"),
            rc.Generate("x"),
            (rc.Alias(2, "t2c1", rc.digest("Hi there!")),),
        ),
    ),
    (
        "the last user message edited, then sent again: redo the exchange",
        [*HISTORY[:4], ("user", "More, edited")],
        CHAT,
        {"certain": True},
        rc.Plan(("edit_last_user", "new_turn"), rc.Generate("More, edited"), (rc.Delete((3, 4)),)),
    ),
    (
        "the last exchange deleted, then a new message: delete those turns",
        [*HISTORY[:4], ("user", "Something else")],
        CHAT,
        {},
        rc.Plan(
            ("edit_last_user", "new_turn"), rc.Generate("Something else"), (rc.Delete((3, 4)),)
        ),
    ),
    (
        "the last exchange deleted, then a swipe of the reply before it",
        HISTORY[:3],
        CHAT,
        {"certain": True},
        rc.Plan(("delete_tail", "swipe"), rc.Regenerate(2), (rc.Delete((3, 4)),)),
    ),
    (
        "a branch from the first reply: copy the chat there, never destroy it",
        [*HISTORY[:4], ("user", "Branch talk"), ("assistant", "Branch reply"), ("user", "On")],
        CHAT,
        {},
        rc.Plan(("branch",), rc.Branch(2)),
    ),
    (
        "ST continue (a nudge after the last reply): rejected, nothing written",
        [*HISTORY, ("system", "[Continue your last message without repeating it.]")],
        CHAT,
        {},
        rc.Plan(("continue",), rc.Reject("unsupported_continue", "")),
    ),
    (
        "continue_final_message flag: rejected",
        HISTORY,
        CHAT,
        {"continue_flag": True},
        rc.Plan(("continue",), rc.Reject("unsupported_continue", "")),
    ),
    (
        "ST impersonate: a trailing instruction with no new user message",
        [*HISTORY, ("system", "[Write your next reply from the point of view of the user.]")],
        CHAT,
        {},
        rc.Plan(("instruction",), rc.Reject("unsupported_instruction", "")),
    ),
    (
        "a quiet summary prompt, with the scratch policy: run it in a copy",
        [*HISTORY, ("system", "Summarise the chat so far.")],
        CHAT,
        {"policy": rc.Policy(instructions="scratch")},
        rc.Plan(("instruction",), rc.Instruct(4, "Summarise the chat so far.")),
    ),
    (
        "first contact: no chat yet",
        [("system", "card"), ("assistant", "ST's own greeting"), ("user", "Hi")],
        rc.Mirror(),
        {},
        rc.Plan(("first_contact",), rc.NewChat()),
    ),
    (
        "first contact after the chat was created: the foreign greeting is left aside",
        [("assistant", "ST's own greeting"), ("user", "Hi")],
        mirror(("char", [GREETING]), fresh=True),
        {},
        rc.Plan(("first_contact", "noise", "new_turn"), rc.Generate("Hi")),
    ),
    (
        "first contact with history to import: one exchange replayed, then the message",
        [("user", "Old question"), ("assistant", "Old answer"), ("user", "New question")],
        mirror(("char", [GREETING]), fresh=True),
        {},
        rc.Plan(
            ("first_contact", "import", "new_turn"),
            rc.Generate("New question"),
            (rc.Send("Old question", "Old answer"),),
        ),
    ),
    (
        "first contact with more history than import_turns: the oldest is dropped",
        [("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2"), ("user", "q3")],
        mirror(("char", [GREETING]), fresh=True),
        {"policy": rc.Policy(import_turns=1)},
        rc.Plan(
            ("first_contact", "import_truncated", "import", "new_turn"),
            rc.Generate("q3"),
            (rc.Send("q2", "a2"),),
        ),
    ),
    (
        "first contact, greeting policy 'edit': the c.ai greeting becomes the front end's",
        [("assistant", "ST's own greeting"), ("user", "Hi")],
        mirror(("char", [GREETING]), fresh=True),
        {"policy": rc.Policy(greeting="edit")},
        rc.Plan(
            ("first_contact", "greeting", "noise", "new_turn"),
            rc.Generate("Hi"),
            (rc.Edit(0, "ST's own greeting"),),
        ),
    ),
    (
        "a pinned c.ai chat that nothing matches: only the last message continues it",
        [("assistant", "ST's own greeting"), ("user", "Hello again")],
        CHAT,
        {"adopt": True},
        rc.Plan(("adopt", "new_turn"), rc.Generate("Hello again")),
    ),
    (
        "two user messages in a row: one c.ai turn",
        [*HISTORY, ("user", "One"), ("user", "Two")],
        CHAT,
        {},
        rc.Plan(("merged", "new_turn"), rc.Generate("One\n\nTwo")),
    ),
    (
        "the chat ends with a user turn that never got a reply: send it again",
        [*HISTORY[:5]],
        mirror(("char", [GREETING]), ("user", ["Hi"]), ("char", ["Hi there"]), ("user", ["More"])),
        {},
        rc.Plan(("resend", "new_turn"), rc.Generate("More"), (rc.Delete((3,)),)),
    ),
    (
        "a deleted reply whose user turn id is not known yet: read the history first",
        [*HISTORY[:4], ("user", "Something else")],
        mirror(
            ("char", [GREETING]),
            ("user", ["Hi"]),
            ("char", ["Hi there"]),
            ("user", ["More"]),
            ("char", ["More back"]),
            unknown_user_ids=True,
        ),
        {},
        rc.Plan(("edit_last_user", "new_turn"), rc.NeedHistory("turn ids")),
    ),
    (
        "only the greeting and 'Hi' match (a new ST chat?): branch, never delete",
        [("assistant", GREETING), ("user", "Hi")],
        mirror(
            ("char", [GREETING]),
            ("user", ["Hi"]),
            ("char", ["Hi back"]),
            ("user", ["x"]),
            ("char", ["y"]),
        ),
        {},
        rc.Plan(("branch",), rc.Branch(0)),
    ),
    (
        "nothing matches a chat that has a history: branch at the greeting",
        [("user", "Entirely new")],
        CHAT,
        {"certain": True},
        rc.Plan(("branch",), rc.Branch(0)),
    ),
    (
        "no user or assistant message at all",
        [("system", "Only a system prompt")],
        CHAT,
        {},
        rc.Plan(("empty",), rc.Reject("no_dialogue", "")),
    ),
]


def _prior(kind: object) -> rc.Prior | None:
    key = dialogue(*HISTORY[:-1]).request_key
    if kind == "undelivered":
        return rc.Prior(key, "t4", ("t4c0",), delivered=False)
    if kind == "delivered":
        return rc.Prior(key, "t4", ("t4c0",), delivered=True)
    return None


@pytest.mark.parametrize(
    ("messages", "chat", "options", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_plan(
    messages: list[tuple[str, str]],
    chat: rc.Mirror,
    options: dict[str, object],
    expected: rc.Plan,
) -> None:
    options = dict(options)
    d = dialogue(*messages, continue_flag=bool(options.pop("continue_flag", False)))
    got = rc.plan(d, chat, prior=_prior(options.pop("prior", None)), **options)  # type: ignore[arg-type]
    if isinstance(expected.action, rc.Reject):
        assert isinstance(got.action, rc.Reject)
        assert got.action.code == expected.action.code
        assert got.action.message  # says what to do instead
        assert (got.classes, got.steps) == (expected.classes, expected.steps)
    else:
        assert got == expected
    if isinstance(got.action, rc.Generate) and got.action.key:
        # The key a send carries is its text's, as if worked out again.
        assert got.action.key == rc.digest(rc.normalise(got.action.text))
    elif isinstance(got.action, rc.Generate):
        assert "\n\n" in got.action.text  # Only merged messages have no key of their own.


def test_request_key_depends_on_everything_sent() -> None:
    a = dialogue(*HISTORY)
    assert a.request_key == dialogue(*HISTORY).request_key
    assert a.request_key != dialogue(*HISTORY[:-1]).request_key
    assert a.request_key != dialogue(*HISTORY, ("system", "x")).request_key
    other_model = rc.extract([rc.Message(r, t) for r, t in HISTORY], salt="other")
    assert a.request_key != other_model.request_key


def test_request_key_is_stable_across_versions() -> None:
    # Stored reply records carry it: the same request must keep its key after an upgrade
    # (BLAKE2b-128 of the salt, then "\x1e<role>\x1f<text>" for every message).
    messages = [
        rc.Message("system", "card"),
        rc.Message("user", "Hi"),
        rc.Message("assistant", "Hello", "Echo"),
        rc.Message("user", "More"),
    ]
    key = rc.extract(messages, names=("Echo",), salt="m\x1f1").request_key
    assert key == "cd53d31825fec32ec679b0e5ac55c560"


def test_extract_splits_preamble_dialogue_and_trailing_system_text() -> None:
    d = rc.extract(
        [
            rc.Message("system", "Card"),
            rc.Message("system", "Example", name="example_user"),
            rc.Message("assistant", "Echo: Hello\r\n  "),
            rc.Message("system", "[injected]"),
            rc.Message("user", "Hi  \n"),
            rc.Message("system", "Nudge"),
        ],
        names=("Echo",),
    )
    assert [(line.role, line.text) for line in d.lines] == [("assistant", "Hello"), ("user", "Hi")]
    assert (d.preamble, d.trailing) == ("Card", "Nudge")


def test_normalise_is_idempotent_and_strips_speaker_names() -> None:
    text = "Echo: \u0065\u0301cho  \r\n\r\nline  "
    once = rc.normalise(text, ["Echo"])
    assert once == "\u00e9cho\n\nline"
    assert rc.normalise(once, ["Echo"]) == once


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("### Task:\nGenerate a concise, 3-5 word title with an emoji", True),
        ("Provide a concise, 5-word-or-less title for the conversation, using title case", True),
        ("Please write a title for this conversation", True),
        ("What is the title of your favourite book?", False),
    ],
)
def test_background_tasks_are_recognised(text: str, task: bool) -> None:
    assert rc.is_task(dialogue(("user", text))) is task
    # The same text inside a real conversation is dialogue, not a task.
    assert rc.is_task(dialogue(("assistant", "Hi"), ("user", text))) is False


def test_score_prefers_the_chat_matching_the_latest_messages() -> None:
    d = dialogue(*HISTORY, ("user", "Third"))
    other = mirror(("char", [GREETING]), ("user", ["Hi"]), ("char", ["Hi there"]))
    assert rc.score(d, CHAT) is not None
    assert rc.score(d, other) is not None
    assert rc.score(d, CHAT) > rc.score(d, other)  # type: ignore[operator]
    # A greeting alone is no evidence of the same conversation.
    assert rc.score(dialogue(("assistant", GREETING), ("user", "New")), CHAT) is None


def test_alignment_survives_long_histories_in_one_walk() -> None:
    turns: list[tuple[str, list[str]]] = [("char", [GREETING])]
    messages: list[tuple[str, str]] = [("assistant", GREETING)]
    for i in range(300):
        turns += [("user", [f"u{i}"]), ("char", [f"a{i}"])]
        messages += [("user", f"u{i}"), ("assistant", f"a{i}")]
    big = mirror(*turns)
    got = rc.plan(dialogue(*messages[-120:], ("user", "next")), big)
    assert got == rc.Plan(("new_turn",), rc.Generate("next"))
