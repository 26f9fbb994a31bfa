"""vprim.assets.terms: the compact form of a name and the vocabulary TSV reader."""

from __future__ import annotations

import pytest

from vprim.assets.terms import compact, read_tsv


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Traffic_Light", "trafficlight"),
        ("traffic-light", "trafficlight"),
        ("TrafficLight", "trafficlight"),
        ("ID_Card_1", "idcard1"),
        ("crème brûlée", "crèmebrûlée"),  # letters of any script stay
        ("N/A", "na"),
        ("", ""),
    ],
)
def test_compact(text, want):
    assert compact(text) == want


def test_read_tsv_skips_comments_and_blank_lines_and_keeps_cells(tmp_path):
    path = tmp_path / "v.tsv"
    path.write_text(
        "# a comment\ncanonical\tsynonyms \n\ncar\tauto|automobile\n  \ndog \t\n# end\n",
        encoding="utf-8",
    )
    assert read_tsv(path, ["canonical", "synonyms"]) == [
        ["car", "auto|automobile"],
        ["dog ", ""],  # cells as written
    ]


def test_read_tsv_names_the_file_on_a_wrong_header(tmp_path):
    path = tmp_path / "v.tsv"
    path.write_text("name\tsynonyms\ncar\tauto\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"v\.tsv: expected the header"):
        read_tsv(path, ["canonical", "synonyms"])
    path.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected the header"):
        read_tsv(path, ["canonical", "synonyms"])
