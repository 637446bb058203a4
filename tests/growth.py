"""How a function's time grows with its input: about 10x from 10 KB to 100 KB when linear,
about 100x when quadratic. A ratio, never a wall-clock budget, so a slow machine passes and a
quadratic scan fails wherever it runs."""

from __future__ import annotations

import time
from collections.abc import Callable

SMALL, LARGE = 10_000, 100_000
# Linear growth is 10x, quadratic 100x: the margin absorbs a machine's noise.
MAX_GROWTH = 30


def seconds_a_call(function: Callable, argument) -> float:
    """Calls repeated until they add up to a few milliseconds, so timer noise stays small.
    Counted in the thread's CPU time: on a busy machine the wall clock also counts the turns
    the thread waited for a core, which made linear scans look 30 times slower at 10x."""
    loops = 1
    while True:
        started = time.thread_time()
        for _ in range(loops):
            function(argument)
        elapsed = time.thread_time() - started
        if elapsed >= 0.005:
            return elapsed / loops
        loops *= 4


def growth(function: Callable, small, large) -> float:
    """How much longer ``function(large)`` takes than ``function(small)``. A high figure is
    measured again in interleaved turns: other work on the machine only ever adds time, so the
    least of each is the function's own cost."""
    ratio = seconds_a_call(function, large) / seconds_a_call(function, small)
    if ratio < MAX_GROWTH:
        return ratio
    turns = [(seconds_a_call(function, large), seconds_a_call(function, small)) for _ in range(5)]
    return min(large for large, _ in turns) / min(small for _, small in turns)


def repeated(unit, size: int):
    """``unit`` repeated to exactly ``size`` characters (or bytes)."""
    return (unit * (size // len(unit) + 1))[:size]
