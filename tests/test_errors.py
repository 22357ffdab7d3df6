"""Error texts as users and scripts see them."""

from __future__ import annotations

from mlops.errors import brief


def test_long_error_texts_are_cut_where_they_are_shown() -> None:
    dump = "IntegrityError: " + "x" * 360_000  # a driver's SQL parameters
    shown = brief(dump)
    assert len(shown) < 2100 and shown.endswith("(358016 more characters)")
    assert brief("short") == "short"
