"""One suite for both online stores: the embedded LMDB store and the Redis store behave the same behind OnlineStore."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis

from ok_ml_assets.serving.lmdb_store import LmdbStore
from ok_ml_assets.serving.redis_store import RedisStore
from ok_ml_assets.serving.store import CURRENT, PENDING, Generation, OnlineStore, current_generation, served_generations
from ok_ml_assets.serving.stores import open_store, store_from_env

# A process that opens the store, says "ready", then answers `namespace key` lines with the value ("-" when absent).
READER = """
import sys
from pathlib import Path
{opener}
print("ready", flush=True)
for line in sys.stdin:
    namespace, key = line.split()
    value = store.get(namespace, key)
    print(value.decode() if value is not None else "-", flush=True)
"""


@dataclass
class Backend:
    """How to open one store: here, and (as Python source binding `store`) in another process."""

    name: str
    open: Callable[[], OnlineStore]
    opener: str


def redis_url() -> str:
    """The test Redis: REDIS_URL, or the one `make redis-up` starts."""
    return os.environ.get("REDIS_URL") or f"redis://127.0.0.1:{os.environ.get('OK_ML_REDIS_PORT', '6390')}/0"


@pytest.fixture(scope="session")
def reachable_redis() -> str:
    """The test Redis URL, once it answers: skipped locally without one, failed on CI."""
    url = redis_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError as error:
        message = f"no Redis at {url} ({error}); start one with `make redis-up`"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    finally:
        client.close()
    return url


@pytest.fixture(params=["lmdb", "redis"])
def backend(request, tmp_path) -> Iterator[Backend]:
    """Each store kind in turn, on a fresh LMDB directory or a fresh Redis key prefix (deleted afterwards)."""
    if request.param == "lmdb":
        path = tmp_path / "store.lmdb"
        opener = f"from ok_ml_assets.serving.lmdb_store import LmdbStore\nstore = LmdbStore(Path({str(path)!r}))"
        yield Backend("lmdb", lambda: LmdbStore(path), opener)
        return
    url = request.getfixturevalue("reachable_redis")
    prefix = f"ok_ml_test:{uuid.uuid4().hex}"
    opener = f"from ok_ml_assets.serving.redis_store import RedisStore\nstore = RedisStore({url!r}, prefix={prefix!r})"
    yield Backend("redis", lambda: RedisStore(url, prefix=prefix), opener)
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.unlink(*keys)
    client.close()


@pytest.fixture
def store(backend) -> Iterator[OnlineStore]:
    """A store of the backend, closed afterwards."""
    opened = backend.open()
    yield opened
    opened.close()


def generation(experiment: str = "exp", generation_id: str = "g1") -> Generation:
    """A served generation record with every field set."""
    return Generation(experiment, generation_id, "als", "3", "run-1", "2025-01-01T00:00:00Z", "recs.exp", 0.25, "salt", 1200,
                      fallback={"top": ["a", "b"]}, served_since=1735689600.5)


def test_commit_then_get_and_get_many(store):
    store.commit([("exp/g1", "u1", b"one"), ("exp/g1", "u2", b"two"), ("exp/g2", "u1", b"other"), ("exp/g1", "ü", b"\x00\xff")], {}, {})
    assert store.get("exp/g1", "u1") == b"one"
    assert store.get("exp/g2", "u1") == b"other"
    assert store.get("exp/g1", "ü") == b"\x00\xff"
    assert store.get("exp/g1", "nobody") is None
    assert store.get("exp/none", "u1") is None
    assert store.get_many("exp/g1", ["u2", "nobody", "u1"]) == [b"two", None, b"one"]
    assert store.get_many("exp/none", ["u1"]) == [None]
    assert store.get_many("exp/g1", []) == []


def test_later_commit_overwrites_values(store):
    store.commit([("ns", "k", b"old")], {}, {})
    store.commit([("ns", "k", b"new"), ("ns", "k2", b"")], {}, {})
    assert store.get_many("ns", ["k", "k2"]) == [b"new", b""]


def test_meta_set_delete_and_items_by_prefix(store):
    store.commit([], {CURRENT + "a": b"A", CURRENT + "b": b"B", PENDING + "a": b"P", "other": b"O"}, {})
    assert store.meta(CURRENT + "a") == b"A"
    assert store.meta("missing") is None
    assert store.meta_items(CURRENT) == {CURRENT + "a": b"A", CURRENT + "b": b"B"}
    assert store.meta_items(PENDING) == {PENDING + "a": b"P"}
    assert store.meta_items("nothing/") == {}
    store.commit([], {CURRENT + "a": None, CURRENT + "b": b"B2", "never-set": None}, {})
    assert store.meta(CURRENT + "a") is None
    assert store.meta_items(CURRENT) == {CURRENT + "b": b"B2"}
    assert store.meta_items("") == {CURRENT + "b": b"B2", PENDING + "a": b"P", "other": b"O"}


def test_offsets_round_trip_and_overwrite(store):
    assert store.offsets() == {}
    store.commit([], {}, {"recs.exp:0": 10, "recs.exp:1": 0})
    assert store.offsets() == {"recs.exp:0": 10, "recs.exp:1": 0}
    store.commit([], {}, {"recs.exp:0": 12345678901})
    assert store.offsets() == {"recs.exp:0": 12345678901, "recs.exp:1": 0}


@pytest.mark.parametrize("bad", ["values", "meta"])
def test_failed_commit_leaves_nothing_written(store, bad):
    store.commit([("ns", "k", b"old")], {"m": b"old", "gone": b"kept"}, {"t:0": 5})
    values = [("ns", "k", b"new"), ("ns2", "k", b"x")] + ([("ns", "bad", "not bytes")] if bad == "values" else [])
    meta = {"m": b"new", "gone": None} | ({"zz": "not bytes"} if bad == "meta" else {})
    with pytest.raises(TypeError):
        store.commit(values, meta, {"t:0": 99, "t:1": 1})
    assert store.get_many("ns", ["k", "bad"]) == [b"old", None]
    assert store.get("ns2", "k") is None
    assert store.meta_items("") == {"m": b"old", "gone": b"kept"}
    assert store.offsets() == {"t:0": 5}


def test_drop_removes_only_its_namespace(store):
    # exp/g1 is a string prefix of exp/g10: a namespace must not reach into another whose name it begins.
    values = [("exp/g1", f"u{i}", b"1") for i in range(3)] + [("exp/g10", "u0", b"10"), ("exp/g2", "u0", b"2")]
    store.commit(values, {"m": b"M"}, {"t:0": 1})
    assert store.drop("exp/g1") == 3
    assert store.get_many("exp/g1", ["u0", "u1", "u2"]) == [None, None, None]
    assert store.get("exp/g10", "u0") == b"10"
    assert store.get("exp/g2", "u0") == b"2"
    assert store.meta("m") == b"M"
    assert store.offsets() == {"t:0": 1}
    assert store.drop("exp/g1") == 0
    assert store.drop("never") == 0


def test_second_store_sees_commits(backend, store):
    second = backend.open()
    try:
        store.commit([("ns", "k", b"v")], {"m": b"M"}, {"t:0": 3})
        assert (second.get("ns", "k"), second.meta("m"), second.offsets()) == (b"v", b"M", {"t:0": 3})
        second.commit([("ns", "k2", b"v2")], {}, {})
    finally:
        second.close()
    # The first store still works once the second is closed (LMDB stores of a process share one environment).
    assert store.get_many("ns", ["k", "k2"]) == [b"v", b"v2"]


def test_another_process_reads_commits(backend, store):
    store.commit([("ns", "k0", b"before")], {}, {})
    reader = start_reader(backend.opener)
    try:
        assert reader.stdout.readline().strip() == "ready"
        assert ask(reader, "ns k0") == "before"
        assert ask(reader, "ns k1") == "-"
        # The reader opened the store before this commit, as the API does while the ingester writes.
        store.commit([("ns", "k1", b"after")], {}, {})
        assert ask(reader, "ns k1") == "after"
    finally:
        reader.stdin.close()
        assert reader.wait(timeout=20) == 0


def start_reader(opener: str) -> subprocess.Popen:
    """A reader process on the store `opener` opens."""
    return subprocess.Popen([sys.executable, "-c", READER.format(opener=opener)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def ask(reader: subprocess.Popen, line: str) -> str:
    """The reader process's answer to one `namespace key` line."""
    reader.stdin.write(line + "\n")
    reader.stdin.flush()
    return reader.stdout.readline().strip()


