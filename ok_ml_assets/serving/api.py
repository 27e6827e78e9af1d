"""The read API by key: an entity's value in its experiment's served generation, or the experiment's fallback, with metrics."""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ok_ml_assets.lifecycle.publication import CONTROL, ROLLOUT, rollout_bucket
from ok_ml_assets.serving.metrics import ServingMetrics, epoch_seconds
from ok_ml_assets.serving.store import CURRENT, Generation, OnlineStore

MAX_BATCH = 1000
MAX_KEY_CHARS = 128
# Every key at its longest, quoted and comma-separated, plus the object around them.
MAX_BATCH_BYTES = MAX_BATCH * (MAX_KEY_CHARS + 3) + 1024
DECIMAL = re.compile(r"-?[0-9]+")
# A read can meet the generation it started from already dropped by a flip; it then starts over from the new pointer.
READ_ATTEMPTS = 3
UNMATCHED = "unmatched"


@dataclass(frozen=True)
class Served:
    """A served generation as answers need it: the record, its model and its generation time in epoch seconds."""

    generation: Generation
    model: dict
    generated_at: float
    fallback: bytes

    def head(self, experiment: str) -> dict:
        """What every answer from this generation starts with: the experiment, model, generation and its age in seconds."""
        return {"experiment": experiment, "model": self.model, "generation_id": self.generation.generation_id,
                "age_seconds": round(time.time() - self.generated_at, 3)}


@functools.lru_cache(maxsize=256)
def served_from(pointer: bytes) -> Served:
    """The served generation a pointer value names, parsed once per distinct value (it changes only on a flip)."""
    generation = Generation.from_bytes(pointer)
    model = {"name": generation.model_name, "version": generation.model_version}
    return Served(generation, model, epoch_seconds(generation.generated_at), compact(generation.fallback))


def checked_key(key: object) -> str:
    """A requested key as text; 400 when it is empty, oversized or not a string or integer."""
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    if not isinstance(key, str) or not key:
        raise HTTPException(400, f"a key is a non-empty string or integer, got {json.dumps(key)}")
    if len(key) > MAX_KEY_CHARS:
        raise HTTPException(400, f"a key has at most {MAX_KEY_CHARS} characters, got {len(key)}")
    return key


def store_key(key: str) -> str | None:
    """The store's key of an entity (its id in canonical decimal, as published), or None when the key names no entity id."""
    return str(int(key)) if DECIMAL.fullmatch(key) else None


def arm_of(entity: str | None, generation: Generation) -> str | None:
    """The A/B arm of an entity, the same split publication made; None for keys that are not entity ids."""
    if entity is None:
        return None
    return ROLLOUT if rollout_bucket(int(entity), generation.salt) < generation.rollout_fraction else CONTROL


def compact(document: object) -> bytes:
    """A document as compact JSON."""
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def with_value(document: dict, value: bytes, name: str = "value") -> bytes:
    """The document as JSON with `value`, already JSON, spliced in as its last field `name`.

    Stored values go out as stored: the ingester keeps only messages that parse as JSON, and decoding and re-encoding
    a ~1 KB top-K list was the largest cost of a request.
    """
    return compact(document)[:-1] + b',"' + name.encode() + b'":' + value + b"}"


def answer(key: object, arm: str | None, value: bytes | None, served: Served, head: dict | None = None) -> bytes:
    """One key's answer as JSON, after `head`: its published value in the rollout arm, else the experiment's fallback and why."""
    if value is not None:
        return with_value({**(head or {}), "key": key, "arm": arm, "fallback": False}, value)
    reason = "control arm" if arm == CONTROL else "unknown key"
    return with_value({**(head or {}), "key": key, "arm": arm, "fallback": True, "reason": reason}, served.fallback)


def json_response(content: bytes) -> Response:
    """A 200 response of JSON already encoded."""
    return Response(content, media_type="application/json")


def error(status: int, message: str, **details) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse({"error": message, **details}, status_code=status)


