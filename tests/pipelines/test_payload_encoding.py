"""The published values of every pipeline type, pinned: the same keys, the same JSON as the per-row encoders of before."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ok_ml_assets.lifecycle import encoding
from ok_ml_assets.lifecycle.publication import Provenance, rounded
from ok_ml_assets.pipeline_types.recommendation_als import payload as recommendation_payload
from ok_ml_assets.pipeline_types.tabular_classification import payload as classification_payload
from ok_ml_assets.pipeline_types.time_series_classification import payload as anomaly_payload

PROVENANCE = Provenance("prod_discovery", "prod_discovery", "3", "run-1", "2026-11-29T00:00:00.000001+00:00")
TAIL = {"experiment": "prod_discovery", "model": {"name": "prod_discovery", "version": "3"}, "run_id": "run-1",
        "generated_at": "2026-11-29T00:00:00.000001+00:00"}
# Scores at the edges of round(x, 6) and of float formatting: halves, exponents, negatives, integers, huge values.
EDGE_SCORES = [0.5, 1e-05, 0.1234565, 2.5e-06, 5e-07, -0.25, 1.0, 0.0, -0.0, 3.0000004, 123.4567891, 1e16, 0.30000000000000004,
               1.0000005, 0.0001, 9.9e-05, 12345678.9876545, 0.6999999999999999]


def envelope_before(schema: str, body: dict, provenance: Provenance) -> bytes:
    """The envelope as it was encoded before bulk encoding: json.dumps, compact separators."""
    return json.dumps({"schema": schema, "version": 1, **body, "experiment": provenance.experiment,
                       "model": {"name": provenance.model_name, "version": provenance.model_version},
                       "run_id": provenance.run_id, "generated_at": provenance.generated_at}, separators=(",", ":")).encode()


def recommendations_before(frame: pd.DataFrame, provenance: Provenance) -> list[tuple[bytes, bytes]]:
    """Each user's (key, value) as the per-row encoder produced them."""
    return [(str(int(u)).encode(), envelope_before("ok_ml.recommendations", {
        "user_id": int(u), "items": [{"source_id": int(s), "score": round(float(c), 6)} for s, c in zip(sources, scores)]}, provenance))
        for u, sources, scores in zip(frame["user_id"], frame["source_ids"], frame["scores"])]


def classifications_before(frame: pd.DataFrame, id_column: str, classes: list[str], provenance: Provenance) -> list[tuple[bytes, bytes]]:
    """Each entity's (key, value) as the per-row encoder produced them."""
    return [(str(int(e)).encode(), envelope_before("ok_ml.classification", {
        "entity_id": int(e), "label": str(label), "score": round(float(score), 6), "flagged": bool(flagged),
        "probabilities": {name: round(float(p), 6) for name, p in zip(classes, probabilities)}}, provenance))
        for e, label, score, flagged, probabilities in zip(frame[id_column], frame["label"], frame["score"], frame["flagged"],
                                                             frame["probabilities"])]


def anomalies_before(frame: pd.DataFrame, provenance: Provenance) -> list[tuple[bytes, bytes]]:
    """Each series' (key, value) as the per-row encoder produced them."""
    return [(str(int(row.series_id)).encode(), envelope_before("ok_ml.anomaly", {
        "series_id": int(row.series_id), "service": str(row.service), "metric": str(row.metric),
        "window_end": pd.Timestamp(row.window_end).isoformat(), "score": round(float(row.score), 6), "alert": bool(row.alert)},
        provenance)) for row in frame.itertuples(index=False)]


