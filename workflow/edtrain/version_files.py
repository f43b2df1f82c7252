"""The files of a trained version, ``results/<version>/<name>``, named here once.

The rules declare them, the commands write them, the insights and the hyperopt trials read
them and the legacy importer makes them: all from these names, so none of them can look for a
file under a name another has stopped writing. The state directory of a training uses the same
names for the model, the history and the record it copies out (docs/architecture.md).
"""

from __future__ import annotations

CONFIG = "config.json"
MODEL = "model.keras"
HISTORY = "history.csv"
RECORD = "training.json"  # written last by a training: its presence marks a finished run
PREDICTIONS = "predictions.npz"
METRICS = "metrics.json"
# in the order the workflow makes them: version_config, train, predict
VERSION_FILES = (CONFIG, MODEL, HISTORY, RECORD, PREDICTIONS, METRICS)
