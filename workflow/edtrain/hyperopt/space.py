"""The search space: schema'd parameter specs → Optuna distributions and config edits.

Parameter names are dotted paths into the resolved version config
(``model.filters``, ``optimizer.learning_rate``), so the space needs no mapping table
and a trial config is the version config with those leaves replaced.
"""

from __future__ import annotations

import copy
import hashlib
import math
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

Params = dict[str, Any]


def distribution(name: str, spec: dict[str, Any]) -> BaseDistribution:
    """One parameter spec ({choices} | {int, log} | {float, log}) as an Optuna distribution."""
    log = bool(spec.get("log", False))
    if "choices" in spec:
        if not spec["choices"]:
            raise ValueError(f"hyperopt space {name!r}: choices must not be empty")
        return CategoricalDistribution(list(spec["choices"]))
    for kind, cls in (("int", IntDistribution), ("float", FloatDistribution)):
        if kind in spec:
            lo, hi = spec[kind]
            if not lo < hi:
                raise ValueError(f"hyperopt space {name!r}: need lo < hi, got [{lo}, {hi}]")
            if log and lo <= 0:
                raise ValueError(f"hyperopt space {name!r}: a log range needs lo > 0")
            return cls(lo, hi, log=log)
    raise ValueError(f"hyperopt space {name!r}: expected choices, int or float, got {spec}")


def distributions(space: dict[str, dict[str, Any]]) -> dict[str, BaseDistribution]:
    """The whole space, in its declared order (the order fixes the QMC dimensions)."""
    if not space:
        raise ValueError("hyperopt space is empty")
    return {name: distribution(name, spec) for name, spec in space.items()}


def from_unit(dists: dict[str, BaseDistribution], point: np.ndarray) -> Params:
    """Map a point of the unit cube to parameter values, one dimension per parameter.

    Categorical and integer values take equal-width strata, so a low-discrepancy
    point set also spreads over the choices (Optuna's QMCSampler leaves categorical
    parameters to its random sampler).
    """
    params: Params = {}
    for (name, dist), u in zip(dists.items(), point, strict=True):
        u = float(u)
        if isinstance(dist, CategoricalDistribution):
            params[name] = dist.choices[min(int(u * len(dist.choices)), len(dist.choices) - 1)]
        elif isinstance(dist, IntDistribution) and dist.log:
            lo, hi = math.log(dist.low - 0.5), math.log(dist.high + 0.5)
            params[name] = min(max(round(math.exp(lo + u * (hi - lo))), dist.low), dist.high)
        elif isinstance(dist, IntDistribution):
            params[name] = min(dist.low + int(u * (dist.high - dist.low + 1)), dist.high)
        elif dist.log:
            lo, hi = math.log(dist.low), math.log(dist.high)
            params[name] = min(max(math.exp(lo + u * (hi - lo)), dist.low), dist.high)
        else:
            params[name] = dist.low + u * (dist.high - dist.low)
    return params


def _primes(n: int) -> list[int]:
    primes: list[int] = []
    candidate = 2
    while len(primes) < n:
        if all(candidate % p for p in primes):
            primes.append(candidate)
        candidate += 1
    return primes


def scrambled_halton(n: int, dims: int, seed: int) -> np.ndarray:
    """n × dims Halton points with seeded random digit permutations (as scipy's ``qmc.Halton``).

    Written out here because the training environments need not ship scipy; the
    scrambling removes Halton's correlated early points between dimensions.
    """
    rng = np.random.default_rng(seed)
    index = np.arange(n, dtype=np.int64)
    points = np.zeros((n, dims))
    for j, base in enumerate(_primes(dims)):
        levels = math.ceil(54 / math.log2(base)) - 1
        for level in range(levels):
            perm = rng.permutation(base)
            digit = (index // base**level) % base
            points[:, j] += perm[digit] / float(base) ** (level + 1)
    return np.minimum(points, np.nextafter(1.0, 0.0))


def derive_seed(*parts: int) -> int:
    """A 32-bit seed from (seed, round, ...): stable across machines and Python versions."""
    text = "/".join(str(int(p)) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")


def check_parameter_paths(config: dict[str, Any], space: dict[str, Any]) -> None:
    """Fail before any job runs if a parameter does not name an existing config leaf."""
    for name in space:
        node: Any = config
        for key in name.split("."):
            if not isinstance(node, dict) or key not in node:
                raise KeyError(f"hyperopt parameter {name!r} is not a key of the version config")
            node = node[key]
        if isinstance(node, dict):
            raise KeyError(f"hyperopt parameter {name!r} names a section, not a value")


def apply_params(config: dict[str, Any], params: Params) -> dict[str, Any]:
    """A copy of ``config`` with each dotted-path parameter replaced."""
    check_parameter_paths(config, params)
    out = copy.deepcopy(config)
    for name, value in params.items():
        *parents, leaf = name.split(".")
        node = out
        for key in parents:
            node = node[key]
        node[leaf] = value
    return out
