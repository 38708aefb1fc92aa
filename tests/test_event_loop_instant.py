"""The counting loop's list of the current instant's events (simulator.event_loop): the
events trigger_now puts there are processed in exactly the order SimPy's heap alone gives."""

from __future__ import annotations

import random

import pytest
import simpy
from simpy.events import URGENT, EventPriority

from simulator.event_loop import CountingEnvironment, trigger_now

_AFTER_NORMAL = EventPriority(2)


class _Boom(Exception):
    pass


def _program(env: simpy.Environment, seed: int, order: list[tuple[float, str]], boom_at: int | None = None) -> None:
    """Callbacks that, when processed, record themselves and trigger more: events for this
    instant through trigger_now, through SimPy's succeed(), urgent and after-normal ones,
    zero and positive timeouts, at random."""
    rnd = random.Random(seed)
    made = [0]

    def react(name: str):
        def callback(_event: simpy.Event) -> None:
            order.append((env.now, name))
            if made[0] < 400:
                make_children(name)
            if boom_at is not None and len(order) == boom_at:  # (after its work: the rest as ever)
                raise _Boom(name)
        return callback

    def make_children(name: str) -> None:
        for _ in range(rnd.randint(0, 3)):
            made[0] += 1
            child = f"{name}.{made[0]}"
            kind = rnd.random()
            if kind < 0.45:
                event = env.event()
                event.callbacks.append(react(child))
                trigger_now(env, event)
            elif kind < 0.6:
                env.event().succeed().callbacks.append(react(child))
            elif kind < 0.7:
                event = env.event()
                event.callbacks.append(react(child))
                event._ok, event._value = True, None
                env.schedule(event, URGENT)
            elif kind < 0.8:
                event = env.event()
                event.callbacks.append(react(child))
                event._ok, event._value = True, None
                env.schedule(event, _AFTER_NORMAL)
            elif kind < 0.9:
                env.timeout(0).callbacks.append(react(child))
            else:
                env.timeout(rnd.choice([1e-6, 2e-6, 0.5])).callbacks.append(react(child))

    for i in range(5):
        env.timeout(rnd.choice([0.0, 1e-6])).callbacks.append(react(f"root{i}"))


def _order(seed: int, heap_only: bool) -> tuple[list[tuple[float, str]], int]:
    env = CountingEnvironment()
    if heap_only:  # an instance step: run() falls back to SimPy's loop, and trigger_now to the heap
        env.step = env.step  # type: ignore[method-assign]
    order: list[tuple[float, str]] = []
    _program(env, seed, order)
    env.run()
    return order, env.events_processed


@pytest.mark.parametrize("seed", range(8))
def test_this_instants_list_gives_the_heaps_order_and_count(seed):
    fast, fast_count = _order(seed, heap_only=False)
    heap, heap_count = _order(seed, heap_only=True)
    assert len(fast) > 50  # (the program did make many events)
    assert fast == heap
    assert fast_count == heap_count


@pytest.mark.parametrize("seed", range(4))
def test_events_left_in_the_list_when_the_loop_stops_go_onto_the_heap_in_order(seed):
    heap, _ = _order(seed, heap_only=True)
    env = CountingEnvironment()
    order: list[tuple[float, str]] = []
    _program(env, seed, order, boom_at=len(heap) // 2)
    with pytest.raises(_Boom):
        env.run()
    assert not env.instant and not env.looping
    # What was waiting in the list is on the heap now: SimPy's own step goes on from there.
    while env._queue:
        env.step()
    assert order == heap


def test_trigger_now_outside_the_loop_is_schedule_at_normal_priority():
    env = simpy.Environment()
    event = env.event()
    trigger_now(env, event)
    assert event.triggered and event.ok and event.value is None
    assert env._queue == [(0, 1, 0, event)]
    counting = CountingEnvironment()
    later = counting.event()
    trigger_now(counting, later)  # (not looping: onto the heap as well)
    assert counting.instant == [] and len(counting._queue) == 1
    assert counting.peek() == 0
