"""`nesting_depth` cuts the strings out with one regex (`_cut_depth`, past the plain case of at most
`limit` brackets); it must count exactly what walking them does.

`_walked_depth` is the walk (`str.find` from quote to quote, backslash runs counted); the regex path
must agree with it on every text: escaped quotes, backslash runs, strings left open at the end (with or
without a trailing backslash), brackets inside and outside strings, and past the limit (where the
refusal's count comes from the walk).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.framing import MAX_DEPTH, _cut_depth, _walked_depth, nesting_depth

CAPTURES = Path(__file__).parent / "captures" / "device-responses"
FUZZ = settings(max_examples=1500, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(alphabet='"\\[]{}a,\n', max_size=400), st.sampled_from([0, 1, 3, 8, MAX_DEPTH]))
def test_regex_and_walk_count_the_same(text: str, limit: int) -> None:
    assert _cut_depth(text, limit) == _walked_depth(text, limit)


@FUZZ
@given(st.text(alphabet='"[]{}a,', max_size=400), st.sampled_from([0, 1, 3, 8, MAX_DEPTH]))
def test_without_backslashes_the_quote_split_counts_as_the_walk(text: str, limit: int) -> None:
    assert _cut_depth(text, limit) == _walked_depth(text, limit)


@FUZZ
@given(
    st.lists(
        st.sampled_from(["[", "]", "{", "}", '"', "\\", '\\"', "\\\\", '"[{"', '"a\\"]"', "x"]),
        max_size=200,
    ),
    st.sampled_from([0, 2, 5, MAX_DEPTH]),
)
def test_regex_and_walk_agree_on_token_soups(parts: list[str], limit: int) -> None:
    text = "".join(parts)
    assert _cut_depth(text, limit) == _walked_depth(text, limit)


@pytest.mark.parametrize("path", sorted(CAPTURES.rglob("*.json")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_captures_count_the_same(path: Path) -> None:
    text = path.read_text(errors="replace")
    for limit in (0, 4, MAX_DEPTH):
        assert _cut_depth(text, limit) == _walked_depth(text, limit)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 300_000])
def test_past_the_limit_the_count_is_the_walks(depth: int) -> None:
    text = '{"a":"[[[","b":' + "[" * depth + "]" * depth + "}"
    assert nesting_depth(text) == _walked_depth(text, MAX_DEPTH) > MAX_DEPTH
