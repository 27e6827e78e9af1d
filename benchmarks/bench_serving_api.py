"""The read API's throughput and latency on loopback, against a bare in-process store read loop as the baseline.

Run: `.venv/bin/python benchmarks/bench_serving_api.py` (about 2 minutes; `wrk` on the PATH is used for the closed-loop
levels, else a raw-socket asyncio client). The store holds ~100k prod_discovery-like values (top-20 lists, ~1 KB each);
every request asks for a random rollout-arm key, so each one reads the store. The API runs under uvicorn in a subprocess
(one worker, as `serve_api` runs it), once with store reads inline on the event loop and once offloaded to threads.
The fixed-rate figure is open loop: requests are scheduled every 1 ms and latency counts from the scheduled send time,
so a stall shows in full instead of slowing the sender down (no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ok_ml_assets.lifecycle.publication import rollout_bucket
from ok_ml_assets.serving.store import CURRENT, Generation

EXPERIMENT = "prod_discovery"
SALT = "bench-ab"
FRACTION = 0.5
ENTITIES = 200_000  # about half are in the rollout arm and published
TOP_K = 20
LEVELS = (1, 8, 32)
RATE, RATE_SECONDS = 1_000, 10
LEVEL_SECONDS = 8
BASELINE_READS = 200_000
REQUEST_KEYS = 10_000


class DictStore:
    """The OnlineStore over dicts, the fallback when the LMDB store is not there."""

    def __init__(self):
        self.values: dict[str, dict[str, bytes]] = {}
        self.meta_values: dict[str, bytes] = {}

    def commit(self, values: Sequence[tuple[str, str, bytes]], meta: Mapping[str, bytes | None], offsets: Mapping[str, int]) -> None:
        for namespace, key, value in values:
            self.values.setdefault(namespace, {})[key] = value
        self.meta_values.update({key: value for key, value in meta.items() if value is not None})

    def offsets(self) -> dict[str, int]:
        return {}

    def meta(self, key: str) -> bytes | None:
        return self.meta_values.get(key)

    def meta_items(self, prefix: str) -> dict[str, bytes]:
        return {key: value for key, value in self.meta_values.items() if key.startswith(prefix)}

    def get(self, namespace: str, key: str) -> bytes | None:
        return self.values.get(namespace, {}).get(key)

    def get_many(self, namespace: str, keys: Sequence[str]) -> list[bytes | None]:
        values = self.values.get(namespace, {})
        return [values.get(key) for key in keys]

    def drop(self, namespace: str) -> int:
        return len(self.values.pop(namespace, {}))

    def close(self) -> None:
        pass


def open_store(path: Path):
    """(store, kind): the LMDB store at `path` if the product has one yet, else a dict store."""
    try:
        from ok_ml_assets.serving.lmdb_store import LmdbStore
    except ImportError:
        return DictStore(), "in-memory dict (LmdbStore not available)"
    return LmdbStore(path), "LmdbStore"


def rollout_ids() -> list[int]:
    """The published entities: those of the rollout arm."""
    return [u for u in range(ENTITIES) if rollout_bucket(u, SALT) < FRACTION]


def seed(store) -> list[int]:
    """Publish and serve one generation of prod_discovery-like values; return the published ids."""
    generated_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    ids = rollout_ids()
    generation = Generation(EXPERIMENT, "bench-1", EXPERIMENT, "7", "run-bench", generated_at, f"ok_ml.{EXPERIMENT}", FRACTION, SALT,
                            len(ids), {"items": [], "popular": True}, time.time())
    rng = random.Random(0)
    values = []
    for u in ids:
        items = [{"source_id": rng.randrange(50_000), "score": round(rng.random(), 6)} for _ in range(TOP_K)]
        body = {"schema": "ok_ml.recommendations", "version": 1, "user_id": u, "items": items, "experiment": EXPERIMENT,
                "model": {"name": EXPERIMENT, "version": "7"}, "run_id": "run-bench", "generated_at": generated_at}
        values.append((generation.namespace, str(u), json.dumps(body, separators=(",", ":")).encode()))
    store.commit(values, {CURRENT + EXPERIMENT: generation.to_bytes()}, {})
    return ids


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The value at `fraction` of sorted values (nearest rank)."""
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def baseline(store, ids: list[int]) -> tuple[float, float, float]:
    """(reads/s, p50 µs, p99 µs) of `get` on random published keys in a bare loop."""
    namespace = f"{EXPERIMENT}/bench-1"
    keys = [str(k) for k in random.Random(1).choices(ids, k=BASELINE_READS)]
    latencies = []
    clock = time.perf_counter_ns
    start = time.perf_counter()
    for key in keys:
        began = clock()
        store.get(namespace, key)
        latencies.append(clock() - began)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return len(keys) / elapsed, percentile(latencies, 0.5) / 1e3, percentile(latencies, 0.99) / 1e3


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(store_path: Path, port: int, offload: bool, log: Path) -> subprocess.Popen:
    """The API under uvicorn in a subprocess, once it answers /health."""
    command = [sys.executable, __file__, "--serve", str(store_path), str(port)] + (["--offload"] if offload else [])
    server = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the API exited with {server.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"GET /ready HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if conn.recv(64).startswith(b"HTTP/1.1 200"):
                    return server
        except OSError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"the API did not become ready:\n{log.read_text()}")


