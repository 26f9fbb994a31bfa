"""The user's guide and docs/ stay true: every reason code documented, every link resolves."""

from __future__ import annotations

import re

import pytest

from vprim.assets.contracts import reasons as R
from vprim.assets.quality import labels
from vprim.assets.settings import PROJECT_ROOT

DOCS = sorted((PROJECT_ROOT / "docs").glob("*.md"))
README = PROJECT_ROOT / "README.md"


def _documented_codes() -> set[str]:
    """The codes in the first column of docs/REASONS.md's tables."""
    text = (PROJECT_ROOT / "docs" / "REASONS.md").read_text()
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", text, flags=re.M))


@pytest.mark.parametrize(
    "codes",
    [
        R.PARSE_REASONS,
        R.LABEL_REASONS,
        R.BOX_REASONS,
        R.SOURCE_REASONS,
        R.BALANCE_REASONS,
        labels.KEEP_REASONS,
    ],
    ids=["parse", "label", "box", "source", "balance", "label_keep"],
)
def test_every_reason_code_is_documented(codes):
    missing = set(codes) - _documented_codes()
    assert not missing, f"add to docs/REASONS.md: {sorted(missing)}"


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
