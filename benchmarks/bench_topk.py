"""Top-K scoring against the bare matrix product it cannot beat, and against the implementation before issue 14.

Run from the project root: `.venv/bin/python benchmarks/bench_topk.py [--repeats N] [--large-users N]`. For the
default preset's shape (50,000 users x 5,000 sources) and the large preset's (1,000,000 x 100,000: a sample of its
users, 20,000 by default, since the rate per user does not depend on how many there are), with prod_discovery's
factors and top_k (from its committed YAML) and 1% of each user's sources excluded, it prints GFLOP/s
(users x sources x factors x 2 / s) of:

- `sgemm`: `U_block @ S_tile` in float32 over the product's own blocks and tiles and threads, no selection: the peak;
- `top_k`: the product (`scoring.top_k`);
- `before`: the implementation before issue 14 (copied below), with BLAS's own threads, on at most `--before-users`.

Figures are the best of `--repeats`; on a machine shared with other work they move between runs, the ratio in one
run less so. The product's lists are checked against the old implementation's on the users both scored.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from summary import record  # benchmarks/ is on sys.path when a script runs
from threadpoolctl import threadpool_info, threadpool_limits

from ok_ml_assets.configs import load_experiment_config
from ok_ml_assets.pipeline_types.recommendation_als import scoring
from ok_ml_assets.settings import PROJECT_ROOT

SHAPES = {"default": (50_000, 5_000), "large": (1_000_000, 100_000)}
EXCLUDED_SHARE = 0.01


def before_top_k(user_factors, source_factors, exclude, k, block=4096):
    """top_k as it was before issue 14: BLAS-threaded blocks of 4096 users, then argpartition of every score."""
    n_users, n_sources = user_factors.shape[0], source_factors.shape[0]
    k_eff = min(k, n_sources)
    items = np.full((n_users, k), -1, dtype=np.int64)
    scores = np.full((n_users, k), -np.inf, dtype=np.float32)
    source_t = np.ascontiguousarray(source_factors.T)
    for start in range(0, n_users, block):
        stop = min(start + block, n_users)
        block_scores = user_factors[start:stop] @ source_t
        excluded = exclude[start:stop].tocoo()
        block_scores[excluded.row, excluded.col] = -np.inf
        best = np.argpartition(block_scores, n_sources - k_eff, axis=1)[:, n_sources - k_eff:]
        best_scores = np.take_along_axis(block_scores, best, axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")
        best, best_scores = np.take_along_axis(best, order, axis=1), np.take_along_axis(best_scores, order, axis=1)
        best[~np.isfinite(best_scores)] = -1
        items[start:stop, :k_eff], scores[start:stop, :k_eff] = best, best_scores
    return items, scores


def sgemm_over_blocks(users: np.ndarray, sources: np.ndarray, k: int, threads: int) -> None:
    """The product's matrix products alone: the same user blocks, source tiles, threads and output buffers."""
    tiles = scoring.SourceTiles(sources, k)
    block = max(8, scoring.BLOCK_BYTES // (4 * tiles.columns))
    buffers = threading.local()

    def work(start: int) -> None:
        out = buffers.__dict__.setdefault("out", np.empty((block, tiles.columns), dtype=np.float32))
        for factors in tiles.factors:
            np.matmul(users[start : start + block], factors, out=out[: min(block, users.shape[0] - start)])

    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(0, users.shape[0], block)))


def random_exclusions(rng: np.random.Generator, n_users: int, n_sources: int) -> sp.csr_matrix:
    """About EXCLUDED_SHARE of every user's sources, as the CSR matrix the product builds."""
    per_user = max(1, int(n_sources * EXCLUDED_SHARE))
    indices = np.sort(rng.integers(0, n_sources, size=(n_users, per_user)), axis=1).ravel()
    indptr = np.arange(n_users + 1, dtype=np.int64) * per_user
    return sp.csr_matrix((np.ones(indices.size, np.float32), indices, indptr), shape=(n_users, n_sources))


def best_seconds(run, repeats: int) -> float:
    """The fastest of `repeats` timed calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_shape(name: str, n_users: int, n_sources: int, factors: int, k: int, args, threads: int) -> None:
    """Print the three rows and the ratios for one shape."""
    rng = np.random.default_rng(0)
    users = (rng.normal(size=(n_users, factors)) / np.sqrt(factors)).astype(np.float32)
    sources = rng.normal(size=(n_sources, factors)).astype(np.float32)
    exclude = random_exclusions(rng, n_users, n_sources)
    before_users = min(n_users, args.before_users)
    gflop = 2 * factors * n_sources / 1e9
    peak = n_users * gflop / best_seconds(lambda: sgemm_over_blocks(users, sources, k, threads), args.repeats)
    result = {}
    run_product = lambda: result.update(top=scoring.top_k(users, sources, exclude, k, threads=threads))  # noqa: E731
    product = n_users * gflop / best_seconds(run_product, args.repeats)
    old = {}
    before = before_users * gflop / best_seconds(
        lambda: old.update(top=before_top_k(users[:before_users], sources, exclude[:before_users], k)), 1)
    same = np.mean(np.all(result["top"][0][:before_users] == old["top"][0], axis=1))
    sample = f" (a sample of {n_users:,} users of the preset's {SHAPES[name][0]:,})" if n_users < SHAPES[name][0] else ""
    print(f"\n{name}: {n_users:,} users x {n_sources:,} sources, {factors} factors, k={k}, "
          f"{EXCLUDED_SHARE:.0%} of pairs excluded{sample}")
    print(f"  {'sgemm (same blocks, no selection)':<40} {peak:7.1f} GFLOP/s")
    print(f"  {'top_k (product)':<40} {product:7.1f} GFLOP/s   {product / peak:5.0%} of sgemm")
    print(f"  {f'before (first {before_users:,} users)':<40} {before:7.1f} GFLOP/s   {before / peak:5.0%} of sgemm"
          f"   product x{product / before:.1f}")
    print(f"  same lists as before for {same:.2%} of those users (ties may order differently: lower source first now)")
    record(f"top-K scoring, {name} shape", product, peak, "GFLOP/s", "sgemm, same blocks", "at least 0.5x")


def main() -> None:
    """Parse arguments, then bench the default and the large shape."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-users", type=int, default=20_000)
    parser.add_argument("--before-users", type=int, default=50_000, help="users the old implementation scores (large: at most 4,096)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    config = load_experiment_config(PROJECT_ROOT / "asset_configs" / "prod_discovery.yml")
    factors, k = config.model.factors, config.recommendations.top_k
    threads = args.threads or scoring.usable_cores()
    blas = ", ".join(f"{info['internal_api']} {info['num_threads']}" for info in threadpool_info() if info["user_api"] == "blas")
    print(f"threads: top_k and sgemm {threads} (each with 1 BLAS thread); before: BLAS's own ({blas})")
    bench_shape("default", *SHAPES["default"], factors, k, args, threads)
    # The old implementation holds 4,096 x 100,000 scores and their int64 partition at once (about 5 GB): cap it.
    args.before_users = min(args.before_users, 4_096)
    bench_shape("large", args.large_users, SHAPES["large"][1], factors, k, args, threads)


if __name__ == "__main__":
    main()
