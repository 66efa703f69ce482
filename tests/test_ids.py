"""Ids: those the client mints (RFC 4122 version-4 UUID strings, all distinct) and the
check of ids it is given."""

from __future__ import annotations

import uuid

import pytest

from caiclient._ids import new_id, new_ids


def test_ids_are_canonical_version_4_uuids_and_distinct() -> None:
    ids = [*new_ids(3), *new_ids(1), new_id(), *new_ids(64)]
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value  # Canonical lower-case 8-4-4-4-12 form.
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert len(set(ids)) == len(ids) == 69


def test_new_ids_gives_exactly_the_count_asked_for() -> None:
    assert [len(new_ids(n)) for n in (0, 1, 3, 10)] == [0, 1, 3, 10]


def test_validated_ids_are_remembered_in_a_bounded_set_and_bad_ids_never_are() -> None:
    from caiclient import _validate
    from caiclient.errors import ValidationError

    for i in range(_validate._VALID_IDS_KEPT + 100):
        assert _validate.check_id(f"chat-{i}", "chat_id") == f"chat-{i}"
    assert 0 < len(_validate._valid_ids) <= _validate._VALID_IDS_KEPT
    assert _validate.check_id("chat-1", "chat_id") == "chat-1"  # Valid before and after.
    for bad in ("a/b", "", "x y", ".."):
        for _ in range(2):  # Refused the second time too: a refusal is never remembered.
            with pytest.raises(ValidationError):
                _validate.check_id(bad, "chat_id")
        assert bad not in _validate._valid_ids
