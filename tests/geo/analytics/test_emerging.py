"""Emerging hot spot labels on constructed z-score series (rules in geo/emerging.py)."""

from datetime import UTC, datetime

import numpy as np
import pytest

from geo.analytics.emerging import classify, mann_kendall, slice_count

H, C, Q = 3.0, -3.0, 0.0  # a hot slice, a cold slice, a quiet slice


@pytest.mark.parametrize(
    ("series", "label"),
    [
        ([Q] * 9 + [H], "new_hot"),
        ([Q] * 7 + [H, H, H], "consecutive_hot"),
        (list(np.linspace(2.0, 6.0, 10)), "intensifying_hot"),
        ([H, 2.5, H, 2.5, H, 2.5, H, 2.5, H, 2.5], "persistent_hot"),
        (list(np.linspace(6.0, 2.0, 10)), "diminishing_hot"),
        ([H, Q, H, Q, Q, H, Q, Q, Q, H], "sporadic_hot"),
        ([H, C, Q, H, Q, Q, C, Q, Q, H], "oscillating_hot"),
        ([H] * 9 + [Q], "historical_hot"),
        ([Q] * 9 + [C], "new_cold"),
        (list(np.linspace(-2.0, -6.0, 10)), "intensifying_cold"),
        ([C] * 9 + [Q], "historical_cold"),
        ([Q] * 10, "no_pattern"),
        ([Q, H, Q, Q, Q, Q, Q, Q, Q, Q], "no_pattern"),
    ],
)
def test_patterns(series, label):
    assert classify(np.array(series))[0] == label


def test_mann_kendall_direction_and_ties():
    assert mann_kendall(np.arange(10.0))[2] == 1
    assert mann_kendall(-np.arange(10.0))[2] == -1
    assert mann_kendall(np.ones(10))[2] == 0
    assert mann_kendall(np.array([1.0, np.nan, np.nan]))[2] == 0


def test_slice_counts():
    a = datetime(2024, 8, 22, tzinfo=UTC)
    assert slice_count(a, datetime(2024, 9, 5, tzinfo=UTC), "week") == 2
    assert slice_count(a, datetime(2024, 9, 5, 0, 0, 1, tzinfo=UTC), "week") == 3
    assert slice_count(a, datetime(2024, 8, 25, tzinfo=UTC), "day") == 3
    assert (
        slice_count(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC), "month")
        == 3
    )
