"""The online store on Redis: one hash per namespace, meta and offsets in hashes of their own, commits in MULTI/EXEC.

Redis acknowledges a commit once it is applied in memory. Whether the commit survives a crash of the Redis server is
the server's AOF setting: `appendonly yes` with `appendfsync everysec` (what `make redis-up` starts) loses at most about
a second of commits; `appendfsync always` makes every acknowledged commit durable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import redis

# Fields per HSET: one command per 10k values keeps single requests small; the transaction still spans them all.
CHUNK = 10_000


def _checked(value: object) -> bytes:
    """The value itself, if bytes: the client would silently encode str and numbers."""
    if not isinstance(value, bytes):
        raise TypeError(f"store values are bytes, not {type(value).__name__}")
    return value


def _chunks(fields: dict[str, bytes]) -> Iterator[dict[str, bytes]]:
    """The fields in pieces of at most CHUNK."""
    items = list(fields.items())
    for start in range(0, len(items), CHUNK):
        yield dict(items[start : start + CHUNK])


class RedisStore:
    """The online store in Redis: values of a namespace in the hash `{prefix}:v:{namespace}`, and hashes
    `{prefix}:meta` and `{prefix}:offsets`. Bytes in, bytes out.
    """

    def __init__(self, url: str, prefix: str = "ok_ml") -> None:
        self._client = redis.Redis.from_url(url, decode_responses=False)
        self._prefix = prefix
        self._meta = f"{prefix}:meta"
        self._offsets = f"{prefix}:offsets"

    def _hash(self, namespace: str) -> str:
        """The hash holding a namespace's values."""
        return f"{self._prefix}:v:{namespace}"

    def commit(self, values: Sequence[tuple[str, str, bytes]], meta: Mapping[str, bytes | None], offsets: Mapping[str, int]) -> None:
        """Write values, meta and offsets in one MULTI/EXEC transaction."""
        # Everything is checked before anything is sent, so a bad value leaves the store untouched. (Redis does not roll
        # back a transaction whose command fails while executing, but only a foreign write of a key of ours can do that.)
        namespaces: dict[str, dict[str, bytes]] = {}
        for namespace, key, value in values:
            namespaces.setdefault(namespace, {})[key] = _checked(value)
        sets = {key: _checked(value) for key, value in meta.items() if value is not None}
        deletes = [key for key, value in meta.items() if value is None]
        pipe = self._client.pipeline(transaction=True)
        for namespace, fields in namespaces.items():
            for chunk in _chunks(fields):
                pipe.hset(self._hash(namespace), mapping=chunk)
        if sets:
            pipe.hset(self._meta, mapping=sets)
        if deletes:
            pipe.hdel(self._meta, *deletes)
        if offsets:
            pipe.hset(self._offsets, mapping={key: str(int(offset)).encode() for key, offset in offsets.items()})
        pipe.execute()

    def offsets(self) -> dict[str, int]:
        """The consumer's next offset per `topic:partition`."""
        return {key.decode(): int(value) for key, value in self._client.hgetall(self._offsets).items()}

    def meta(self, key: str) -> bytes | None:
        """One meta value."""
        return self._client.hget(self._meta, key)

    def meta_items(self, prefix: str) -> dict[str, bytes]:
        """Every meta key (and value) starting with `prefix` (the meta hash holds a few keys per experiment)."""
        start = prefix.encode()
        return {key.decode(): value for key, value in self._client.hgetall(self._meta).items() if key.startswith(start)}

    def get(self, namespace: str, key: str) -> bytes | None:
        """One value of a namespace."""
        return self._client.hget(self._hash(namespace), key)

    def get_many(self, namespace: str, keys: Sequence[str]) -> list[bytes | None]:
        """Values of many keys of a namespace, in one HMGET."""
        return self._client.hmget(self._hash(namespace), list(keys)) if keys else []

    def drop(self, namespace: str) -> int:
        """Unlink a namespace's hash; return how many values it held."""
        pipe = self._client.pipeline(transaction=True)
        pipe.hlen(self._hash(namespace))
        pipe.unlink(self._hash(namespace))
        count, _ = pipe.execute()
        return count

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()
