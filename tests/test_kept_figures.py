"""The leaders' pages keep computed figures for the app's keep time, per key, and no longer."""

from __future__ import annotations

import time

from dashboard.analytics_view import KeptFigures


def test_figures_are_computed_once_per_key_within_the_keep_time():
    calls = []

    def compute(value):
        return lambda: calls.append(value) or value

    kept = KeptFigures(seconds=0.2)
    assert kept.get(("a",), compute(1)) == 1
    assert kept.get(("a",), compute(2)) == 1  # kept
    assert kept.get(("b",), compute(3)) == 3  # another key
    time.sleep(0.25)
    assert kept.get(("a",), compute(4)) == 4  # expired: computed again
    assert calls == [1, 3, 4]


def test_a_keep_time_of_zero_computes_every_time():
    kept = KeptFigures(seconds=0)
    assert [kept.get(("a",), lambda n=n: n) for n in range(3)] == [0, 1, 2]
