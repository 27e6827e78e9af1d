"""The embedded online store: an on-disk LMDB environment one process writes while others (the API) read it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import lmdb

T = TypeVar("T")

# Address space, not disk: the data file grows with the data, and a full map is grown on demand.
DEFAULT_MAP_SIZE = 8 << 30
SEPARATOR = b"\x00"
_MIB = 1 << 20


class _Gate:
    """Any number of transactions at once, or one map resize alone: a resize invalidates every open transaction."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._active = 0
        self._resizing = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the gate for one transaction."""
        with self._condition:
            self._condition.wait_for(lambda: not self._resizing)
            self._active += 1
        try:
            yield
        finally:
            with self._condition:
                self._active -= 1
                self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the gate alone, once the open transactions are done (new ones wait, so a resize is not starved)."""
        with self._condition:
            self._condition.wait_for(lambda: not self._resizing)
            self._resizing = True
            self._condition.wait_for(lambda: self._active == 0)
        try:
            yield
        finally:
            with self._condition:
                self._resizing = False
                self._condition.notify_all()


@dataclass
class _Environment:
    """One open LMDB environment of this process, its sub-databases and how many stores use it."""

    env: lmdb.Environment
    values: lmdb._Database
    meta: lmdb._Database
    offsets: lmdb._Database
    gate: _Gate = field(default_factory=_Gate)
    users: int = 0


# LMDB forbids opening one environment twice in a process (its fcntl locks are per process), so stores share it.
_OPEN: dict[Path, _Environment] = {}
_OPEN_LOCK = threading.Lock()


def _open_environment(path: Path, map_size: int) -> _Environment:
    """The process's environment at `path`, opened on first use."""
    with _OPEN_LOCK:
        shared = _OPEN.get(path)
        if shared is None:
            path.mkdir(parents=True, exist_ok=True)
            env = lmdb.open(str(path), map_size=map_size, max_dbs=3, lock=True, sync=True, metasync=True, readahead=False)
            shared = _OPEN[path] = _Environment(env, *(env.open_db(name) for name in (b"values", b"meta", b"offsets")))
        shared.users += 1
        return shared


def _release_environment(path: Path) -> None:
    """Close the process's environment at `path` when its last store closes."""
    with _OPEN_LOCK:
        shared = _OPEN[path]
        shared.users -= 1
        if shared.users == 0:
            del _OPEN[path]
            shared.env.close()


def _value_key(namespace: str, key: str) -> bytes:
    """The LMDB key of a value: its namespace, a NUL, its key (so a namespace is one contiguous key range)."""
    return _namespace_prefix(namespace) + key.encode()


def _namespace_prefix(namespace: str) -> bytes:
    """The first bytes of every key of a namespace."""
    if "\x00" in namespace:
        raise ValueError(f"namespace {namespace!r} contains NUL")
    return namespace.encode() + SEPARATOR


def _checked(value: object) -> bytes:
    """The value itself, if bytes: py-lmdb would store None as an empty value."""
    if not isinstance(value, bytes):
        raise TypeError(f"store values are bytes, not {type(value).__name__}")
    return value