def test_large_batch_round_trip(store):
    keys = [f"user{i}" for i in range(50_000)]
    store.commit([("big", key, key.encode() * 3) for key in keys], {}, {"t:0": 50_000})
    assert store.get_many("big", keys) == [key.encode() * 3 for key in keys]
    assert store.drop("big") == 50_000
    assert store.get("big", "user0") is None


def test_generation_round_trip_via_meta(store):
    served, other = generation(), generation("exp2", "g7")
    store.commit([], {CURRENT + "exp": served.to_bytes(), CURRENT + "exp2": other.to_bytes(), PENDING + "exp": b"{}"}, {})
    assert Generation.from_bytes(store.meta(CURRENT + "exp")) == served
    assert current_generation(store, "exp") == served
    assert current_generation(store, "absent") is None
    assert served_generations(store) == {"exp": served, "exp2": other}


def test_lmdb_map_grows_when_full_and_other_processes_follow(tmp_path):
    path = tmp_path / "small.lmdb"
    store = LmdbStore(path, map_size=1 << 20)
    opener = f"from ok_ml_assets.serving.lmdb_store import LmdbStore\nstore = LmdbStore(Path({str(path)!r}), map_size=1 << 20)"
    reader = start_reader(opener)
    try:
        assert reader.stdout.readline().strip() == "ready"
        store.commit([("ns", f"k{i}", b"x" * 1000) for i in range(4000)] + [("ns", "last", b"end")], {}, {})
        assert store.get("ns", "last") == b"end"
        assert ask(reader, "ns last") == "end"
    finally:
        reader.stdin.close()
        assert reader.wait(timeout=20) == 0
        store.close()


def test_open_store_picks_redis_by_url(tmp_path, monkeypatch):
    embedded = open_store(tmp_path, None)
    try:
        assert isinstance(embedded, LmdbStore) and embedded.path == (tmp_path / "serving" / "store.lmdb").resolve()
    finally:
        embedded.close()
    assert isinstance(open_store(tmp_path, "redis://127.0.0.1:1/0"), RedisStore)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert isinstance(store_from_env(tmp_path), RedisStore)
    monkeypatch.setenv("REDIS_URL", "")
    from_env = store_from_env(tmp_path)
    assert isinstance(from_env, LmdbStore)
    from_env.close()


def test_importing_stores_loads_no_client_library():
    script = "import sys, ok_ml_assets.serving.stores; print(sorted({'lmdb', 'redis'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