def same_json(left: bytes, right: bytes) -> bool:
    """Equal once parsed, NaN equal to NaN (json reads NaN back as a float that equals nothing)."""
    def normal(value):
        if isinstance(value, float) and math.isnan(value):
            return "NaN"
        if isinstance(value, dict):
            return {k: normal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [normal(v) for v in value]
        return value
    return normal(json.loads(left)) == normal(json.loads(right))


def assert_same_messages(got, expected) -> None:
    """The same keys in the same order, each value JSON-equal to before (of the same types: 1.0 stays a float), and the
    same bytes: the bulk encoders write numbers and strings exactly as json.dumps did."""
    got, expected = list(got), list(expected)
    assert [k for k, _ in got] == [k for k, _ in expected]
    for (_, value), (_, before) in zip(got, expected):
        assert same_json(value, before), (value, before)
        assert repr(json.loads(value)) == repr(json.loads(before)), (value, before)
    assert [v for _, v in got] == [v for _, v in expected]


def recommendation_table(users: int, seed: int, as_arrays: bool = False) -> pd.DataFrame:
    """Top-K lists of random length with float32 scores, as scoring makes them (lists), or as parquet reads them (arrays)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 21, users)
    sources = [rng.choice(100_000, n, replace=False) for n in lengths]
    scores = [np.sort(rng.normal(0.3, 0.4, n).astype(np.float32))[::-1].astype(np.float64) for n in lengths]
    if not as_arrays:
        sources, scores = [s.tolist() for s in sources], [c.tolist() for c in scores]
    return pd.DataFrame({"user_id": rng.choice(10**9, users, replace=False).astype(np.int64), "source_ids": sources, "scores": scores})


def test_a_recommendation_message_is_pinned():
    frame = pd.DataFrame({"user_id": [42, 7], "source_ids": [[7, 8, 9], []], "scores": [[0.5, 0.1234565, 1e-05], []]})
    (key, value), (empty_key, empty) = recommendation_payload.encode_messages(frame, PROVENANCE)
    assert (key, empty_key) == (b"42", b"7")
    assert json.loads(value) == {"schema": "ok_ml.recommendations", "version": 1, "user_id": 42, "items": [
        {"source_id": 7, "score": 0.5}, {"source_id": 8, "score": 0.123456}, {"source_id": 9, "score": 1e-05}], **TAIL}
    assert json.loads(empty) == {"schema": "ok_ml.recommendations", "version": 1, "user_id": 7, "items": [], **TAIL}


@pytest.mark.parametrize("as_arrays", [False, True])
def test_recommendations_encode_as_before(as_arrays):
    frame = recommendation_table(3_000, seed=1, as_arrays=as_arrays)
    assert_same_messages(recommendation_payload.encode_messages(frame, PROVENANCE), recommendations_before(frame, PROVENANCE))


def test_recommendations_of_other_shapes_encode_as_before():
    frame = pd.DataFrame({"user_id": [1.0, 2.0, 3.0], "source_ids": [[7.9, 8], [2**70], ["12"]], "scores": [[0.5, 0.25], [0.1], [0.2]]})
    assert_same_messages(recommendation_payload.encode_messages(frame, PROVENANCE), recommendations_before(frame, PROVENANCE))
    uneven = pd.DataFrame({"user_id": [1, 2], "source_ids": [[7, 8, 9], [1]], "scores": [[0.5], [0.1]]})
    assert_same_messages(recommendation_payload.encode_messages(uneven, PROVENANCE), recommendations_before(uneven, PROVENANCE))


def test_recommendations_encode_across_chunks(monkeypatch):
    monkeypatch.setattr(recommendation_payload, "CHUNK_ROWS", 7)
    frame = recommendation_table(100, seed=4)
    assert_same_messages(recommendation_payload.encode_messages(frame, PROVENANCE), recommendations_before(frame, PROVENANCE))


def test_recommendation_scores_at_the_edges_encode_as_before():
    scores = EDGE_SCORES + [float("nan"), float("inf"), -float("inf")]
    frame = pd.DataFrame({"user_id": np.arange(len(scores)), "source_ids": [[i] for i in range(len(scores))],
                          "scores": [[s] for s in scores]})
    frame.loc[len(frame)] = [99, list(range(len(EDGE_SCORES))), EDGE_SCORES]
    assert_same_messages(recommendation_payload.encode_messages(frame, PROVENANCE), recommendations_before(frame, PROVENANCE))


def test_a_classification_message_is_pinned():
    frame = pd.DataFrame({"account_id": [42], "label": ["bot"], "score": [0.9100004], "flagged": [1],
                          "probabilities": [[0.0899996, 0.9100004]]})
    [(key, value)] = classification_payload.encode_messages(frame, "account_id", ["human", "bot"], PROVENANCE)
    assert key == b"42"
    assert json.loads(value) == {"schema": "ok_ml.classification", "version": 1, "entity_id": 42, "label": "bot", "score": 0.91,
                                 "flagged": True, "probabilities": {"human": 0.09, "bot": 0.91}, **TAIL}


def test_classifications_encode_as_before():
    rng = np.random.default_rng(2)
    classes = ["normal", "spam", "bot", "ботнет"]
    probabilities = rng.dirichlet(np.ones(len(classes)), 2_000)
    probabilities[:len(EDGE_SCORES), 0] = EDGE_SCORES
    frame = pd.DataFrame({"account_id": np.arange(2_000) * 13, "label": np.array(classes)[probabilities.argmax(axis=1)],
                          "score": probabilities[:, 1], "flagged": (probabilities[:, 1] > 0.5).astype(np.int64),
                          "probabilities": list(probabilities)})
    frame.loc[3, "score"] = float("nan")
    expected = classifications_before(frame, "account_id", classes, PROVENANCE)
    assert_same_messages(classification_payload.encode_messages(frame, "account_id", classes, PROVENANCE), expected)


def test_an_anomaly_message_is_pinned():
    frame = pd.DataFrame({"series_id": [3], "service": ["api"], "metric": ["latency_ms"],
                          "window_end": [pd.Timestamp("2026-11-29 10:00:00")], "score": [0.8765434], "alert": [1]})
    [(key, value)] = anomaly_payload.encode_messages(frame, PROVENANCE)
    assert key == b"3"
    assert json.loads(value) == {"schema": "ok_ml.anomaly", "version": 1, "series_id": 3, "service": "api", "metric": "latency_ms",
                                 "window_end": "2026-11-29T10:00:00", "score": 0.876543, "alert": True, **TAIL}


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_anomalies_encode_as_before(tz):
    rng = np.random.default_rng(3)
    n = 500
    ends = pd.Series(pd.date_range("2026-11-01", periods=n, freq="37min", tz=tz))
    ends.iloc[1] = ends.iloc[1] + pd.Timedelta(microseconds=5)
    frame = pd.DataFrame({"series_id": np.arange(n), "service": rng.choice(["api", "db", "кэш"], n),
                          "metric": rng.choice(["latency_ms", "errors"], n), "window_end": ends,
                          "score": np.r_[EDGE_SCORES, rng.random(n - len(EDGE_SCORES))], "alert": rng.integers(0, 2, n)})
    assert_same_messages(anomaly_payload.encode_messages(frame, PROVENANCE), anomalies_before(frame, PROVENANCE))


def test_the_popular_fallback_ranks_as_before():
    frame = recommendation_table(2_000, seed=7)
    frame["source_ids"] = [[s % 50 for s in sources] for sources in frame["source_ids"]]  # many ties in the counts
    with_none = frame.assign(source_ids=[[*s, None] for s in frame["source_ids"]])
    for table in (frame, frame.assign(source_ids=[np.array(s, dtype=np.int64) for s in frame["source_ids"]]), frame.iloc[:0], with_none):
        counts = table["source_ids"].explode().dropna().astype("int64").value_counts()
        lists = max(len(table), 1)
        expected = [{"source_id": int(s), "score": round(float(c) / lists, 6)} for s, c in counts.head(20).items()]
        assert recommendation_payload.popular_fallback(table, 20)["items"] == expected


def test_the_bulk_writer_writes_numbers_as_json_does():
    rng = np.random.default_rng(8)
    integers = np.r_[0, 1, 9, 10, 9999, 10_000, 10**8, 10**12, 2**63 - 1, rng.integers(0, 2**62, 5_000), rng.integers(0, 1000, 5_000)]
    for width in (encoding.digits_needed(integers), 20):
        rows = np.zeros((len(integers), width + 1), dtype=np.uint8)
        encoding.write_integers(rows[:, :width], integers)
        rows[:, width] = ord("\n")
        assert encoding.values_of(rows) == [str(int(v)).encode() for v in integers]
    scores = rounded(np.r_[EDGE_SCORES, rng.normal(0, 1, 5_000), rng.normal(0, 1e5, 5_000), -rng.random(5_000) * 1e-3,
                           np.arange(-50, 50) / 8, [1e-4, -1e-4, 999_999_999.999999, -0.0]])
    writable = encoding.writable_scores(scores)
    assert writable.mean() > 0.9
    layout = encoding.score_layout(scores, writable)
    width = encoding.score_field_width(layout)
    rows = np.zeros((len(scores), width + 1), dtype=np.uint8)
    encoding.write_scores(rows[:, :width], np.where(writable, scores, 0.0), layout)
    rows[:, width] = ord("\n")
    written = encoding.values_of(rows)
    assert [w for w, ok in zip(written, writable) if ok] == [json.dumps(float(s)).encode() for s in scores[writable]]


def test_recommendations_with_wide_numbers_encode_as_before():
    rng = np.random.default_rng(9)
    frame = recommendation_table(500, seed=9)
    frame["user_id"] = rng.integers(0, 2**62, len(frame))
    frame["source_ids"] = [[int(rng.integers(0, 10**12)) for _ in s] for s in frame["source_ids"]]
    frame["scores"] = [(rng.normal(0, 300, len(c)) / rng.choice([1, 10**4], len(c))).tolist() for c in frame["scores"]]
    frame.loc[0, "user_id"] = -5
    frame.at[1, "source_ids"], frame.at[1, "scores"] = [-3, 4], [0.5, 0.25]
    assert_same_messages(recommendation_payload.encode_messages(frame, PROVENANCE), recommendations_before(frame, PROVENANCE))