def _scan(cursor: lmdb.Cursor, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of a sub-database whose key starts with `prefix`."""
    if not cursor.set_range(prefix):
        return
    for key, value in cursor:
        if not key.startswith(prefix):
            return
        yield key, value


class LmdbStore:
    """The online store in an LMDB environment: sub-databases `values` (`namespace NUL key`), `meta` and `offsets`.

    Commits are one write transaction, synced to disk before they return; reads are read transactions, so a reader
    in another process sees each commit whole. Keys are limited to LMDB's 511 bytes.
    """

    def __init__(self, path: Path, map_size: int = DEFAULT_MAP_SIZE) -> None:
        self.path = Path(path).resolve()
        self._shared = _open_environment(self.path, map_size)
        self._closed = False

    def commit(self, values: Sequence[tuple[str, str, bytes]], meta: Mapping[str, bytes | None], offsets: Mapping[str, int]) -> None:
        """Write values, meta and offsets in one durable transaction."""
        size = sum(len(value) + len(key) + len(namespace) for namespace, key, value in values if isinstance(value, bytes))
        self._grown_if_full(lambda: self._write(values, meta, offsets), size)

    def _write(self, values: Sequence[tuple[str, str, bytes]], meta: Mapping[str, bytes | None], offsets: Mapping[str, int]) -> None:
        """The commit's write transaction."""
        shared = self._shared
        with self._transaction(write=True) as txn:
            for namespace, key, value in values:
                txn.put(_value_key(namespace, key), _checked(value), db=shared.values)
            for key, value in meta.items():
                if value is None:
                    txn.delete(key.encode(), db=shared.meta)
                else:
                    txn.put(key.encode(), _checked(value), db=shared.meta)
            for key, offset in offsets.items():
                txn.put(key.encode(), str(int(offset)).encode(), db=shared.offsets)

    def offsets(self) -> dict[str, int]:
        """The consumer's next offset per `topic:partition`."""
        with self._transaction() as txn:
            return {key.decode(): int(value) for key, value in txn.cursor(db=self._shared.offsets)}

    def meta(self, key: str) -> bytes | None:
        """One meta value."""
        with self._transaction() as txn:
            return txn.get(key.encode(), db=self._shared.meta)

    def meta_items(self, prefix: str) -> dict[str, bytes]:
        """Every meta key (and value) starting with `prefix`."""
        with self._transaction() as txn:
            return {key.decode(): value for key, value in _scan(txn.cursor(db=self._shared.meta), prefix.encode())}

    def get(self, namespace: str, key: str) -> bytes | None:
        """One value of a namespace."""
        with self._transaction() as txn:
            return txn.get(_value_key(namespace, key), db=self._shared.values)

    def get_many(self, namespace: str, keys: Sequence[str]) -> list[bytes | None]:
        """Values of many keys of a namespace, read in one transaction."""
        prefix = _namespace_prefix(namespace)
        with self._transaction() as txn:
            return [txn.get(prefix + key.encode(), db=self._shared.values) for key in keys]

    def drop(self, namespace: str) -> int:
        """Delete a namespace's key range in one transaction; return how many values it held."""
        return self._grown_if_full(lambda: self._delete_range(_namespace_prefix(namespace)))

    def _delete_range(self, prefix: bytes) -> int:
        """Delete every value whose key starts with `prefix`."""
        deleted = 0
        with self._transaction(write=True) as txn:
            cursor = txn.cursor(db=self._shared.values)
            if cursor.set_range(prefix):
                # delete() moves to the next key, and leaves the cursor unpositioned (key b"") past the last one.
                while cursor.key().startswith(prefix):
                    cursor.delete()
                    deleted += 1
        return deleted

    def close(self) -> None:
        """Release this store's use of the environment."""
        if not self._closed:
            self._closed = True
            _release_environment(self.path)

    @contextmanager
    def _transaction(self, write: bool = False) -> Iterator[lmdb.Transaction]:
        """A transaction (committed on success, aborted on error), adopting first a map another process has grown."""
        for attempt in range(2):
            with self._shared.gate.shared():
                try:
                    txn = self._shared.env.begin(write=write)
                except lmdb.MapResizedError:
                    if attempt:
                        raise
                else:
                    with txn:
                        yield txn
                    return
            self._set_map_size(0)

    def _grown_if_full(self, write: Callable[[], T], size: int = 0) -> T:
        """Run a write transaction; when the map is full, grow it and run the transaction once more."""
        try:
            return write()
        except lmdb.MapFullError:
            current = self._shared.env.info()["map_size"]
            self._set_map_size(max(2 * current, current + 4 * size))
            return write()

    def _set_map_size(self, size: int) -> None:
        """Resize the map (0 adopts the size another process set) while no transaction of this process is open."""
        with self._shared.gate.exclusive():
            self._shared.env.set_mapsize(-(-size // _MIB) * _MIB)
