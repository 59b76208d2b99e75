"""``-1`` draws a random seed on every face that takes one, and the drawn seed is what is recorded."""

from __future__ import annotations

import pytest

from scenewright.errors import InvalidInputError
from scenewright.executor.limits import DRAWN_SEEDS, resolve_seed, seed_from_text


def test_minus_one_draws_a_seed_and_others_are_kept_or_refused() -> None:
    drawn = {resolve_seed(-1) for _ in range(8)}
    assert all(0 <= seed < DRAWN_SEEDS for seed in drawn) and len(drawn) > 1
    assert 0 <= resolve_seed("-1") < DRAWN_SEEDS
    assert resolve_seed(7) == 7 and resolve_seed("7") == 7
    for bad in (-2, 2**63, 1.5, True, "x", -1.0):
        with pytest.raises(InvalidInputError, match=r"^seed: .*or -1 for a random one"):
            resolve_seed(bad)


@pytest.mark.parametrize("text", ["banana", "1.5", "", " -3", "0x10", "٣"])
def test_a_typed_seed_that_is_not_a_number_is_one_line(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        seed_from_text(text)
    said = str(caught.value)
    assert said.startswith("seed: ") and "/seed -1" in said and "\n" not in said
    assert "invalid literal" not in said


def test_seed_from_text_takes_digits_and_minus_one() -> None:
    assert seed_from_text(" 12 ") == 12
    assert 0 <= seed_from_text("-1") < DRAWN_SEEDS


def test_the_agent_resolves_minus_one_where_it_takes_a_seed(tmp_path: object) -> None:
    from scenewright import Agent

    agent = Agent(seed=-1, out_dir=str(tmp_path))
    assert agent.seed is not None and 0 <= agent.seed < DRAWN_SEEDS
    again = agent.set_seed(-1)
    assert agent.seed == again and 0 <= again < DRAWN_SEEDS
