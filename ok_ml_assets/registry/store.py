"""The registry repository: DVC stores each version's bytes, a ledger records tag, md5, rows and source."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from ok_ml_assets.preflight import describe_full_disk, free_mb, write_atomically
from ok_ml_assets.registry.catalog import (
    DATASET_NAME,
    TAG,
    Catalog,
    DatasetContract,
    load_catalog,
)
from ok_ml_assets.settings import Settings

LEDGER = "versions.json"
DEPRECATIONS = "deprecated.json"
LOCK_TIMEOUT_SECONDS = 600
GIT_IDENTITY = ["-c", "user.name=ok-ml registry", "-c", "user.email=registry@ok-ml.local"]


class RegistryError(ValueError):
    """A registry operation refused, with what was wrong; the registry is left unchanged."""


@dataclass(frozen=True)
class DatasetVersion:
    """One registered version of a dataset."""

    name: str
    tag: str
    md5: str
    rows: int
    size_bytes: int
    created_at: str
    source: str
    seq: int

    @property
    def ref(self) -> str:
        """NAME@TAG."""
        return f"{self.name}@{self.tag}"


@dataclass(frozen=True)
class Deprecation:
    """A version taken back: no window or sensor reads it, its bytes stay in the remote and its .dvc file in git history."""

    version: DatasetVersion
    reason: str
    deprecated_at: str
    registered_in: str

    @property
    def ref(self) -> str:
        """NAME@TAG."""
        return self.version.ref


@dataclass(frozen=True)
class Registration:
    """A file to register as NAME@TAG."""

    name: str
    tag: str
    path: Path
    source: str = ""


def _is_iso_date(tag: str) -> bool:
    try:
        dt.date.fromisoformat(tag)
    except ValueError:
        return False
    return len(tag) == 10


def file_md5(path: Path) -> str:
    """The md5 of a file's bytes, as DVC records it."""
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


# md5 of files already read in this process, by path and (inode, size, mtime): the steps of a run read one window many times.
_HASHED: dict[str, tuple[tuple[int, int, int], str]] = {}


