"""Writing many JSON values at once: fixed-width byte rows filled column by column in numpy, then the padding dropped.

A value is laid out as one row of bytes: the constant text of its shape in place, each number written right-aligned in
a field as wide as the widest of the batch, and NUL bytes wherever a value is shorter than its field (JSON never holds a
raw NUL nor a raw newline). Each row ends with a newline; removing the NULs and splitting at the newlines gives the
values, written byte for byte as json.dumps writes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ok_ml_assets.lifecycle.publication import json_value, rounded

NUL, NEWLINE = 0, ord("\n")
SCALE = 10**6  # scores are published as round(x, 6)
# Below this a score reads back exactly from its six decimals (at most 15 significant digits) and repr() writes it
# positionally; json.dumps switches to exponents below 1e-4, which `writable_scores` leaves to the per-row encoder.
MAX_SCORE = 10**9


def _table(width: int, strip: str) -> np.ndarray:
    """Every number below 10**width as `width` ASCII digits, leading or trailing zeros (strip = "lead" / "trail") as NUL."""
    rows = []
    for number in range(10**width):
        text = f"{number:0{width}d}"
        kept = text.lstrip("0") if strip == "lead" else text.rstrip("0") if strip == "trail" else text
        rows.append(kept.rjust(width, "\0") if strip == "lead" else kept.ljust(width, "\0"))
    return np.frombuffer("".join(rows).encode(), dtype=np.uint8).reshape(10**width, width)


DIGITS4 = _table(4, "none")  # 0042
LEADING4 = _table(4, "lead")  # __42 (all NUL for 0)
ZERO4 = np.array([NUL, NUL, NUL, ord("0")], dtype=np.uint8)
NUMBER4 = np.vstack([ZERO4, LEADING4[1:]])  # a whole number below 10**4: __42, and ___0 for zero
DIGITS3 = _table(3, "none")  # 050
TRAILING3 = _table(3, "trail")  # 05_ (all NUL for 0)
# The first three decimals: all of them when more follow (rows 0-999), else without trailing zeros but at least one.
FIRST3 = np.vstack([DIGITS3, TRAILING3])
FIRST3[1000] = [ord("0"), NUL, NUL]


def write_integers(field: np.ndarray, values: np.ndarray) -> None:
    """Write non-negative ints right-aligned into `field` (shape values.shape + (width,)); leading positions NUL."""
    width = field.shape[-1]
    if width <= 4:
        field[...] = NUMBER4[values][..., 4 - width:]
        return
    count, groups, rest = -(-width // 4), [], values
    for _ in range(count):
        rest, low = np.divmod(rest, 10_000)
        groups.append(low)
    position, started = 0, None
    # Most significant group first: until the first non-zero digit, zeros are padding.
    for index, group in enumerate(reversed(groups)):
        digits = width - 4 * (count - 1) if index == 0 else 4
        if started is None:
            chosen, started = LEADING4[group], group != 0
        elif index < count - 1:
            chosen, started = np.where(started[..., None], DIGITS4[group], LEADING4[group]), started | (group != 0)
        else:
            chosen = np.where(started[..., None], DIGITS4[group], NUMBER4[group])
        field[..., position:position + digits] = chosen[..., 4 - digits:]
        position += digits


def digits_needed(values: np.ndarray) -> int:
    """The width of the widest of these non-negative ints (1 for none)."""
    return len(str(int(values.max()))) if values.size else 1


def scaled_scores(scores: np.ndarray) -> np.ndarray:
    """round(score, 6) * 10**6 as int64, for scores already rounded to six decimals."""
    return np.rint(scores * SCALE).astype(np.int64)


def writable_scores(scores: np.ndarray) -> np.ndarray:
    """Where a rounded score is written here as json.dumps writes it: finite, zero or 1e-4 <= |score| < MAX_SCORE."""
    magnitude = np.abs(scores)
    return np.isfinite(scores) & (magnitude < MAX_SCORE) & ((magnitude >= 1e-4) | (magnitude == 0))


def score_layout(scores: np.ndarray, writable: np.ndarray) -> tuple[bool, int]:
    """(a sign column needed, integer digits) of the field that holds the writable ones of these rounded scores."""
    written = scores[writable]
    return bool(np.signbit(written).any()), digits_needed(np.floor(np.abs(written)).astype(np.int64))


def score_field_width(layout: tuple[bool, int]) -> int:
    """Sign (if any), integer digits, the point and six decimals."""
    signed, whole_width = layout
    return int(signed) + whole_width + 7


def write_scores(field: np.ndarray, scores: np.ndarray, layout: tuple[bool, int]) -> None:
    """Write rounded writable scores (zero elsewhere) as json.dumps does: sign, integer part, '.', up to six decimals
    without trailing zeros, into `field` (shape scores.shape + (width,)), NUL-padded."""
    signed, whole_width = layout
    whole, fraction = np.divmod(np.abs(scaled_scores(scores)), SCALE)
    if signed:
        field[..., 0] = np.where(np.signbit(scores), ord("-"), NUL)
    at = int(signed)
    write_integers(field[..., at:at + whole_width], whole)
    at += whole_width
    field[..., at] = ord(".")
    high, low = np.divmod(fraction, 1000)
    field[..., at + 1:at + 4] = FIRST3[high + 1000 * (low == 0)]
    field[..., at + 4:at + 7] = TRAILING3[low]


def constant(text: bytes) -> np.ndarray:
    """Constant text as a byte row."""
    return np.frombuffer(text, dtype=np.uint8)


def fill(rows: np.ndarray, at: int, text: bytes) -> int:
    """Write constant text at column `at` of every row (the last axis); the column after it."""
    rows[..., at:at + len(text)] = constant(text)
    return at + len(text)


def dense(lengths: np.ndarray, flat: np.ndarray, slots: int) -> np.ndarray:
    """Ragged lists given flat with their lengths, as a (lists, slots) array padded with zeros."""
    out = np.zeros((len(lengths), slots), dtype=flat.dtype)
    rank = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[np.repeat(np.arange(len(lengths)), lengths), rank] = flat
    return out


def values_of(rows: np.ndarray) -> list[bytes]:
    """The values written in byte rows (each ending with a newline): NULs dropped, split at the newlines."""
    return rows.tobytes().replace(b"\0", b"").split(b"\n")[:-1]


def score_texts(values) -> list[bytes]:
    """json.dumps(round(float(v), 6)) of each value, as bytes, written in bulk (json.dumps itself for NaN, 1e-05 and the like)."""
    scores = rounded(values)
    writable = writable_scores(scores)
    layout = score_layout(scores, writable)
    width = score_field_width(layout)
    rows = np.empty((len(scores), width + 1), dtype=np.uint8)
    write_scores(rows[:, :width], np.where(writable, scores, 0.0), layout)
    rows[:, width] = NEWLINE
    texts = values_of(rows)
    for i in np.flatnonzero(~writable).tolist():
        texts[i] = json_value(float(scores[i]))
    return texts


def text_column(values, to_text) -> list[bytes]:
    """to_text(v) of each value, computed once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    texts = [to_text(unique) for unique in uniques]
    return [texts[code] for code in codes.tolist()]


def value_template(parts: list[bytes], fields: list[bytes]) -> bytes:
    """A bytes %-template of a value: the envelope's parts (their % escaped) around each field's conversion (%d, %b)."""
    escaped = [part.replace(b"%", b"%%") for part in parts]
    return b"".join(piece for pair in zip(escaped, [*fields, b""]) for piece in pair)
