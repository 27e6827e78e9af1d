"""Measurements behind the blocking checks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ok_ml_assets.pipelines import quality

RECS = pd.DataFrame({
    "user_id": [1, 2, 3],
    "source_ids": [[10, 11, 12], [10, 10], [13]],
    "scores": [[0.9, 0.5, 0.1], [0.3, np.nan], [np.inf]],
})


def test_short_lists():
    assert quality.short_lists(RECS, 2).examples == [3]


def test_subscribed_sources_are_found():
    measured = quality.subscribed_recommended(RECS, pd.DataFrame({"user_id": [1, 3], "source_id": [12, 99]}))
    assert (measured.failing, measured.examples) == (1, [[1, 12]])


def test_duplicates_and_non_finite_scores():
    assert quality.duplicated_items(RECS).examples == [2]
    assert quality.non_finite_scores(RECS).failing == 2


def test_nulls_and_ranges():
    table = pd.DataFrame({"weight": [1.0, None, 500.0], "events": [1, 2, 3]})
    assert quality.null_cells(table).failing == 1
    measured = quality.out_of_range(table, {"weight": (0, 100), "missing": (0, 1)})
    assert measured.failing == 1 + 3 and not measured.passed
    assert quality.out_of_range(table, {"events": (1, 3)}).passed
