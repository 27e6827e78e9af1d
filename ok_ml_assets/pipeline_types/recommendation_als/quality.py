"""Structural measurements of recommendation lists that no monitoring rule expresses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Measurement:
    """How many values break a property, out of how many, with a few offending examples."""

    failing: int
    total: int
    examples: list

    @property
    def passed(self) -> bool:
        """True when no value breaks the property."""
        return self.failing == 0


def non_finite_scores(recommendations: pd.DataFrame) -> Measurement:
    """Scores that are NaN or infinite, with the users they belong to."""
    lengths = recommendations["scores"].map(len).to_numpy()
    users = np.repeat(recommendations["user_id"].to_numpy(), lengths)
    scores = np.concatenate([np.asarray(s, dtype=np.float64) for s in recommendations["scores"]]) if len(users) else np.array([])
    bad = ~np.isfinite(scores)
    return Measurement(int(bad.sum()), len(scores), users[bad][:MAX_EXAMPLES].tolist())
