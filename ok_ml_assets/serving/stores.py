"""Which online store the product uses: Redis when a URL is given, else the embedded LMDB store in the product home."""

from __future__ import annotations

import os
from pathlib import Path

from ok_ml_assets.serving.store import OnlineStore


def open_store(home: Path, redis_url: str | None) -> OnlineStore:
    """The Redis store at `redis_url`, or the LMDB store at `<home>/serving/store.lmdb` without one."""
    # Imported here: each store module imports its client library, and a process uses only one of them.
    if redis_url:
        from ok_ml_assets.serving.redis_store import RedisStore

        return RedisStore(redis_url)
    from ok_ml_assets.serving.lmdb_store import LmdbStore

    return LmdbStore(Path(home) / "serving" / "store.lmdb")


def store_from_env(home: Path) -> OnlineStore:
    """The store `REDIS_URL` names, or the embedded one."""
    return open_store(home, os.environ.get("REDIS_URL") or None)


def existing_store_from_env(home: Path) -> OnlineStore | None:
    """The store serving uses, or None while nothing was ever ingested into the embedded one (no Redis configured)."""
    if os.environ.get("REDIS_URL"):
        return store_from_env(home)
    return store_from_env(home) if (Path(home) / "serving" / "store.lmdb").exists() else None