async def body_of(request: Request, limit: int) -> bytes:
    """The request body; 413 as soon as it outgrows `limit` bytes, without reading the rest."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"a batch body has at most {limit} bytes")
    return bytes(body)


def batch_keys(body: bytes) -> list:
    """The keys of a batch request body `{"keys": [...]}`; 400 when it is not one or holds more than the limit."""
    try:
        keys = json.loads(body).get("keys")
    except (ValueError, AttributeError):
        keys = None
    if not isinstance(keys, list):
        raise HTTPException(400, 'a batch body is a JSON object {"keys": [...]}')
    if len(keys) > MAX_BATCH:
        raise HTTPException(400, f"a batch holds at most {MAX_BATCH} keys, got {len(keys)}")
    return keys


class KeyReader:
    """Answers reads by key from each experiment's served generation, timing every store read."""

    def __init__(self, store: OnlineStore, metrics: ServingMetrics, offload_reads: bool):
        self.store = store
        self.metrics = metrics
        self.offload_reads = offload_reads

    def timed(self, op: str, call: Callable, *args):
        """The result of one store call, its latency recorded under `op`."""
        start = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.metrics.observe_read(op, time.perf_counter() - start)

    async def run(self, call: Callable, *args):
        """A store call on the event loop, or on a worker thread when reads are offloaded."""
        return await run_in_threadpool(call, *args) if self.offload_reads else call(*args)

    async def read(self, op: str, call: Callable, *args):
        """One timed store read."""
        return await self.run(self.timed, op, call, *args)

    async def served(self, experiment: str) -> Served | None:
        """The experiment's served generation, read once: every value of the answer comes from it."""
        pointer = await self.run(self.store.meta, CURRENT + experiment)
        return served_from(pointer) if pointer is not None else None

    def not_served(self, experiment: str) -> JSONResponse:
        """404 naming the experiment and the ones that are served."""
        served = sorted(key.removeprefix(CURRENT) for key in self.store.meta_items(CURRENT))
        return error(404, f"experiment {experiment!r} has no served generation", served=served)

    async def one(self, request: Request) -> Response:
        """GET /v1/{experiment}/{key}: the key's value, or the fallback and why."""
        experiment, key = request.path_params["experiment"], checked_key(request.path_params["key"])
        entity = store_key(key)
        for _ in range(READ_ATTEMPTS):
            if (served := await self.served(experiment)) is None:
                return self.not_served(experiment)
            arm = arm_of(entity, served.generation)
            value = await self.read("get", self.store.get, served.generation.namespace, entity) if arm == ROLLOUT else None
            if arm != ROLLOUT or value is not None or not await self.flipped(experiment, served):
                break
        return json_response(answer(key, arm, value, served, served.head(experiment)))

    async def batch(self, request: Request) -> Response:
        """POST /v1/{experiment}/batch: answers for up to MAX_BATCH keys in their order, from one generation and one store read."""
        experiment = request.path_params["experiment"]
        keys = batch_keys(await body_of(request, MAX_BATCH_BYTES))
        entities = [store_key(checked_key(key)) for key in keys]
        for _ in range(READ_ATTEMPTS):
            if (served := await self.served(experiment)) is None:
                return self.not_served(experiment)
            arms = [arm_of(entity, served.generation) for entity in entities]
            values = await self.rollout_values(served.generation, entities, arms)
            if None not in values.values() or not await self.flipped(experiment, served):
                break
        results = b",".join(answer(key, arm, values.get(i), served) for i, (key, arm) in enumerate(zip(keys, arms)))
        return json_response(with_value(served.head(experiment), b"[" + results + b"]", "results"))

    async def rollout_values(self, generation: Generation, entities: Sequence[str | None], arms: Sequence[str | None]) -> dict:
        """The stored value of each rollout-arm key by its position, in one store read (control keys are never read)."""
        positions = [i for i, arm in enumerate(arms) if arm == ROLLOUT]
        if not positions:
            return {}
        values = await self.read("get_many", self.store.get_many, generation.namespace, [entities[i] for i in positions])
        return dict(zip(positions, values))

    async def flipped(self, experiment: str, served: Served) -> bool:
        """Whether the experiment serves another generation than `served` by now (a missing value may be a dropped one)."""
        current = await self.served(experiment)
        return current is not None and current.generation.generation_id != served.generation.generation_id


def readiness(store: OnlineStore, experiments: list[str] | None) -> tuple[bool, dict]:
    """Whether every expected experiment (or, unnamed, at least one) holds a complete champion generation, and what each serves."""
    served = {key.removeprefix(CURRENT): Generation.from_bytes(value).generation_id for key, value in store.meta_items(CURRENT).items()}
    if experiments:
        waiting = [experiment for experiment in experiments if experiment not in served]
        if waiting:
            return False, {"status": "not ready", "waiting_for": waiting, "served": served}
    elif not served:
        return False, {"status": "not ready", "reason": "no experiment has a served generation yet"}
    return True, {"status": "ready", "served": served}


class RequestMetrics:
    """Times and counts each request under its route template; the raw path would mint a series per key."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception as raised:
            self.metrics.observe_error(route_of(scope), raised)
            raise
        finally:
            self.metrics.observe_request(route_of(scope), status, time.perf_counter() - start)


def route_of(scope: Scope) -> str:
    """The template of the route that answered, or UNMATCHED."""
    route = scope.get("route")
    return getattr(route, "path", UNMATCHED)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """HTTP errors (bad keys, unknown paths, wrong methods) as JSON."""
    details = {"path": request.url.path} if exc.status_code == 404 else {}
    return JSONResponse({"error": exc.detail, **details}, status_code=exc.status_code, headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    """An unexpected failure as JSON; the traceback goes to the log, not to the client."""
    return error(500, "internal error", kind=type(exc).__name__)


def build_app(store: OnlineStore, experiments: list[str] | None = None, *, offload_reads: bool = False) -> Starlette:
    """The API over `store`; readiness waits for `experiments` when given, else for any served experiment.

    Store reads run on the event loop by default: an LMDB read takes microseconds, and a hop to a worker thread costs
    more than it saves. benchmarks/bench_serving_api.py measures both; on 2 cores, inline served 8,600 req/s at 32
    connections with p99 7 ms, offloaded 2,800 req/s with p99 76 ms. `offload_reads=True` runs reads in Starlette's
    thread pool, for a store whose reads may block for long.
    """
    metrics = ServingMetrics(store)
    reader = KeyReader(store, metrics, offload_reads)

    async def health(request: Request) -> JSONResponse:
        """Up: the process answers."""
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> JSONResponse:
        """Ready: every expected experiment serves a complete generation."""
        is_ready, body = readiness(store, experiments)
        return JSONResponse(body, status_code=200 if is_ready else 503)

    async def exposition(request: Request) -> Response:
        """The metrics in Prometheus text format."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", exposition),
        Route("/v1/{experiment}/batch", reader.batch, methods=["POST"]),
        Route("/v1/{experiment}/{key}", reader.one),
    ]
    return Starlette(routes=routes, middleware=[Middleware(RequestMetrics, metrics=metrics)],
                     exception_handlers={HTTPException: http_error, Exception: server_error})


def serve_api(store: OnlineStore, host: str = "127.0.0.1", port: int = 8000, experiments: list[str] | None = None) -> None:
    """Serve the API with uvicorn until interrupted: one worker, no access log (the metrics count every request)."""
    uvicorn.run(build_app(store, experiments), host=host, port=port, workers=1, access_log=False, loop="auto")