def stop(server: subprocess.Popen) -> None:
    """Stop the API subprocess."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def wrk_script(keys: list[int], directory: Path) -> Path:
    """A wrk Lua script asking for random keys of `keys`."""
    script = directory / "keys.lua"
    script.write_text("local keys = {" + ",".join(f'"{k}"' for k in keys) + "}\n"
                      f'request = function() return wrk.format("GET", "/v1/{EXPERIMENT}/" .. keys[math.random(#keys)]) end\n')
    return script


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_level(port: int, connections: int, script: Path) -> tuple[float, float, float]:
    """(req/s, p50 ms, p99 ms) of wrk holding `connections` connections busy for LEVEL_SECONDS."""
    output = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{LEVEL_SECONDS}s", "--latency", "-s", str(script),
                             f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses|Socket errors", output):
        raise RuntimeError(f"wrk saw errors:\n{output}")

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE).groups()
        return float(value) * UNITS[unit]

    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), latency("50"), latency("99")


async def request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: int) -> None:
    """One keep-alive GET, its response read to the end."""
    writer.write(f"GET /v1/{EXPERIMENT}/{key} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response: {head[:80]!r}")
    length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))
    await reader.readexactly(length)


async def closed_loop(port: int, connections: int, keys: list[int]) -> tuple[float, float, float]:
    """(req/s, p50 ms, p99 ms) of `connections` clients each sending its next request when the last is answered."""
    latencies: list[float] = []
    deadline = time.perf_counter() + LEVEL_SECONDS

    async def client(seed_: int) -> None:
        rng = random.Random(seed_)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (began := time.perf_counter()) < deadline:
            await request(reader, writer, rng.choice(keys))
            latencies.append(time.perf_counter() - began)
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return len(latencies) / elapsed, percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3


async def open_loop(port: int, keys: list[int], rate: int, seconds: int, connections: int = 64) -> tuple[float, float, float]:
    """(req/s, p50 ms, p99 ms) of requests scheduled every 1/rate s, latency counted from each one's scheduled time."""
    total = rate * seconds
    queue: asyncio.Queue = asyncio.Queue()
    latencies: list[float] = []
    rng = random.Random(2)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (scheduled := await queue.get()) is not None:
            await request(reader, writer, rng.choice(keys))
            latencies.append(time.perf_counter() - scheduled)
        writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    await asyncio.sleep(0.2)  # connections open before the clock starts
    start = time.perf_counter()
    for i in range(total):
        scheduled = start + i / rate
        if (wait := scheduled - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        queue.put_nowait(scheduled)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return len(latencies) / elapsed, percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3


def event_loop_runner():
    """asyncio.run, on uvloop when it is installed (the client must not be the bottleneck)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def measure(port: int, keys: list[int], script: Path | None) -> list[tuple[str, tuple[float, float, float]]]:
    """Every level's (label, (req/s, p50 ms, p99 ms)) against the API on `port`."""
    run = event_loop_runner()
    run(closed_loop(port, 4, keys[:500]))  # warm up: imports, caches, page cache
    rows = []
    for level in LEVELS:
        figures = wrk_level(port, level, script) if script else run(closed_loop(port, level, keys))
        rows.append((f"c={level}", figures))
    rows.append((f"{RATE:,} req/s open loop, {RATE_SECONDS} s", run(open_loop(port, keys, RATE, RATE_SECONDS))))
    return rows


def serve(store_path: Path, port: int, offload: bool) -> None:
    """The API subprocess: the store at `store_path` (seeded here if it is a dict store) served as `serve_api` serves it."""
    import uvicorn

    from ok_ml_assets.serving.api import build_app, serve_api

    store, _ = open_store(store_path)
    if isinstance(store, DictStore):
        seed(store)
    if offload:
        uvicorn.run(build_app(store, offload_reads=True), host="127.0.0.1", port=port, workers=1, access_log=False, loop="auto")
    else:
        serve_api(store, port=port)


def main() -> None:
    """Seed a store, measure the bare read loop, then the API inline and offloaded; print one table."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        store, kind = open_store(directory / "store")
        started = time.perf_counter()
        ids = seed(store)
        seeded = time.perf_counter() - started
        reads, p50_us, p99_us = baseline(store, ids)
        keys = random.Random(3).sample(ids, REQUEST_KEYS)
        script = wrk_script(keys, directory) if shutil.which("wrk") else None
        results = {}
        for offload in (False, True):
            port = free_port()
            server = start_server(directory / "store", port, offload, directory / "server.log")
            try:
                results[offload] = measure(port, keys, script)
            finally:
                stop(server)
        store.close()

    generator = "wrk -t1 (closed loop)" if script else "raw-socket asyncio client (closed loop; wrk not found)"
    print(f"store: {kind}, {len(ids):,} values of ~1 KB seeded in {seeded:.1f} s; API: uvicorn, 1 worker, loopback, 2 cores shared")
    print(f"load: {generator} for c=1/8/32 over {LEVEL_SECONDS} s; raw-socket open-loop client for the fixed rate")
    print(f"machine: {os.cpu_count()} cores, 1-minute load average {os.getloadavg()[0]:.1f} at the end (other processes share the cores)")
    print()
    print(f"{'level':58} {'req/s':>10} {'p50':>10} {'p99':>10}")
    print(f"{'baseline: bare store.get loop (in process)':58} {reads:>10,.0f} {p50_us:>7.1f} µs {p99_us:>7.1f} µs")
    for offload, rows in results.items():
        mode = "reads offloaded to threads" if offload else "reads inline on the loop"
        for label, (rate, p50, p99) in rows:
            print(f"{f'API, {mode}, {label}':58} {rate:>10,.0f} {p50:>7.2f} ms {p99:>7.2f} ms")
    p99_inline = results[False][-1][1][2]
    print()
    print(f"aim p99 <= 10 ms at {RATE:,} req/s (inline reads): {'met' if p99_inline <= 10 else 'NOT met'} ({p99_inline:.2f} ms)")


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--serve", nargs=2, metavar=("STORE", "PORT"), help=argparse.SUPPRESS)
    arguments.add_argument("--offload", action="store_true", help=argparse.SUPPRESS)
    options = arguments.parse_args()
    if options.serve:
        serve(Path(options.serve[0]), int(options.serve[1]), options.offload)
    else:
        main()
