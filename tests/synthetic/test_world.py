"""The synthetic world is seedable and shaped like a social network."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ok_ml_assets.synthetic import PRESETS, generate_world


def test_same_seed_same_data_other_seed_other_data():
    a, b = generate_world("tiny", seed=1), generate_world("tiny", seed=1)
    day_a, day_b = next(a.days()), next(b.days())
    pd.testing.assert_frame_equal(day_a.interactions, day_b.interactions)
    assert not next(generate_world("tiny", seed=2).days()).interactions.equals(day_a.interactions)


def test_days_have_valid_rows_and_tags():
    world = generate_world("tiny", days=3)
    days = list(world.days())
    assert [d.tag for d in days] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    for day in days:
        frame = day.interactions
        assert set(frame["event"]) <= {"view", "click", "like", "comment"}
        assert (frame["ts"].dt.date == day.date).all()
        assert not frame.duplicated(["user_id", "source_id", "event", "ts"]).any()
        assert not day.subscriptions.duplicated(["user_id", "source_id"]).any()


def test_popularity_is_heavy_tailed_and_views_dominate():
    frame = pd.concat(d.interactions for d in generate_world("tiny", days=4).days())
    counts = frame["source_id"].value_counts()
    top_share = counts.iloc[: len(counts) // 10].sum() / counts.sum()
    assert top_share > 0.3
    shares = frame["event"].value_counts(normalize=True)
    assert shares["view"] > shares["click"] > shares["like"] > shares["comment"]


def test_new_sources_appear_over_time():
    world = generate_world("tiny")
    catalog = world.sources()
    assert (catalog["created_date"] > world.start).mean() > 0.05
    first_seen = pd.concat(d.interactions for d in world.days()).groupby("source_id")["ts"].min().dt.date
    late = catalog.set_index("source_id")["created_date"]
    assert (first_seen >= late.reindex(first_seen.index)).all()


def test_presets_have_the_documented_sizes():
    assert (PRESETS["default"].users, PRESETS["default"].sources, PRESETS["default"].days) == (50_000, 5_000, 21)
    assert (PRESETS["large"].users, PRESETS["large"].sources) == (1_000_000, 100_000)
    assert np.isclose(PRESETS["tiny"].users, 1_500)
