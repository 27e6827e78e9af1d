"""Online metrics per A/B arm."""

from __future__ import annotations

import pandas as pd
import pytest

from ok_ml_assets.pipeline_types.recommendation_als.online import engaged_pairs, online_metrics


def test_metrics_per_arm_over_users_who_engaged_later():
    lists = pd.DataFrame({
        "user_id": [1, 2, 3, 4],
        "arm": ["rollout", "rollout", "control", "control"],
        "source_ids": [[10, 11], [12, 13], [10, 11], [14, 15]],
    })
    later = pd.DataFrame({
        "user_id": [1, 1, 1, 3, 3, 9],
        "source_id": [10, 99, 10, 77, 11, 10],
        "event": ["click", "like", "like", "comment", "view", "click"],
    })
    table = online_metrics(lists, engaged_pairs(later), k=2).set_index("arm")
    assert table.loc["rollout", "users"] == 1 and table.loc["control", "users"] == 1
    assert table.loc["rollout", "precision_at_2"] == pytest.approx(0.5)
    assert table.loc["rollout", "recall_at_2"] == pytest.approx(0.5)
    assert table.loc["rollout", "hit_rate"] == 1.0
    assert table.loc["control", "hit_rate"] == 0.0