def _holds(path: Path, md5: str) -> bool:
    """Whether the file at `path` exists and has the md5 `md5`; hashed once per process while its stat is unchanged."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    seen = _HASHED.get(str(path))
    if seen is None or seen[0] != key:
        seen = _HASHED[str(path)] = (key, file_md5(path))
    return seen[1] == md5


def _known(ledger: dict, checked: tuple[Registration, str, int]) -> dict | None:
    """The ledger entry of an already registered NAME@TAG with the same bytes; an error if the bytes differ."""
    registration, md5, _ = checked
    existing = ledger.get(registration.name, {}).get(registration.tag)
    if existing is not None and existing["md5"] != md5:
        raise RegistryError(
            f"{registration.name}@{registration.tag} is already registered with other content "
            f"(md5 {existing['md5']}, new {md5}); register the new data under a new tag"
        )
    return existing


def _same_bytes_elsewhere(ledger: dict, deprecated: dict, checked: tuple[Registration, str, int]) -> str | None:
    """Why these bytes are suspicious for this NAME@TAG: already registered under another tag, or deprecated."""
    registration, md5, _ = checked
    for tag, entry in ledger.get(registration.name, {}).items():
        if entry["md5"] == md5 and tag != registration.tag:
            return f"the same bytes are already registered as {registration.name}@{tag}"
    for entry in deprecated.get(registration.name, []):
        if entry["version"]["md5"] == md5:
            return f"the same bytes were deprecated as {registration.name}@{entry['version']['tag']} ({entry['reason']})"
    return None


def _unique(checked: list[tuple[Registration, str, int]]) -> list[tuple[Registration, str, int]]:
    """One entry per NAME@TAG of a batch; the same NAME@TAG twice with different bytes is refused."""
    seen: dict[tuple[str, str], tuple[Registration, str, int]] = {}
    for item in checked:
        ref = (item[0].name, item[0].tag)
        if ref in seen and seen[ref][1] != item[1]:
            raise RegistryError(f"{ref[0]}@{ref[1]} appears twice in one batch with different content")
        seen.setdefault(ref, item)
    return list(seen.values())


def _remember_hashes(repo, paths: list[Path], md5s: list[str]) -> None:
    """Tell DVC the md5 of each copied file, computed while checking it, so `add` does not read the bytes again."""
    from dvc_data.hashfile.hash_info import HashInfo

    repo.state.save_many(((str(path), HashInfo("md5", md5), None) for path, md5 in zip(paths, md5s)), repo.fs)


def _run_git(root: Path, *args: str) -> None:
    subprocess.run(["git", *GIT_IDENTITY, *args], cwd=root, check=True, capture_output=True, text=True)


def _git_head(root: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


class DataRegistry:
    """Client of one registry repository (git + DVC) whose remote holds the data."""

    def __init__(self, root: Path, remote: str, catalog: Catalog):
        self.root = Path(root)
        self.remote = remote
        self.catalog = catalog

    # -- reading -----------------------------------------------------------------------------

    def _ledger(self) -> dict[str, dict[str, dict]]:
        path = self.root / LEDGER
        return json.loads(path.read_text()) if path.exists() else {}

    def versions(self, name: str | None = None) -> list[DatasetVersion]:
        """Registered versions, of one dataset or of all, in registration order."""
        ledger = self._ledger()
        names = [name] if name else sorted(ledger)
        found = [DatasetVersion(**v) for n in names for v in ledger.get(n, {}).values()]
        return sorted(found, key=lambda v: v.seq)

    def versions_after(self, seq: int) -> list[DatasetVersion]:
        """Committed versions registered after `seq`, in registration order."""
        # Only the ledger at HEAD: a version whose commit failed is rolled back and its seq reused.
        ledger = self._committed_ledger()
        found = [DatasetVersion(**v) for tags in ledger.values() for v in tags.values() if v["seq"] > seq]
        return sorted(found, key=lambda v: v.seq)

    def _committed_ledger(self) -> dict[str, dict[str, dict]]:
        shown = subprocess.run(
            ["git", "show", f"HEAD:{LEDGER}"], cwd=self.root, capture_output=True, text=True
        ) if (self.root / ".git").exists() else None
        return json.loads(shown.stdout) if shown is not None and shown.returncode == 0 else {}

    def _deprecations(self) -> dict[str, list[dict]]:
        path = self.root / DEPRECATIONS
        return json.loads(path.read_text()) if path.exists() else {}

    def deprecations(self, name: str | None = None) -> list[Deprecation]:
        """Versions taken back, of one dataset or of all, oldest first."""
        found = [
            Deprecation(DatasetVersion(**d["version"]), d["reason"], d["deprecated_at"], d["registered_in"])
            for n, entries in self._deprecations().items() if name in (None, n) for d in entries
        ]
        return sorted(found, key=lambda d: d.deprecated_at)

    def _contract(self, name: str) -> DatasetContract:
        try:
            return self.catalog.contract(name)
        except KeyError as error:
            raise RegistryError(str(error.args[0])) from None

    def version(self, name: str, tag: str) -> DatasetVersion:
        """The version NAME@TAG, or an error saying what exists."""
        self._contract(name)
        entry = self._ledger().get(name, {}).get(tag)
        if entry is None:
            taken_back = [d for d in self.deprecations(name) if d.version.tag == tag]
            if taken_back:
                last = taken_back[-1]
                raise RegistryError(f"{last.ref} was deprecated on {last.deprecated_at}: {last.reason}; "
                                    "no replacement is registered for that tag")
            tags = sorted(self._ledger().get(name, {}))
            shown = ", ".join(tags[-5:]) if tags else "none"
            raise RegistryError(f"dataset {name!r} has no registered version {tag!r} (latest tags: {shown})")
        return DatasetVersion(**entry)

    def window(self, name: str, days: int | None, last_tag: str | None = None) -> list[DatasetVersion]:
        """The versions of the last `days` calendar days up to `last_tag` (default: the newest), all when `days` is None.

        A dataset that is not partitioned daily counts `days` in versions instead (its tags are not days).
        """
        versions = sorted(self.versions(name), key=lambda v: v.tag)
        if last_tag is not None:
            self.version(name, last_tag)
            versions = [v for v in versions if v.tag <= last_tag]
        if not versions:
            raise RegistryError(f"dataset {name!r} has no registered versions to read"
                                + (f" up to {last_tag}" if last_tag else ""))
        if not days:
            return versions
        if self._contract(name).partitioning != "daily":
            return versions[-days:]
        first = (dt.date.fromisoformat(versions[-1].tag) - dt.timedelta(days=days - 1)).isoformat()
        return [v for v in versions if v.tag >= first]

    def path(self, name: str, tag: str) -> Path:
        """A local path holding exactly the registered bytes of NAME@TAG, fetched from the remote if needed."""
        version = self.version(name, tag)
        path = self._data_path(name, tag)
        if not _holds(path, version.md5):
            # DVC's own repo lock gives up after a few seconds; a registration may push for longer.
            with self._lock():
                self._configure_remote()
                with self._repo() as repo:
                    repo.pull(targets=[str(self._dvc_file(name, tag))], force=True)
        if not _holds(path, version.md5):
            raise RegistryError(f"{version.ref}: stored bytes do not match the registered md5 {version.md5}")
        return path

    def get(self, name: str, tag: str, destination: Path) -> Path:
        """Copy the registered bytes of NAME@TAG to `destination`."""
        source = self.path(name, tag)
        destination = Path(destination)
        if destination.is_dir():
            destination = destination / f"{name}@{tag}.parquet"
        if not destination.parent.is_dir():
            raise RegistryError(f"{name}@{tag}: cannot write {destination}: folder {destination.parent} does not exist")
        shutil.copyfile(source, destination)
        return destination

    # -- writing -----------------------------------------------------------------------------

    def add(self, name: str, tag: str, path: Path, source: str = "", force: bool = False) -> DatasetVersion:
        """Validate and register one file as NAME@TAG."""
        return self.add_many([Registration(name, tag, Path(path), source)], force=force)[0]

    def add_many(self, registrations: list[Registration], force: bool = False, today: dt.date | None = None) -> list[DatasetVersion]:
        """Validate every file, then register all of them in one DVC commit; all or nothing.

        Refused unless `force`: bytes already registered (or deprecated) under another tag of the dataset.
        A daily tag after `today` (default: today in UTC) is always refused; a simulated world passes its own calendar.
        """
        today = today or dt.datetime.now(dt.UTC).date()
        checked = _unique([self._check(r, today) for r in registrations])
        if not checked:
            return []
        with self._lock():
            ledger = self._ledger()
            fresh = [c for c in checked if _known(ledger, c) is None]
            if not force:
                self._refuse_repeated_bytes(ledger, fresh)
            if fresh:
                self.ensure_initialized()
                self._store([r for r, _, _ in fresh], ledger, [(md5, rows) for _, md5, rows in fresh])
            ledger = self._ledger()
        return [DatasetVersion(**ledger[r.name][r.tag]) for r in registrations]

    def _refuse_repeated_bytes(self, ledger: dict, fresh: list[tuple[Registration, str, int]]) -> None:
        """Refuse bytes that another tag already holds: a file registered under the wrong day looks like this."""
        deprecated = self._deprecations()
        seen: dict[tuple[str, str], str] = {}
        for item in fresh:
            registration, md5, _ = item
            why = _same_bytes_elsewhere(ledger, deprecated, item)
            if why is None and (registration.name, md5) in seen:
                why = f"the same bytes are also in this batch as {registration.name}@{seen[(registration.name, md5)]}"
            if why is not None:
                raise RegistryError(f"{registration.name}@{registration.tag} ({registration.path}): {why}; "
                                    "a daily export repeated under another day is usually a mistake (use --force if it is not)")
            seen[(registration.name, md5)] = registration.tag

    def _check(self, registration: Registration, today: dt.date) -> tuple[Registration, str, int]:
        """Refuse a registration that is malformed, breaks its contract or reuses a tag for other bytes."""
        name, tag, path = registration.name, registration.tag, Path(registration.path)
        if not DATASET_NAME.match(name):
            raise RegistryError(f"dataset name {name!r} is not allowed: it must match {DATASET_NAME.pattern}")
        if not TAG.match(tag) or ".." in tag:
            raise RegistryError(f"{name}: tag {tag!r} is not allowed: it must match {TAG.pattern} without '..'")
        contract = self._contract(name)
        if contract.partitioning == "daily" and not _is_iso_date(tag):
            raise RegistryError(f"{name}@{tag}: {name!r} is partitioned daily, so its tag must be the day it covers (YYYY-MM-DD)")
        if contract.partitioning == "daily" and dt.date.fromisoformat(tag) > today:
            raise RegistryError(f"{name}@{tag}: the tag names a day after today ({today}); "
                                "a future tag would count as the latest version of every window")
        if not path.is_file():
            raise RegistryError(f"{name}@{tag}: {path} is not a file")
        if path.stat().st_size == 0:
            raise RegistryError(f"{name}@{tag}: {path} is empty (0 bytes), not a parquet file")
        md5 = file_md5(path)
        # Checked again under the lock; this early look only spares validating bytes already registered.
        existing = _known(self._ledger(), (registration, md5, 0))
        if existing is not None:
            return registration, md5, existing["rows"]
        from ok_ml_assets.registry.validation import validate_file  # DuckDB and Arrow, only when registering

        try:
            rows, violations = validate_file(path, contract, tag)
        except ValueError as error:
            raise RegistryError(f"{name}@{tag}: {error}") from None
        if violations:
            details = "\n".join(f"  {v}" for v in violations)
            raise RegistryError(f"{name}@{tag} ({path}) breaks the contract of {name!r}:\n{details}")
        return registration, md5, rows

    def _store(self, registrations: list[Registration], ledger: dict, facts: list[tuple[str, int]]) -> None:
        """Copy, DVC-add, push and commit; on any failure restore the repository as it was."""
        from dvc.exceptions import DvcException

        copied = []
        new_objects = [o for o in (self._cache_object(md5) for md5, _ in facts) if not o.exists()]
        try:
            for r in registrations:
                target = self._data_path(r.name, r.tag)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(r.path, target)
                copied.append(target)
            with self._repo() as repo:
                _remember_hashes(repo, copied, [md5 for md5, _ in facts])
                repo.add([str(p) for p in copied])
                repo.push(targets=[str(p) + ".dvc" for p in copied])
            self._write_ledger(self._with_versions(ledger, registrations, facts))
            _run_git(self.root, "add", "-A")
            _run_git(self.root, "commit", "-q", "-m", "register " + ", ".join(f"{r.name}@{r.tag}" for r in registrations))
        except BaseException as error:
            self._rollback(copied)
            self._drop_partial_objects(new_objects)
            refs = ", ".join(f"{r.name}@{r.tag}" for r in registrations)
            full = describe_full_disk(error, self.root)
            if full is not None:
                raise RegistryError(f"{refs}: nothing was registered: {full} (registry {self.root}, remote {self.remote})") from None
            # A remote scheme whose DVC plugin is missing fails with ImportError, a user's configuration mistake.
            if isinstance(error, (DvcException, ImportError)):
                raise RegistryError(f"{refs}: could not store the data in DVC (remote {self.remote}): {error}"
                                    f"{self._remote_space(registrations)}") from None
            raise

    def deprecate(self, name: str, tag: str, reason: str) -> Deprecation:
        """Take NAME@TAG back: windows and sensors stop reading it, a replacement may be registered under its tag.

        Nothing is deleted: the entry moves to the deprecations ledger with the reason, the .dvc file stays in git history
        and the bytes in the remote.
        """
        if not reason.strip():
            raise RegistryError(f"{name}@{tag}: say why it is deprecated (--reason)")
        with self._lock():
            version = self.version(name, tag)
            facts = {"version": asdict(version), "reason": reason.strip(), "registered_in": _git_head(self.root),
                     "deprecated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
            ledger = self._ledger()
            del ledger[name][tag]
            deprecated = self._deprecations()
            deprecated.setdefault(name, []).append(facts)
            try:
                _run_git(self.root, "rm", "-q", "--", str(self._dvc_file(name, tag).relative_to(self.root)))
                self._write_ledger(ledger)
                self._write_json(DEPRECATIONS, deprecated)
                _run_git(self.root, "add", "-A")
                _run_git(self.root, "commit", "-q", "-m", f"deprecate {version.ref}: {facts['reason']}")
            except BaseException:
                self._rollback([])
                raise
            self._data_path(name, tag).unlink(missing_ok=True)
        return self.deprecations(name)[-1]

    def _remote_space(self, registrations: list[Registration]) -> str:
        """Why a local remote refused the upload when the cause is space (DVC only logs the ENOSPC behind it)."""
        if "://" in self.remote:
            return ""
        needed, free = sum(r.path.stat().st_size for r in registrations) / 1e6, free_mb(Path(self.remote))
        return f"; no space left on device: {free:.1f} MB free at the remote, the data needs {needed:.1f} MB" if free < needed else ""

    def _with_versions(self, ledger: dict, registrations: list[Registration], facts: list[tuple[str, int]]) -> dict:
        # Deprecated versions keep their seq: a replacement must come after every sensor cursor that saw them.
        retired = (d["version"]["seq"] for entries in self._deprecations().values() for d in entries)
        seq = max([v["seq"] for tags in ledger.values() for v in tags.values()] + list(retired), default=0)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        updated = {name: dict(tags) for name, tags in ledger.items()}
        for r, (md5, rows) in zip(registrations, facts):
            seq += 1
            version = DatasetVersion(
                name=r.name, tag=r.tag, md5=md5, rows=rows, size_bytes=r.path.stat().st_size,
                created_at=now, source=r.source or str(r.path), seq=seq,
            )
            updated.setdefault(r.name, {})[r.tag] = asdict(version)
        return updated

    def _write_ledger(self, ledger: dict) -> None:
        self._write_json(LEDGER, ledger)

    def _write_json(self, name: str, content: dict) -> None:
        text = json.dumps(content, indent=1, sort_keys=True)
        write_atomically(self.root / name, lambda path: path.write_text(text))

    def _drop_partial_objects(self, new_objects: list[Path]) -> None:
        """Remove what a failed attempt added to the cache, and DVC's partial uploads in a local remote."""
        for path in new_objects:
            path.unlink(missing_ok=True)
        if "://" not in self.remote:
            for prefix in {p.parent.name for p in new_objects}:
                for partial in (Path(self.remote) / "files" / "md5" / prefix).glob(".*.tmp"):
                    partial.unlink(missing_ok=True)

    def _cache_object(self, md5: str) -> Path:
        return self.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]

    def _rollback(self, copied: list[Path]) -> None:
        """Return the repository to its last commit; pushed objects are content-addressed and harmless."""
        for path in copied:
            path.unlink(missing_ok=True)
        # A hard reset, not a checkout: DVC's autostage has already staged the new .dvc and .gitignore files.
        subprocess.run(["git", "reset", "-q", "--hard", "HEAD"], cwd=self.root, capture_output=True)
        subprocess.run(["git", "clean", "-fdq", "--", "datasets"], cwd=self.root, capture_output=True)

    # -- plumbing ----------------------------------------------------------------------------

    def _data_path(self, name: str, tag: str) -> Path:
        return self.root / "datasets" / name / f"{tag}.parquet"

    def _dvc_file(self, name: str, tag: str) -> Path:
        return Path(str(self._data_path(name, tag)) + ".dvc")

    def _lock(self) -> FileLock:
        """The lock every writer of this registry holds, beside the repository so it exists before it."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root) + ".lock", timeout=LOCK_TIMEOUT_SECONDS)

    @contextlib.contextmanager
    def _repo(self):
        """An open DVC repo whose console chatter is kept out of the product's output."""
        from dvc.repo import Repo

        with contextlib.redirect_stdout(io.StringIO()), Repo(str(self.root)) as repo:
            yield repo

    def ensure_initialized(self) -> None:
        """Create the registry repository (git + DVC, remote configured) if it does not exist yet."""
        if (self.root / ".dvc").is_dir():
            self._configure_remote()
            return
        from dvc.repo import Repo

        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / ".git").exists():
            subprocess.run(["git", "init", "-q", "-b", "main"], cwd=self.root, check=True)
        with contextlib.redirect_stdout(io.StringIO()):
            repo = Repo.init(str(self.root))
            with repo.config.edit() as conf:
                conf["core"]["autostage"] = True
            repo.close()
        self._configure_remote()
        (self.root / ".gitignore").write_text(f"{LEDGER}.tmp\n{DEPRECATIONS}.tmp\n")
        _run_git(self.root, "add", "-A")
        _run_git(self.root, "commit", "-q", "-m", "initialize the data registry")

    def _configure_remote(self) -> None:
        """Point DVC at this client's remote in the untracked local config: the URL is per machine, not data."""
        with self._repo() as repo:
            if repo.config.get("remote", {}).get("storage", {}).get("url") == self.remote:
                return
            if "://" not in self.remote:
                Path(self.remote).mkdir(parents=True, exist_ok=True)
            with repo.config.edit("local") as conf:
                conf["remote"]["storage"] = {"url": self.remote}
                conf["core"]["remote"] = "storage"


def registry_client(settings: Settings) -> DataRegistry:
    """The registry the settings point at."""
    return DataRegistry(settings.registry_repo, settings.dvc_remote, load_catalog(settings.catalog_path))
