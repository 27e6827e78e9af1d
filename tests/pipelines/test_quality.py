"""Structural measurements of recommendation lists."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ok_ml_assets.pipeline_types.recommendation_als import quality


def test_non_finite_scores_are_counted_with_their_users():
    recs = pd.DataFrame({"user_id": [1, 2, 3], "scores": [[0.9, 0.5], [0.3, np.nan], [np.inf]]})
    measured = quality.non_finite_scores(recs)
    assert (measured.failing, measured.total, measured.examples) == (2, 5, [2, 3])
    assert quality.non_finite_scores(recs.iloc[:1]).passed
