"""A social network in numbers: users with topic interests, power-law sources, daily events and follows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

EVENT_TYPES = ("view", "click", "like", "comment")
USER_ID_BASE = 10_000_000
SOURCE_ID_BASE = 500_000_000
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Preset:
    """Size and shape of a synthetic world."""

    users: int
    sources: int
    days: int
    topics: int = 24
    events_per_user_day: float = 3.0
    new_source_share: float = 0.15
    initial_follows_per_user: float = 4.0
    follow_after_engagement: float = 0.12
    exploration: float = 0.1


PRESETS: dict[str, Preset] = {
    "tiny": Preset(users=1_500, sources=300, days=14, topics=12, events_per_user_day=5.0),
    "default": Preset(users=50_000, sources=5_000, days=21),
    "large": Preset(users=1_000_000, sources=100_000, days=21, topics=64),
}


@dataclass(frozen=True)
class Population:
    """Users and sources drawn once per world; days are drawn from them."""

    user_ids: np.ndarray
    user_topics: np.ndarray
    user_topic_cdf: np.ndarray
    user_activity: np.ndarray
    source_ids: np.ndarray
    source_topics: np.ndarray
    source_popularity: np.ndarray
    source_created_day: np.ndarray
    source_kind: np.ndarray


@dataclass(frozen=True)
class DailyData:
    """One day's exports: the interactions and the new subscriptions of that day."""

    date: dt.date
    interactions: pd.DataFrame
    subscriptions: pd.DataFrame

    @property
    def tag(self) -> str:
        """The registry tag of this day's versions."""
        return self.date.isoformat()


@dataclass(frozen=True)
class SyntheticWorld:
    """A seeded world that yields its days one at a time, so large presets fit in memory."""

    preset: Preset
    seed: int
    start: dt.date

    def population(self) -> Population:
        """Users and sources of this world."""
        return draw_population(self.preset, np.random.default_rng([self.seed, 0]))

    def sources(self) -> pd.DataFrame:
        """The source catalog: id, kind, topic and the day it appeared."""
        pop = self.population()
        return pd.DataFrame(
            {
                "source_id": pop.source_ids,
                "kind": pop.source_kind,
                "topic": pop.source_topics,
                "created_date": [self.start + dt.timedelta(days=int(d)) for d in pop.source_created_day],
            }
        )

    def days(self) -> Iterator[DailyData]:
        """Every day of the world, in order."""
        pop = self.population()
        for day in range(self.preset.days):
            rng = np.random.default_rng([self.seed, 1, day])
            date = self.start + dt.timedelta(days=day)
            interactions = draw_interactions(self.preset, pop, day, date, rng)
            subscriptions = draw_subscriptions(self.preset, pop, day, date, interactions, rng)
            yield DailyData(date=date, interactions=interactions, subscriptions=subscriptions)


