"""A dict-backed OnlineStore for tests of what reads the store: atomic commits under one lock, nothing durable."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence


class MemoryStore:
    """The OnlineStore interface over dicts."""

    def __init__(self):
        self.values: dict[str, dict[str, bytes]] = {}
        self.meta_values: dict[str, bytes] = {}
        self.committed_offsets: dict[str, int] = {}
        self.get_many_calls = 0
        self.lock = threading.Lock()

    def commit(self, values: Sequence[tuple[str, str, bytes]], meta: Mapping[str, bytes | None], offsets: Mapping[str, int]) -> None:
        """Write values, meta keys and offsets at once."""
        with self.lock:
            for namespace, key, value in values:
                self.values.setdefault(namespace, {})[key] = value
            for key, value in meta.items():
                if value is None:
                    self.meta_values.pop(key, None)
                else:
                    self.meta_values[key] = value
            self.committed_offsets.update(offsets)

    def offsets(self) -> dict[str, int]:
        """The committed offsets."""
        return dict(self.committed_offsets)

    def meta(self, key: str) -> bytes | None:
        """One meta value."""
        return self.meta_values.get(key)

    def meta_items(self, prefix: str) -> dict[str, bytes]:
        """Meta keys starting with `prefix`."""
        with self.lock:
            return {key: value for key, value in self.meta_values.items() if key.startswith(prefix)}

    def get(self, namespace: str, key: str) -> bytes | None:
        """One value."""
        return self.values.get(namespace, {}).get(key)

    def get_many(self, namespace: str, keys: Sequence[str]) -> list[bytes | None]:
        """Values in order, counting the calls."""
        self.get_many_calls += 1
        values = self.values.get(namespace, {})
        return [values.get(key) for key in keys]

    def drop(self, namespace: str) -> int:
        """Delete a namespace."""
        with self.lock:
            return len(self.values.pop(namespace, {}))

    def close(self) -> None:
        """Nothing to release."""
