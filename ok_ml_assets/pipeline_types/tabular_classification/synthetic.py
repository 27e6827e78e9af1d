"""Synthetic labelled worlds for classification experiments, and the faults their monitoring is tested against.

`bot_accounts`: a daily export of account behaviour with about 2% bots. Each bot feature overlaps the humans'
range, so no single threshold separates them, but their combination (many friend requests in short sessions,
links in young accounts) does. `clickbait_posts`: posts with text-derived features, labelled normal, borderline
or clickbait.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ok_ml_assets.pipeline_types.tabular_classification.config import TabularClassificationConfig

START = dt.date(2026, 11, 1)
# Rows per daily version and number of days, per preset.
SIZES = {"tiny": (1_500, 14), "default": (20_000, 21), "large": (200_000, 21)}
COUNTRIES = ("br", "de", "in", "ru", "us", "vn")
TOPICS = ("news", "sport", "celebrity", "tech", "food")
BOT_SHARE = 0.02


def bot_accounts_day(rng: np.random.Generator, rows: int, day: int) -> pd.DataFrame:
    """One day's account snapshots: behaviour features and the moderators' label."""
    bot = rng.random(rows) < BOT_SHARE
    account_id = 1_000_000 + day * rows + np.arange(rows)
    age = np.where(bot, rng.gamma(2.0, 60.0, rows), rng.gamma(2.0, 300.0, rows))
    requests = rng.gamma(np.where(bot, 3.0, 1.5), np.where(bot, 4.0, 3.0), rows)
    session = rng.lognormal(np.where(bot, 1.3, 2.0), 0.6, rows)
    # Bots send their requests in short sessions; humans who send many stay long: only the pair separates them.
    requests = np.where(bot & (rng.random(rows) < 0.7), requests + 6 / np.maximum(session, 0.5), requests)
    links = np.clip(rng.beta(np.where(bot & (age < 120), 4.0, 1.2), 6.0, rows), 0, 1)
    posts = rng.gamma(2.0, np.where(bot, 2.2, 1.6), rows)
    sessions = rng.poisson(np.where(bot, 9, 5), rows)
    country = np.where(bot & (rng.random(rows) < 0.4), "vn", rng.choice(COUNTRIES, rows))
    frame = pd.DataFrame({
        "account_id": account_id.astype(np.int64),
        "posts_per_day": posts,
        "friend_requests_per_day": requests,
        "session_minutes_mean": session,
        "sessions_per_day": sessions.astype(np.int64),
        "link_share": links,
        "account_age_days": age.astype(np.int64) + 1,
        "country": country,
        "label": np.where(bot, "bot", "human"),
    })
    # Session telemetry is missing for some accounts (old clients): the preparation's missing policies matter.
    frame.loc[rng.random(rows) < 0.03, "session_minutes_mean"] = np.nan
    return frame


def clickbait_posts_day(rng: np.random.Generator, rows: int, day: int) -> pd.DataFrame:
    """One day's posts: text-derived numeric features, the topic and the editors' label."""
    kind = rng.choice(3, rows, p=[0.8, 0.12, 0.08])  # normal, borderline, clickbait
    frame = pd.DataFrame({
        "post_id": (5_000_000 + day * rows + np.arange(rows)).astype(np.int64),
        "title_length": rng.normal(np.choose(kind, [60, 52, 45]), 12, rows).clip(5, 200),
        "exclamations": rng.poisson(np.choose(kind, [0.2, 0.8, 1.8]), rows).astype(np.int64),
        "caps_share": rng.beta(np.choose(kind, [1.0, 1.8, 3.0]), 12, rows),
        "has_number": (rng.random(rows) < np.choose(kind, [0.2, 0.35, 0.6])).astype(np.int64),
        "question_title": (rng.random(rows) < np.choose(kind, [0.1, 0.3, 0.45])).astype(np.int64),
        "author_followers_log": rng.normal(np.choose(kind, [7.0, 6.2, 5.5]), 1.5, rows),
        "topic": np.where(kind == 2, rng.choice(TOPICS, rows, p=[0.2, 0.1, 0.5, 0.1, 0.1]), rng.choice(TOPICS, rows)),
        "label": np.asarray(["normal", "borderline", "clickbait"])[kind],
    })
    return frame


GENERATORS = {"bot_accounts": bot_accounts_day, "clickbait_posts": clickbait_posts_day}


def synthetic_days(generator: str, preset: str, seed: int) -> Iterator[tuple[str, pd.DataFrame]]:
    """(tag, table) of each day of a generator's world."""
    if preset not in SIZES:
        raise ValueError(f"unknown preset {preset!r}; presets are {sorted(SIZES)}")
    rows, days = SIZES[preset]
    for day in range(days):
        rng = np.random.default_rng([seed, day])
        yield (START + dt.timedelta(days=day)).isoformat(), GENERATORS[generator](rng, rows, day)


def synthetic_versions(config: TabularClassificationConfig, preset: str, seed: int) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """The configured generator's days under the experiment's dataset name (nothing without a `synthetic` section)."""
    if config.synthetic is None:
        return iter(())
    world_seed = config.synthetic.seed if config.synthetic.seed is not None else seed
    name = config.datasets.examples.dataset_name
    return ((name, tag, frame) for tag, frame in synthetic_days(config.synthetic.generator, preset, world_seed))


def flip_labels(frame: pd.DataFrame, share: float = 0.3, seed: int = 0, label: str = "label") -> pd.DataFrame:
    """Fault: a share of labels swapped to another class, as after a broken moderation export."""
    rng = np.random.default_rng(seed)
    values = frame[label].unique()
    flipped = frame[label].to_numpy(copy=True)
    chosen = rng.random(len(frame)) < share
    flipped[chosen] = rng.choice(values, int(chosen.sum()))
    return frame.assign(**{label: flipped})


def change_unit(frame: pd.DataFrame, column: str, factor: float = 60.0) -> pd.DataFrame:
    """Fault: a feature exported in another unit (minutes became seconds)."""
    return frame.assign(**{column: frame[column] * factor})


def drop_category(frame: pd.DataFrame, column: str, value: str, replacement: str | None = None) -> pd.DataFrame:
    """Fault: a category disappears from a column (its rows now carry `replacement`, missing by default)."""
    values = frame[column].astype(object).where(frame[column] != value, replacement)
    return frame.assign(**{column: values})