def generate_world(preset: str | Preset = "tiny", seed: int = 7, start: dt.date | None = None, **overrides) -> SyntheticWorld:
    """A world from a named preset (tiny, default, large) or an explicit one, optionally resized."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        preset = PRESETS[preset]
    if overrides:
        preset = replace(preset, **overrides)
    return SyntheticWorld(preset=preset, seed=seed, start=start or dt.date(2026, 11, 1))


def draw_population(preset: Preset, rng: np.random.Generator) -> Population:
    """Users with three weighted favourite topics and sources with power-law popularity."""
    n_users, n_sources, n_topics = preset.users, preset.sources, preset.topics
    topic_weight = rng.pareto(1.5, n_topics) + 1.0
    user_topics = np.stack(
        [rng.choice(n_topics, size=n_users, p=topic_weight / topic_weight.sum()) for _ in range(3)], axis=1
    )
    shares = rng.dirichlet([4.0, 2.0, 1.0], size=n_users)
    source_topics = rng.integers(0, n_topics, size=n_sources)
    popularity = (rng.pareto(1.1, n_sources) + 1.0) ** 1.3
    is_new = rng.random(n_sources) < preset.new_source_share
    created = np.where(is_new, rng.integers(1, max(preset.days, 2), size=n_sources), 0)
    order = np.lexsort((-popularity, source_topics))
    return Population(
        user_ids=USER_ID_BASE + np.arange(n_users, dtype=np.int64),
        user_topics=user_topics,
        user_topic_cdf=np.cumsum(shares, axis=1),
        user_activity=rng.lognormal(mean=0.0, sigma=0.8, size=n_users) * preset.events_per_user_day / np.exp(0.32),
        source_ids=SOURCE_ID_BASE + order.astype(np.int64),
        source_topics=source_topics[order],
        source_popularity=popularity[order],
        source_created_day=created[order],
        source_kind=np.where(rng.random(n_sources) < 0.6, "group", "author")[order],
    )


def _topic_cdf(pop: Population, day: int, n_topics: int) -> np.ndarray:
    """Per-topic popularity CDF shifted by topic index, over sources that exist on `day`."""
    alive = np.where(pop.source_created_day <= day, pop.source_popularity, 0.0)
    totals = np.bincount(pop.source_topics, weights=alive, minlength=n_topics)
    within = np.cumsum(alive) - np.concatenate([[0.0], np.cumsum(totals)[:-1]])[pop.source_topics]
    return pop.source_topics + within / np.maximum(totals[pop.source_topics], 1e-12)


def draw_interactions(preset: Preset, pop: Population, day: int, date: dt.date, rng: np.random.Generator) -> pd.DataFrame:
    """A day of events: users pick a favourite topic, then a source by popularity within it."""
    counts = rng.poisson(pop.user_activity)
    users = np.repeat(np.arange(preset.users), counts)
    n = users.size
    slot = (rng.random(n)[:, None] > pop.user_topic_cdf[users]).sum(axis=1).clip(0, 2)
    topics = pop.user_topics[users, slot]
    explore = rng.random(n) < preset.exploration
    topics[explore] = rng.integers(0, preset.topics, size=int(explore.sum()))
    cdf = _topic_cdf(pop, day, preset.topics)
    sources = np.searchsorted(cdf, topics + rng.random(n) * 0.999999, side="left").clip(0, preset.sources - 1)
    event = _event_codes(rng.random(n), explore)
    micros = rng.integers(0, SECONDS_PER_DAY * 1_000_000, n)
    order = _stable_order(micros)
    return pd.DataFrame(
        {
            "user_id": pop.user_ids[users[order]],
            "source_id": pop.source_ids[sources[order]],
            "event": EVENT_NAMES[event[order]],
            "ts": _utc_stamps(date, micros[order], 1_000),
        }
    )


# Cumulative event probabilities of an engaged pick and of an exploring one (view, click, like, comment).
EVENT_CDF = np.cumsum([[0.55, 0.25, 0.14, 0.06], [0.85, 0.1, 0.04, 0.01]], axis=1)
EVENT_NAMES = np.array(EVENT_TYPES, dtype=object)


def _event_codes(draws: np.ndarray, explore: np.ndarray) -> np.ndarray:
    """Index into EVENT_TYPES of each draw: how many of its row's cumulative probabilities it exceeds."""
    codes = np.empty(draws.size, dtype=np.intp)
    for row, picked in enumerate((~explore, explore)):
        codes[picked] = np.searchsorted(EVENT_CDF[row], draws[picked], side="left")
    return codes.clip(0, 3)


def _stable_order(values: np.ndarray) -> np.ndarray:
    """The stable argsort of non-negative int64 `values`; sorting value*n+position is several times faster when it fits."""
    n = values.size
    if n == 0 or int(values.max()) >= np.iinfo(np.int64).max // n - 1:
        return np.argsort(values, kind="stable")
    return np.sort(values * n + np.arange(n)) % n


def _utc_stamps(date: dt.date, offsets: np.ndarray, unit_ns: int) -> pd.DatetimeIndex:
    """UTC timestamps (ns) `offsets` units of `unit_ns` nanoseconds after the midnight starting `date`."""
    midnight = pd.Timestamp(date, tz="UTC").value
    return pd.DatetimeIndex((midnight + offsets * unit_ns).view("datetime64[ns]")).tz_localize("UTC")


def draw_subscriptions(
    preset: Preset, pop: Population, day: int, date: dt.date, interactions: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """A day's new follows: a share of liked or commented sources, plus initial follows spread over the first week."""
    events = interactions["event"].to_numpy()
    engaged = (events == "like") | (events == "comment")
    picked = np.flatnonzero(engaged)[rng.random(int(engaged.sum())) < preset.follow_after_engagement]
    user_ids = interactions["user_id"].to_numpy()[picked]
    source_ids = interactions["source_id"].to_numpy()[picked]
    initial_days = min(7, preset.days)
    if day < initial_days:
        n = rng.poisson(preset.initial_follows_per_user / initial_days, preset.users)
        users = np.repeat(np.arange(preset.users), n)
        topics = pop.user_topics[users, 0]
        cdf = _topic_cdf(pop, day, preset.topics)
        sources = np.searchsorted(cdf, topics + rng.random(users.size) * 0.999999).clip(0, preset.sources - 1)
        user_ids = np.concatenate([user_ids, pop.user_ids[users]])
        source_ids = np.concatenate([source_ids, pop.source_ids[sources]])
    user_ids, source_ids = _distinct_pairs(user_ids, source_ids)
    seconds = rng.integers(0, SECONDS_PER_DAY, user_ids.size)
    return pd.DataFrame({"user_id": user_ids, "source_id": source_ids, "ts": _utc_stamps(date, seconds, 1_000_000_000)})


def _distinct_pairs(user_ids: np.ndarray, source_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (user, source) pairs, sorted by user then source."""
    order = np.lexsort((source_ids, user_ids))
    users, sources = user_ids[order], source_ids[order]
    first = np.ones(users.size, dtype=bool)
    first[1:] = (users[1:] != users[:-1]) | (sources[1:] != sources[:-1])
    return users[first], sources[first]
