"""Stable sample keys, the common test set and nested training subsets.

Every sample is identified by (basename, event, match_id); match_id alone repeats
in every file. A 64-bit hash of that key decides, independently of file order,
chunking or pool size:

* test membership (a fixed fraction, the same test set for every version),
* a rank among the remaining pool, so ``samples: N`` takes the N lowest ranks and
  10k ⊂ 50k ⊂ 100k ⊂ 200k,
* the train/validation split inside a version's N samples.

Each decision uses its own salt so the three are independent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

_SALT_TEST = np.uint64(0x7E57_5E7F_0000_0001)
_SALT_RANK = np.uint64(0x4A4E_4B00_0000_0002)
_SALT_VAL = np.uint64(0x7A11_D000_0000_0003)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorized splitmix64 finalizer: a bijective, well-mixed map of uint64."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def name_hash(strings: np.ndarray) -> np.ndarray:
    """64-bit blake2b of each string (e.g. a basename), computed once per distinct string."""
    uniques, inverse = np.unique(np.asarray(strings, dtype=str), return_inverse=True)
    digests = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
            for s in uniques
        ),
        dtype=np.uint64,
        count=len(uniques),
    )
    return digests[inverse.reshape(-1)]


def key_hash(basename: np.ndarray, event: np.ndarray, match_id: np.ndarray) -> np.ndarray:
    """64-bit hash of each sample key; identical on every machine and Python version."""
    return hashed_key(name_hash(basename), event, match_id)


def hashed_key(names: np.ndarray, event: np.ndarray, match_id: np.ndarray) -> np.ndarray:
    """``key_hash`` from the basenames' ``name_hash`` values (hash each name once, not per row)."""
    event = np.asarray(event, dtype=np.int64).astype(np.uint64)
    match_id = np.asarray(match_id, dtype=np.int64).astype(np.uint64)
    h = _splitmix64(np.asarray(names, dtype=np.uint64) ^ _splitmix64(event))
    return _splitmix64(h ^ _splitmix64(match_id + np.uint64(0x51ED)))


def unit_interval(hashes: np.ndarray, salt: np.uint64) -> np.ndarray:
    """Map hashes to uniform floats in [0, 1), one independent stream per salt."""
    bits = _splitmix64(np.asarray(hashes, dtype=np.uint64) ^ salt) >> np.uint64(11)
    return bits.astype(np.float64) * 2.0**-53


def test_mask(hashes: np.ndarray, test_fraction: float) -> np.ndarray:
    """True for samples in the common test set."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    return unit_interval(hashes, _SALT_TEST) < test_fraction


def pool_rank(hashes: np.ndarray, is_test: np.ndarray) -> np.ndarray:
    """Rank 0..P-1 of each non-test sample (−1 for test samples); ties broken by hash."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    rank = np.full(hashes.shape, -1, dtype=np.int64)
    pool = np.flatnonzero(~np.asarray(is_test, dtype=bool))
    order = np.lexsort((hashes[pool], unit_interval(hashes[pool], _SALT_RANK)))
    rank[pool[order]] = np.arange(len(pool), dtype=np.int64)
    return rank


@dataclass(frozen=True)
class Selection:
    """Row indices of one version's train, validation and test samples."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    requested: int
    available: int

    @property
    def capped(self) -> bool:
        return self.requested > self.available


def select_version(
    hashes: np.ndarray, rank: np.ndarray, samples: int, val_fraction: float
) -> Selection:
    """The N lowest-ranked pool samples split into train/val, plus the common test set.

    The validation part is the round(N·val_fraction) selected samples with the
    smallest validation draw, so it is exact in size and stable per key.
    """
    if samples < 1:
        raise ValueError(f"samples must be positive, got {samples}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rank = np.asarray(rank, dtype=np.int64)
    available = int((rank >= 0).sum())
    chosen = np.flatnonzero((rank >= 0) & (rank < samples))
    n_val = round(len(chosen) * val_fraction)
    draw = unit_interval(np.asarray(hashes, dtype=np.uint64)[chosen], _SALT_VAL)
    by_draw = chosen[np.argsort(draw, kind="stable")]
    return Selection(
        train=np.sort(by_draw[n_val:]),
        val=np.sort(by_draw[:n_val]),
        test=np.flatnonzero(rank < 0),
        requested=int(samples),
        available=available,
    )
