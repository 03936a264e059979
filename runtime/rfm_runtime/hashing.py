"""Stable hashed text features: the same string maps to the same bucket in every process.

Column names, table names and categorical or text values all enter the net through these
buckets, so any schema maps into one space and no vocabulary has to ship with the artifact.
The scheme is blake2b (``hashlib``), never Python's ``hash()`` (salted per process).

Bucket 0 is reserved for "no feature" (padding, null values, unused name slots).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Name and version of the hashing scheme; part of the artifact contract.
HASH_SCHEME = "blake2b64-v1"

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


@lru_cache(maxsize=1 << 16)
def stable_hashes(text: str, salt: str, count: int) -> tuple[int, ...]:
    """Return ``count`` independent unsigned 64-bit hashes of ``text``.

    Args:
        text: the string to hash (UTF-8 encoded).
        salt: namespace (at most 16 bytes), e.g. ``"value"`` or ``"name"``.
        count: how many hashes (1 to 8).

    Returns:
        ``count`` integers in ``[0, 2**64)``, identical in every process and on every machine.
    """
    digest = hashlib.blake2b(
        text.encode("utf-8"), digest_size=8 * count, person=salt.encode("utf-8")[:16]
    ).digest()
    return tuple(int.from_bytes(digest[8 * i : 8 * i + 8], "little") for i in range(count))


def bucket(h: int, buckets: int) -> int:
    """Map a 64-bit hash to a bucket in ``[1, buckets)`` (0 stays reserved)."""
    return 1 + h % (buckets - 1)


@lru_cache(maxsize=1 << 14)
def name_ids(name: str, buckets: int, slots: int) -> tuple[int, ...]:
    """Hashed features of a table or column name: the whole name, then its words.

    ``dep_delay`` gives ``[h("dep_delay"), h("dep"), h("delay"), 0]`` for 4 slots, so names
    that share a word share a feature. Words split at non-alphanumerics and camelCase.

    Returns:
        ``slots`` bucket ids; unused slots are 0.
    """
    words: list[str] = []
    for w in _WORD.findall(name):
        lw = w.lower()
        if lw not in words:
            words.append(lw)
    ids = [bucket(stable_hashes(name.lower(), "name", 1)[0], buckets)]
    ids += [bucket(stable_hashes(w, "word", 1)[0], buckets) for w in words[: slots - 1]]
    return tuple(ids + [0] * (slots - len(ids)))


def value_ids(value: str, buckets: int, count: int) -> tuple[int, ...]:
    """``count`` bucket ids of a categorical or text value (a small multi-hash)."""
    return tuple(bucket(h, buckets) for h in stable_hashes(value, "value", count))


def hash_array(
    values: pa.Array | pa.ChunkedArray, kind: str, buckets: int, width: int
) -> np.ndarray:
    """Hash every string of an Arrow array, each distinct string once.

    Args:
        values: string array of length N (nulls allowed).
        kind: ``"name"`` (:func:`name_ids`) or ``"value"`` (:func:`value_ids`).
        buckets: number of buckets, bucket 0 reserved.
        width: name slots or value hashes per string.

    Returns:
        ``int64[N, width]``; rows of nulls are all 0.
    """
    n = len(values)
    if n == 0:
        return np.zeros((0, width), dtype=np.int64)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    fn = name_ids if kind == "name" else value_ids
    table = np.zeros((len(encoded.dictionary) + 1, width), dtype=np.int64)
    for i, s in enumerate(encoded.dictionary.to_pylist()):
        table[i + 1] = fn(s, buckets, width)
    idx = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
    return table[idx]
