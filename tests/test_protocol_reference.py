"""docs/protocol.md is the protocol reference: every `§` cited in the code resolves there.

A section resolves when docs/protocol.md has a heading with that number (``### 8.5 …``,
``## 8. …``) or a bold item label opening a line (``**2.4.7** …``). Pure text checks, no I/O beyond
reading the repository's files.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "protocol.md"

_HEADING = re.compile(r"^#{1,6}[ \t]+(\d+(?:\.\d+)*)\.?(?=[ \t])", re.MULTILINE)
# An item label opens its line (or list item): "**2.4.7** …", "- **13.1** …".
_LABEL = re.compile(r"^(?:[-*] )?\*\*(\d+(?:\.\d+)+)\*\*", re.MULTILINE)
# "§8.5", "§ 8.5", and ranges "§2.4.3–4", "§8.2–8.3", "§6.1–§6.4".
_CITATION = re.compile(r"§ ?(\d+(?:\.\d+)*)(?: ?[–-] ?§?(\d+(?:\.\d+)*))?")
# Section signs of other documents (e.g. "RFC 6455 §7.4") are not ours.
_FOREIGN = re.compile(r"RFC ?\d+[ ,]*$")


def defined_sections(text: str) -> set[str]:
    """The section numbers a reference defines: headings and bold item labels."""
    return set(_HEADING.findall(text)) | set(_LABEL.findall(text))


def _expand(first: str, last: str) -> list[str]:
    """The sections of a range: ``2.4.3``–``4`` or ``4.1``–``4.4`` (same parent)."""
    head = first.split(".")
    tail = last.split(".")
    if len(tail) == 1 or (len(tail) == len(head) and tail[:-1] == head[:-1]):
        start, stop = int(head[-1]), int(tail[-1])
        if start <= stop:
            return [".".join([*head[:-1], str(n)]) for n in range(start, stop + 1)]
    return [first, last]


def cited_sections(text: str) -> set[str]:
    """Every section number a text cites with ``§``, ranges expanded."""
    found: set[str] = set()
    for match in _CITATION.finditer(text):
        if _FOREIGN.search(text[max(0, match.start() - 20) : match.start()]):
            continue
        first, last = match.group(1), match.group(2)
        found.update(_expand(first, last) if last else [first])
    return found


def _citing_files() -> list[Path]:
    """src/, the docs other than the reference, README.md, and the tests (this one excepted)."""
    files = sorted((ROOT / "src").rglob("*.py"))
    files += sorted(p for p in (ROOT / "docs").glob("*.md") if p != REFERENCE)
    files.append(ROOT / "README.md")
    files += sorted(p for p in (ROOT / "tests").rglob("*.py") if p != Path(__file__).resolve())
    return files


def _missing(files: list[Path], defined: set[str]) -> list[str]:
    missing = []
    for path in files:
        for section in sorted(cited_sections(path.read_text(encoding="utf-8"))):
            if section not in defined:
                missing.append(f"{path.relative_to(ROOT)}: §{section}")
    return missing


# --- the extraction itself, on literal text -------------------------------------------------


def test_defined_sections_reads_headings_and_item_labels() -> None:
    text = (
        "## 8. Chat V2 WebSocket\n"
        "### 8.5 Commands\n"
        "#### `create_chat` [H]\n"
        "**2.4.7** **Firebase errors** [M]: …\n"
        "a **bold** word and **2024** are no labels; neither is 9.9 in prose,\n"
        "nor a label in running text such as **3.3.1** here.\n"
    )
    assert defined_sections(text) == {"8", "8.5", "2.4.7"}


def test_cited_sections_expands_ranges_and_skips_other_documents() -> None:
    text = (
        "(PROTOCOL.md §8.2–8.3) and §2.4.3–4, §4.1–4.4, §6.1–§6.2; see § 15.10.\n"
        "Ends a sentence at §9. Not ours: RFC 6455 §7.4.1."
    )
    assert cited_sections(text) == {
        "8.2", "8.3", "2.4.3", "2.4.4", "4.1", "4.2", "4.3", "4.4", "6.1", "6.2", "15.10", "9",
    }  # fmt: skip


# --- the repository -----------------------------------------------------------------------


def test_the_reference_has_every_top_level_section_in_order() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    top = re.findall(r"^## (\d+)\. ", text, re.MULTILINE)
    assert top == [str(n) for n in range(17)]


def test_every_cited_section_exists_in_the_reference() -> None:
    files = _citing_files()
    cited = set().union(*(cited_sections(p.read_text(encoding="utf-8")) for p in files))
    assert len(cited) > 20, "found almost no § citations: is the pattern broken?"
    defined = defined_sections(REFERENCE.read_text(encoding="utf-8"))
    assert _missing(files, defined) == []


def test_the_reference_resolves_its_own_cross_references() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    assert sorted(cited_sections(text) - defined_sections(text)) == []


def test_no_source_file_points_at_the_shared_protocol_file() -> None:
    mentions = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "src").rglob("*.py"))
        if "PROTOCOL.md" in path.read_text(encoding="utf-8")
    ]
    assert mentions == []


# A document a source file points to by name: "docs/x.md", or an upper-case "NAME.md".
_DOCUMENT = re.compile(r"(?<![\w/.-])((?:docs/)?[\w-]+\.md)\b")


def test_every_document_the_code_names_is_in_the_repository() -> None:
    # Someone with only the repository (or a wheel and the docs) must be able to follow
    # every pointer; "/export chat.md" in a user-facing example is a file name, not a pointer.
    missing = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in _DOCUMENT.findall(line):
                if name == "chat.md":
                    continue
                if not ((ROOT / name).is_file() or (ROOT / "docs" / name).is_file()):
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    assert missing == []
