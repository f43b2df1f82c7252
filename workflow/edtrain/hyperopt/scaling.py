"""Trial and final configs: the version config with parameters set, then scaled like any version.

A scaled (demo/test) version stands for its production version, so the search space holds
production values too: parameters are set on the unscaled config and the version's own
scaling is applied afterwards, by the same ``apply_scaling`` that made the version config.
The search then shrinks with the demo (widths, samples, epochs) and its best parameters are
production values.
"""

from __future__ import annotations

import copy
from typing import Any

from edtrain.config import apply_scaling
from edtrain.hyperopt import space

# where apply_scaling's ``scaling.unscaled`` record takes each value from
_UNSCALED_PATHS = {
    "samples": "samples",
    "max_epochs": "max_epochs",
    "filters": "model.filters",
    "dense_units": "model.dense_units",
}


def unscale(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the config before scaling, the scaling block), from the config's own scaling record."""
    record = config["scaling"]
    block = {k: v for k, v in record.items() if k not in ("applied", "unscaled")}
    if not record["applied"]:
        return copy.deepcopy(config), block
    values = {_UNSCALED_PATHS[k]: v for k, v in record["unscaled"].items()}
    return space.apply_params(config, values), block


def with_params(
    config: dict[str, Any], params: space.Params, overrides: space.Params | None = None
) -> dict[str, Any]:
    """``config`` with dotted-path ``params`` and ``overrides`` set before its scaling."""
    unscaled, block = unscale(config)
    return apply_scaling(space.apply_params(unscaled, {**params, **(overrides or {})}), block)
