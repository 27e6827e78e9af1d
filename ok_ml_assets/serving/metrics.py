"""The serving API's Prometheus metrics: request and store-read latency, and the store's ingestion state read at scrape time."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ok_ml_assets.serving.store import OnlineStore, served_generations

# Meta keys the ingester writes: lag per `topic:partition`, and running totals per experiment or topic.
LAG = "lag/"
INGESTED = "stats/ingested/"
MALFORMED = "stats/malformed/"
INGEST_SECONDS = "stats/ingest_seconds/"

# A local store read takes microseconds and a request well under a millisecond; the top buckets catch stalls.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def epoch_seconds(timestamp: str) -> float:
    """Seconds since the epoch of an ISO-8601 timestamp (UTC when it names no zone)."""
    moment = dt.datetime.fromisoformat(timestamp)
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def number(value: bytes | str) -> float | None:
    """A stored figure as a number, or None when it is not one."""
    try:
        return float(value)
    except ValueError:
        return None


class StoreStateCollector:
    """Exports the served model versions, batch ages, consumer lag and ingestion totals as the store holds them at scrape time."""

    def __init__(self, store: OnlineStore, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        """One family per figure, read from the store's meta keys now."""
        yield from self.served()
        yield self.by_suffix(GaugeMetricFamily, "ok_ml_serving_consumer_lag", "Messages the ingester is behind, per partition.",
                             LAG, ["topic", "partition"], lambda suffix: suffix.rsplit(":", 1))
        yield self.by_suffix(CounterMetricFamily, "ok_ml_serving_ingested_messages", "Messages ingested into the store.",
                             INGESTED, ["experiment"])
        yield self.by_suffix(CounterMetricFamily, "ok_ml_serving_malformed_messages", "Malformed messages the ingester skipped.",
                             MALFORMED, ["topic"])
        yield self.by_suffix(GaugeMetricFamily, "ok_ml_serving_ingest_seconds",
                             "Seconds the last generation took from its first message to being served.", INGEST_SECONDS, ["experiment"])

    def served(self) -> Iterator[Metric]:
        """The model version and batch age of each experiment's served generation."""
        version = GaugeMetricFamily("ok_ml_serving_model_version", "Model version of the served generation.", labels=["experiment"])
        age = GaugeMetricFamily("ok_ml_serving_batch_age_seconds", "Seconds since the served generation was generated.",
                                labels=["experiment"])
        now = self.clock()
        for experiment, generation in sorted(served_generations(self.store).items()):
            if (served_version := number(generation.model_version)) is not None:
                version.add_metric([experiment], served_version)
            age.add_metric([experiment], now - epoch_seconds(generation.generated_at))
        yield version
        yield age

    def by_suffix(self, family: type, name: str, documentation: str, prefix: str, labels: list[str],
                  label_values: Callable[[str], list[str]] = lambda suffix: [suffix]) -> Metric:
        """A family with one sample per meta key under `prefix`, labelled from the rest of the key; non-numbers are skipped."""
        metric = family(name, documentation, labels=labels)
        for key, value in sorted(self.store.meta_items(prefix).items()):
            values = label_values(key.removeprefix(prefix))
            if (figure := number(value)) is not None and len(values) == len(labels):
                metric.add_metric(values, figure)
        return metric


class ServingMetrics:
    """The API's own registry: its request and store-read instruments and the store-state collector."""

    def __init__(self, store: OnlineStore, clock: Callable[[], float] = time.time):
        self.registry = CollectorRegistry()
        self.store_read = Histogram("ok_ml_serving_store_read_seconds", "Latency of one online store read.", ["op"],
                                    buckets=LATENCY_BUCKETS, registry=self.registry)
        self.request = Histogram("ok_ml_serving_request_seconds", "Latency of one API request, by route template.", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.requests = Counter("ok_ml_serving_requests", "API requests by route template and status.", ["route", "status"],
                                registry=self.registry)
        self.errors = Counter("ok_ml_serving_errors", "Exceptions raised while answering, by route template and kind.",
                              ["route", "kind"], registry=self.registry)
        self.registry.register(StoreStateCollector(store, clock))
        self._reads: dict[str, Histogram] = {}
        self._routes: dict[str, Histogram] = {}
        self._statuses: dict[tuple[str, int], Counter] = {}

    def observe_read(self, op: str, seconds: float) -> None:
        """Record one store read."""
        if (child := self._reads.get(op)) is None:
            child = self._reads[op] = self.store_read.labels(op)
        child.observe(seconds)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """Record one answered request under its route template."""
        # Children are cached: labels() takes a lock and builds a key on every call, a visible share of a 100 µs request.
        if (child := self._routes.get(route)) is None:
            child = self._routes[route] = self.request.labels(route)
        child.observe(seconds)
        if (counter := self._statuses.get((route, status))) is None:
            counter = self._statuses[route, status] = self.requests.labels(route, str(status))
        counter.inc()

    def observe_error(self, route: str, error: BaseException) -> None:
        """Record an exception raised while answering a request."""
        self.errors.labels(route, type(error).__name__).inc()

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
