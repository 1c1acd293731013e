"""Counters for user-visible numbers and the dialect-neutral INSERT … ON CONFLICT DO NOTHING."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from bot.store.models import Counter, SlackEvent, Story
from bot.store.queries import constant, insert_ignore, next_number
from bot.store.types import utcnow
from tests.factories import tx


async def test_next_number_starts_at_one_and_has_no_gaps(db):
    async with tx(db) as s:
        numbers = [await next_number(s, "S") for _ in range(5)]
    assert numbers == [1, 2, 3, 4, 5]


async def test_each_name_has_its_own_counter(db):
    async with tx(db) as s:
        got = [(name, await next_number(s, name)) for name in ("S", "E", "S", "R", "E", "S", "D")]
    assert got == [("S", 1), ("E", 1), ("S", 2), ("R", 1), ("E", 2), ("S", 3), ("D", 1)]


async def test_numbers_continue_across_transactions(db):
    async with tx(db) as s:
        assert await next_number(s, "S") == 1
    async with tx(db) as s:
        assert await next_number(s, "S") == 2
    async with tx(db) as s:
        assert await next_number(s, "S") == 3
        counter = await s.get(Counter, "S")
    assert counter is not None and counter.value == 3


async def test_a_rolled_back_number_is_handed_out_again_so_there_is_no_gap(db):
    async with tx(db) as s:
        assert await next_number(s, "S") == 1
    with pytest.raises(RuntimeError):
        async with tx(db) as s:
            assert await next_number(s, "S") == 2
            raise RuntimeError("refused")
    async with tx(db) as s:
        assert await next_number(s, "S") == 2


async def test_committed_numbers_are_never_reused(db):
    async with tx(db) as s:
        taken = {await next_number(s, "S") for _ in range(3)}
    async with tx(db) as s:
        later = {await next_number(s, "S") for _ in range(3)}
    assert taken.isdisjoint(later)
    assert max(later) == 6


async def test_insert_ignore_true_then_false_on_duplicate(db):
    async with tx(db) as s:
        first = await insert_ignore(s, SlackEvent, {"event_id": "Ev1", "received_at": utcnow()})
        again = await insert_ignore(s, SlackEvent, {"event_id": "Ev1", "received_at": utcnow()})
        other = await insert_ignore(s, SlackEvent, {"event_id": "Ev2", "received_at": utcnow()})
    assert (first, again, other) == (True, False, True)


async def test_insert_ignore_keeps_the_first_row(db):
    async with tx(db) as s:
        assert await insert_ignore(s, Counter, {"name": "X", "value": 7})
    async with tx(db) as s:
        assert not await insert_ignore(s, Counter, {"name": "X", "value": 99})
    async with tx(db) as s:
        row = await s.get(Counter, "X")
    assert row is not None and row.value == 7


@pytest.mark.parametrize("value", ["open", "it's; DROP TABLE story; --", "", "naïve, ok", 0, 42, -7])
async def test_a_constant_written_into_the_sql_comes_back_as_itself(db, value):
    """Constants are written into the statement's text (no parameter): a quote inside one stays text."""
    async with tx(db) as s:
        assert (await s.exec(select(constant(value)))).one() == value  # type: ignore[call-overload]
        assert (await s.exec(select(func.count()).select_from(Story))).one() == 0  # the table is still there


@pytest.mark.parametrize("value", [True, 1.5, None, b"x"])
def test_a_constant_is_text_or_a_whole_number(value):
    with pytest.raises(TypeError, match="a constant is text or a whole number"):
        constant(value)  # type: ignore[arg-type]
