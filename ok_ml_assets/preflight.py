"""What a run needs before it starts: free space where it writes and an MLflow store it can write to; and atomic writes
that clean up after themselves when the disk fills anyway.

Checked first, so a full disk or a broken store is one line naming the path, not a traceback after training
and a Dagster run left NOT_STARTED.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from ok_ml_assets.settings import Settings

MIN_FREE_MB_VARIABLE = "OK_ML_MIN_FREE_MB"
DEFAULT_MIN_FREE_MB = 200
FULL_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# The suffix of a value being written; what a killed process leaves with it is removed by the next run.
PARTIAL_SUFFIX = ".tmp"


class StorageUnusable(RuntimeError):
    """A place the product writes to is full, read-only or corrupted; nothing was started."""


def existing_ancestor(path: Path) -> Path:
    """The path itself or its nearest ancestor that exists: where a file created at `path` would take its space."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_mb(path: Path) -> float:
    """Free megabytes on the file system that holds `path`."""
    return shutil.disk_usage(existing_ancestor(path)).free / 1e6


def minimum_free_mb() -> float:
    """The free space a run needs on each place it writes, from OK_ML_MIN_FREE_MB."""
    value = os.environ.get(MIN_FREE_MB_VARIABLE, str(DEFAULT_MIN_FREE_MB))
    try:
        return float(value)
    except ValueError:
        raise StorageUnusable(f"{MIN_FREE_MB_VARIABLE}={value!r} is not a number of megabytes") from None


def require_free_space(places: dict[str, Path]) -> None:
    """Refuse to start when any place (what -> path) has less than the minimum free space or is read-only."""
    needed = minimum_free_mb()
    for what, path in places.items():
        where = existing_ancestor(path)
        if not os.access(where, os.W_OK):
            raise StorageUnusable(f"{what} at {path} is not writable ({where} is read-only); nothing was started")
        free = free_mb(where)
        if free < needed:
            raise StorageUnusable(f"{what} at {path} has {free:.1f} MB free, a run needs at least {needed:g} MB "
                                  f"(set {MIN_FREE_MB_VARIABLE} to change); free some space there, nothing was started")


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` tracking URI (None for a server or another database)."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix) or tracking_uri in (prefix, prefix + ":memory:"):
        return None
    # SQLAlchemy's form: sqlite:///relative/path or sqlite:////absolute/path, query options after '?'.
    return Path(unquote(tracking_uri[len(prefix):].partition("?")[0]))


def require_writable_mlflow_store(tracking_uri: str) -> None:
    """Refuse to start when a local MLflow store cannot be read or written (corrupted file, read-only disk)."""
    path = sqlite_path(tracking_uri)
    if path is None or not path.exists():
        return
    try:
        with sqlite3.connect(path, timeout=30) as connection:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            # A write rolled back: SQLite opens a read-only file without complaint and fails only at the first write.
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("CREATE TABLE ok_ml_write_probe (x INTEGER)")
            connection.rollback()
    except sqlite3.DatabaseError as error:
        raise StorageUnusable(f"the MLflow store {tracking_uri} cannot be used: {error} "
                              f"({_store_hint(error)}); nothing was started") from None


def _store_hint(error: sqlite3.DatabaseError) -> str:
    text = str(error)
    if "readonly" in text or "read-only" in text:
        return "the file or its file system is read-only"
    if "not a database" in text or "malformed" in text:
        return "the file is corrupted: restore it from a backup, or move it away to start a new store"
    return "check the file and its permissions"


def is_full_disk(error: BaseException) -> bool:
    """Whether a write failed for lack of space (Arrow's errors carry the errno only in their message)."""
    return isinstance(error, OSError) and (error.errno in FULL_DISK_ERRNOS or "No space left on device" in str(error))


def describe_full_disk(error: BaseException, path: Path | None = None) -> str | None:
    """A person's account of a write to `path` that failed for lack of space, anywhere in the error's chain (None if not)."""
    seen = set()
    while error is not None and not is_full_disk(error) and id(error) not in seen:
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    if error is None or not is_full_disk(error):
        return None
    target = Path(path or getattr(error, "filename", None) or ".")
    return f"no space left on device writing {target} ({free_mb(target):.1f} MB free there); free some space and run again"


def require_usable_storage(settings: Settings) -> None:
    """Refuse to start, before any Dagster run exists, when a place the run writes to is full, read-only or corrupted."""
    places = {"the product's home (OK_ML_HOME)": settings.home, "the data registry": settings.registry_repo}
    if "://" not in settings.dvc_remote:
        places["the DVC remote"] = Path(settings.dvc_remote)
    store = sqlite_path(settings.mlflow_tracking_uri)
    if store is not None:
        places["the MLflow store"] = store
    require_free_space(places)
    require_writable_mlflow_store(settings.mlflow_tracking_uri)


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file renamed over `path`, so readers see the old value or the new one, never a part.

    A failed write leaves no temporary file; a full disk says where and how much space is left.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + PARTIAL_SUFFIX)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        full = describe_full_disk(error, tmp)
        if full is not None:
            raise StorageUnusable(f"cannot store {path.name}: {full}") from None
        raise


def replace_folder(path: Path, write: Callable[[Path], object]) -> None:
    """Write a folder (a partitioned dataset) beside `path`, then swap it in: readers never see a half-written one.

    The old folder (or file) is moved aside first and removed after the swap, so a failure leaves it in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = path.with_name(path.name + PARTIAL_SUFFIX), path.with_name(path.name + ".old" + PARTIAL_SUFFIX)
    remove_path(tmp)
    remove_path(old)
    try:
        write(tmp)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException as error:
        remove_path(tmp)
        full = describe_full_disk(error, tmp)
        if full is not None:
            raise StorageUnusable(f"cannot store {path.name}: {full}") from None
        raise
    finally:
        remove_path(old)


def remove_path(path: Path) -> None:
    """Remove a file or a folder, if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
