"""The user's guide and docs/ stay true: every reason code documented, every link resolves."""

from __future__ import annotations

import re

import pytest

from vprim.assets.contracts import reasons as R
from vprim.assets.settings import PROJECT_ROOT

DOCS = sorted((PROJECT_ROOT / "docs").glob("*.md"))
README = PROJECT_ROOT / "README.md"


def _documented_codes() -> set[str]:
    """The codes in the first column of docs/REASONS.md's tables."""
    return set(_documented_meanings())


def _documented_meanings() -> dict[str, list[str]]:
    """code -> the last column of each docs/REASONS.md table row that names it."""
    text = (PROJECT_ROOT / "docs" / "REASONS.md").read_text()
    rows: dict[str, list[str]] = {}
    for code, rest in re.findall(r"^\| `([a-z0-9_]+)` \|(.*)\|$", text, flags=re.M):
        rows.setdefault(code, []).append(rest.split(" | ")[-1].strip())
    return rows


@pytest.mark.parametrize(
    "codes",
    [
        R.PARSE_REASONS,
        R.IMAGE_REASONS,
        R.LABEL_REASONS,
        R.BOX_REASONS,
        R.SOURCE_REASONS,
        R.BALANCE_REASONS,
        R.KEEP_REASONS,
    ],
    ids=["parse", "image", "label", "box", "source", "balance", "label_keep"],
)
def test_every_reason_code_is_documented(codes):
    missing = set(codes) - _documented_codes()
    assert not missing, f"add to docs/REASONS.md: {sorted(missing)}"


@pytest.mark.parametrize(
    "reason", [*R.Reason, *R.KeepReason, *R.BalanceReason], ids=lambda r: r.value
)
def test_reasons_page_gives_each_code_its_contract_meaning(reason):
    """docs/REASONS.md says what ``vprim.assets.contracts.reasons`` says, word for word."""
    assert reason.meaning in _documented_meanings()[reason.value], (
        f"docs/REASONS.md: `{reason}` must read: {reason.meaning}"
    )


def test_ledger_codes_are_their_own_strings():
    """A code is written to Parquet and compared in SQL as plain text."""
    assert R.Reason.TINY_BOX == "tiny_box" and f"{R.Reason.TINY_BOX}" == "tiny_box"
    assert {r.stage for r in R.Reason} == set(R.STAGES)
    assert [r.value for r in R.of_stage("parse")][:2] == ["parse_empty_file", "parse_invalid_json"]


def test_readme_is_a_guide_not_a_log():
    lines = README.read_text().splitlines()
    assert len(lines) <= 260, len(lines)
    assert "](../shared" not in README.read_text()  # the repo is complete without it


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_relative_links_resolve(page):
    text = page.read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
