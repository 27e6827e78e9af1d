"""Publication shared by every pipeline type: provenance, the A/B rollout and the all-or-nothing publish."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from ok_ml_assets.configs import Publication

ROLLOUT, CONTROL = "rollout", "control"
# Each publication ends with one trailer per partition (same transaction): what that partition holds of it, and how
# to answer keys it has no value for. Consumers tell trailers by their key prefix and skip them as data.
BATCH_SCHEMA, BATCH_VERSION = "ok_ml.batch", 1
BATCH_KEY_PREFIX = b"__batch__:"


@dataclass(frozen=True)
class Provenance:
    """Which model and run produced a publication."""

    experiment: str
    model_name: str
    model_version: str
    run_id: str
    # Microseconds: a rollback right after a publication must still be the newer generation.
    generated_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"))

    @property
    def generation_id(self) -> str:
        """One publication's identity: the model version, and a digest of its run and time (a rollback is a new one)."""
        return generation_id(self.model_version, self.run_id, self.generated_at)


def generation_id(model_version: str, run_id: str, generated_at: str) -> str:
    """The identity of a publication, computable from any of its messages' provenance."""
    return f"v{model_version}-{hashlib.sha256(f'{run_id}|{generated_at}'.encode()).hexdigest()[:12]}"


def rollout_bucket(entity_id: int, salt: str) -> float:
    """A stable position in [0, 1) of an entity for an experiment's salt."""
    digest = hashlib.sha256(f"{salt}:{entity_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_rollout(entity_ids: np.ndarray, fraction: float, salt: str) -> np.ndarray:
    """True for entities in the rollout arm: the same ones for the same salt and fraction, on every run."""
    prefix = f"{salt}:".encode()
    sha256 = hashlib.sha256
    # rollout_bucket per entity, in bulk: only the hashing stays a Python loop; the 8-byte heads become floats at once.
    heads = b"".join([sha256(prefix + b"%d" % entity_id).digest()[:8] for entity_id in integers(entity_ids)])
    buckets = np.frombuffer(heads, dtype=">u8").astype(np.float64) / 2**64
    return buckets < fraction


def integers(values) -> list[int]:
    """The values as Python ints, as int() makes them (numeric strings included)."""
    array = np.asarray(values)
    return array.tolist() if array.dtype.kind in "iu" else [int(v) for v in array]


def rounded(values, digits: int = 6) -> np.ndarray:
    """round(float(v), digits) of every value, bit for bit as Python rounds it, in bulk."""
    values = np.asarray(values, dtype=np.float64)
    scale = 10.0**digits
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = values * scale
        result = np.rint(scaled) / scale
        # Below 2**32 the product errs by under 5e-7, so it rounds like the exact value unless it lies that close to a half;
        # those, the large and the non-finite are rounded by Python.
        doubtful = ~(np.abs(scaled - np.floor(scaled) - 0.5) > 1e-6) | ~(np.abs(scaled) < 2.0**32)
    for i in np.flatnonzero(doubtful):
        result[i] = round(float(values[i]), digits)
    return result


def envelope(schema: str, version: int, body: dict, provenance: Provenance) -> bytes:
    """A published value: the schema and its version, the type's fields, then where it came from, as compact JSON."""
    return json.dumps(
        {
            "schema": schema,
            "version": version,
            **body,
            "experiment": provenance.experiment,
            "model": {"name": provenance.model_name, "version": provenance.model_version},
            "run_id": provenance.run_id,
            "generated_at": provenance.generated_at,
        },
        separators=(",", ":"),
    ).encode()


def envelope_parts(schema: str, version: int, fields: Sequence[str], provenance: Provenance) -> list[bytes]:
    """The envelope's bytes around its body's fields, in order: a bulk encoder writes part, field, part, ..., part."""
    marker = f"@@ok_ml_field_{uuid.uuid4().hex}_{{}}@@"
    whole = envelope(schema, version, {name: marker.format(i) for i, name in enumerate(fields)}, provenance)
    parts = []
    for i in range(len(fields)):
        before, whole = whole.split(f'"{marker.format(i)}"'.encode())
        parts.append(before)
    return [*parts, whole]


def json_value(value) -> bytes:
    """A value as the envelope writes it (json.dumps, so non-ASCII escaped and NaN as NaN)."""
    return json.dumps(value, separators=(",", ":")).encode()


def encoded_ahead(table: pd.DataFrame, rows: int, encode: Callable[[pd.DataFrame], list[tuple[bytes, bytes]]]
                  ) -> Iterator[tuple[bytes, bytes]]:
    """The messages of a table encoded `rows` at a time, the next chunk encoding on a helper thread while the current one
    is sent."""
    # Bulk encoding spends most of its time in numpy, which releases the GIL, so it overlaps with the send loop; one
    # chunk ahead at most, so no more than two chunks are ever held encoded.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ok-ml-encode") as pool:
        ahead = None
        for start in range(0, len(table), rows):
            following = pool.submit(encode, table.iloc[start:start + rows])
            if ahead is not None:
                yield from ahead.result()
            ahead = following
        if ahead is not None:
            yield from ahead.result()


def message_key(entity_id: int) -> bytes:
    """The Kafka key: the entity id in decimal, the key of the online store."""
    return str(int(entity_id)).encode()


# (messages per partition, every partition of the topic) -> (partition, key, value) of each trailer.
Trailers = Callable[[Mapping[int, int], Sequence[int]], Iterable[tuple[int, bytes, bytes]]]


@dataclass(frozen=True)
class BatchEnd:
    """The trailers that close a publication: per partition, how many of its messages it holds, and the fallback."""

    provenance: Provenance
    publication: Publication
    fallback: dict

    def trailers(self, counts: Mapping[int, int], partitions: Sequence[int]) -> list[tuple[int, bytes, bytes]]:
        """One trailer for every partition of the topic, those with no message of this publication included."""
        return [(p, BATCH_KEY_PREFIX + str(p).encode(), self.trailer(p, counts.get(p, 0), len(partitions))) for p in partitions]

    def trailer(self, partition: int, messages: int, partitions: int) -> bytes:
        """The JSON trailer of one partition."""
        body = {"partition": partition, "partitions": partitions, "messages": messages,
                "generation_id": self.provenance.generation_id, "topic": self.publication.topic,
                "rollout_fraction": self.publication.rollout_fraction, "salt": self.publication.salt, "fallback": self.fallback}
        return envelope(BATCH_SCHEMA, BATCH_VERSION, body, self.provenance)


class Publisher(Protocol):
    """What publication needs of a message broker."""

    def ensure_topic(self, topic: str, partitions: int) -> None: ...

    def publish(self, topic: str, messages: Iterable[tuple[bytes, bytes]], trailers: Trailers | None = None): ...


def with_arms(predictions: pd.DataFrame, publication: Publication, as_of: str, key_column: str = "user_id") -> pd.DataFrame:
    """The predictions with each entity's A/B arm (rollout or control) and the last data day they were computed from."""
    chosen = in_rollout(predictions[key_column].to_numpy(), publication.rollout_fraction, publication.salt)
    return predictions.assign(arm=np.where(chosen, ROLLOUT, CONTROL), as_of=as_of)


def publish_messages(
    publisher: Publisher, publication: Publication, messages: Iterable[tuple[bytes, bytes]], batch_end: BatchEnd | None = None
):
    """Publish encoded messages, then the batch's trailers, to the experiment's topic, all or nothing."""
    publisher.ensure_topic(publication.topic, publication.partitions)
    report = publisher.publish(publication.topic, messages, batch_end.trailers if batch_end else None)
    if batch_end is not None:
        report.generation_id = batch_end.provenance.generation_id
    return report


# A Spark table is published without the driver ever holding it: the executors choose the arms and encode, the driver
# receives the encoded messages a chunk at a time and sends them in the same single transaction. pyspark and pyarrow are
# imported inside these functions, so the local engine never loads them.
SPARK_CHUNK_ROWS = 4_000
ENCODED_SCHEMA = "keys binary, key_lengths binary, message_values binary, value_lengths binary"


@dataclass
class HeldRows:
    """How many rows the driver holds at once while it streams a publication: now, at the peak, and in all."""

    now: int = 0
    peak: int = 0
    total: int = 0

    def take(self, rows: int) -> None:
        """A chunk of rows arrived in the driver."""
        self.now += rows
        self.total += rows
        self.peak = max(self.peak, self.now)

    def release(self, rows: int) -> None:
        """A chunk's rows are sent and dropped."""
        self.now -= rows


def key_array(batch, key_column: str) -> np.ndarray:
    """A record batch's key column as numpy."""
    return batch.column(key_column).to_numpy(zero_copy_only=False)


def spark_rollout(frame, publication: Publication, key_column: str):
    """The rows of a Spark table in the rollout arm, chosen on the executors exactly as `with_arms` chooses them."""
    import pyarrow as pa

    fraction, salt = publication.rollout_fraction, publication.salt

    def keep_rollout(batches):
        for batch in batches:
            yield batch.filter(pa.array(in_rollout(key_array(batch, key_column), fraction, salt)))

    return frame.mapInArrow(keep_rollout, frame.schema)


def spark_with_arms(frame, publication: Publication, as_of: str, key_column: str = "user_id"):
    """`with_arms` of a Spark table, computed on the executors: every row with its arm and the last data day."""
    import pyarrow as pa
    from pyspark.sql.types import StringType, StructField, StructType

    fraction, salt = publication.rollout_fraction, publication.salt

    def label(batches):
        for batch in batches:
            chosen = in_rollout(key_array(batch, key_column), fraction, salt)
            arms = pa.array(np.where(chosen, ROLLOUT, CONTROL), pa.string())
            yield batch.append_column("arm", arms).append_column("as_of", pa.array([as_of] * batch.num_rows, pa.string()))

    # A new schema: StructType.add would change the frame's own (cached) schema in place.
    schema = StructType([*frame.schema.fields, StructField("arm", StringType()), StructField("as_of", StringType())])
    return frame.mapInArrow(label, schema)


def encoded_chunks(frame, encode: Callable[[pd.DataFrame], Iterable[tuple[bytes, bytes]]], rows: int = SPARK_CHUNK_ROWS):
    """A Spark table of one row per `rows` input rows: their messages encoded on the executors, keys and values each
    concatenated with their lengths (int32), so the driver unpickles a few large values instead of one row per message."""
    import pyarrow as pa

    def encode_batches(batches):
        for batch in batches:
            for start in range(0, batch.num_rows, rows):
                messages = list(encode(batch.slice(start, rows).to_pandas()))
                if not messages:
                    continue
                keys, values = [key for key, _ in messages], [value for _, value in messages]
                yield pa.RecordBatch.from_pylist([{
                    "keys": b"".join(keys), "key_lengths": np.fromiter(map(len, keys), np.int32, len(keys)).tobytes(),
                    "message_values": b"".join(values), "value_lengths": np.fromiter(map(len, values), np.int32, len(values)).tobytes(),
                }], schema=encoded_arrow_schema())

    return frame.mapInArrow(encode_batches, ENCODED_SCHEMA)


def encoded_arrow_schema():
    """ENCODED_SCHEMA as an Arrow schema (built where it is used: pyarrow is imported late)."""
    import pyarrow as pa

    return pa.schema([(name, pa.binary()) for name in ("keys", "key_lengths", "message_values", "value_lengths")])


def split_blob(blob: bytes, lengths: bytes) -> list[bytes]:
    """Concatenated byte strings cut back into the strings, given their int32 lengths."""
    ends = np.cumsum(np.frombuffer(lengths, dtype=np.int32)).tolist()
    return [blob[start:end] for start, end in zip([0, *ends[:-1]], ends)]


def streamed_messages(chunks, held: HeldRows | None = None) -> Iterator[tuple[bytes, bytes]]:
    """The messages of an `encoded_chunks` table, brought to the driver a partition at a time (the next one prefetched)."""
    held = held if held is not None else HeldRows()
    for chunk in chunks.toLocalIterator(prefetchPartitions=True):
        keys = split_blob(bytes(chunk["keys"]), bytes(chunk["key_lengths"]))
        values = split_blob(bytes(chunk["message_values"]), bytes(chunk["value_lengths"]))
        held.take(len(keys))
        try:
            yield from zip(keys, values)
        finally:
            held.release(len(keys))
        del chunk, keys, values
