"""A training's state directory: which run it belongs to, and which process is using it.

The state (``edtrain.callbacks``: backup, best checkpoint, history, resume state; at the end
the model and the record) is only worth resuming or reusing for the run that wrote it. A
fresh run records its identity in ``state.json``: the resolved config less ``IGNORED_KEYS``,
and the dataset's hash. A later run with another identity discards the state instead of
resuming another optimizer, loss or dataset. A lock file keeps a second training (a
resubmitted job while the first still runs) from writing into the same directory.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edtrain import __version__
from edtrain import callbacks as cb
from edtrain.config import IGNORED_KEYS, flatten, is_neutral
from edtrain.version_files import HISTORY, MODEL, RECORD

log = logging.getLogger(__name__)

IDENTITY = "state.json"
LOCK = "train.lock"
# Everything training writes here. Discarding removes only these: the directory may also hold
# the lock and other tools' files (hyperopt trial state lives in a subfolder of .state/<v>).
OWNED = (
    cb.BACKUP_DIR,
    cb.BEST_CHECKPOINT,
    cb.PARTIAL_CHECKPOINT,
    HISTORY,
    cb.RESUME_STATE,
    MODEL,
    RECORD,
    IDENTITY,
)


class StateBusy(RuntimeError):
    """Another process trains with this state directory."""


def _ignored(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in IGNORED_KEYS)


def identity(config: Mapping[str, Any], dataset_hash: str | None) -> dict[str, Any]:
    """What a run's result depends on: the config, flattened, less ``IGNORED_KEYS`` and the
    settings at their ``NEUTRAL_DEFAULTS``, and the data. Round-tripped through JSON so that
    it compares equal to its recorded copy."""
    kept = {k: v for k, v in flatten(config).items() if not (_ignored(k) or is_neutral(k, v))}
    # the code that trains belongs to it too: a new edtrain release discards old state
    recorded = {"config": kept, "dataset_hash": dataset_hash, "edtrain_version": __version__}
    return json.loads(json.dumps(recorded))


def differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key old → new`` for every setting that differs between two identities."""
    extra = ("dataset_hash", "edtrain_version")
    old = {**recorded["config"], **{k: recorded.get(k) for k in extra}}
    new = {**current["config"], **{k: current.get(k) for k in extra}}
    return [
        f"{key} {_show(old, key)} → {_show(new, key)}"
        for key in sorted(old.keys() | new.keys())
        if old.get(key, ...) != new.get(key, ...)
    ]


def _show(values: Mapping[str, Any], key: str) -> str:
    if key not in values:
        return "(absent)"
    value = values[key]
    return value if isinstance(value, str) else json.dumps(value)


def _recorded(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / IDENTITY
    return json.loads(path.read_text()) if path.exists() else None


def discard(state_dir: Path) -> None:
    """Remove what training wrote to ``state_dir`` (see ``OWNED``)."""
    for name in OWNED:
        path = state_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` so that a kill leaves the old file or the new one, never a part."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def claim(state_dir: Path, current: Mapping[str, Any]) -> bool:
    """Make ``state_dir`` the state of the run ``current`` identifies.

    True when it holds that run finished (to reuse). A backup of that run stays, to resume
    from. Anything else is discarded (a backup or finished run of another identity with one
    log line saying why) and ``current`` is recorded for the fresh run.
    """
    recorded = _recorded(state_dir)
    finished = (state_dir / RECORD).exists()
    backup = (state_dir / cb.BACKUP_DIR).exists()
    if recorded == current and (finished or backup):
        return finished
    if finished or backup:
        why = (
            ", ".join(differences(recorded, current))
            if recorded is not None
            else f"no {IDENTITY}: written by an older edtrain"
        )
        log.warning(
            "%s holds %s of another run (%s); discarding the state of the earlier run "
            "and training from epoch 0",
            state_dir,
            "the finished training" if finished else "a backup",
            why,
        )
    discard(state_dir)
    write_atomic(state_dir / IDENTITY, json.dumps(current, indent=2, sort_keys=True) + "\n")
    return False


@contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Hold ``state_dir`` for this process, or raise ``StateBusy`` at once.

    Two trainings writing one state would overwrite each other's backups and outputs. The
    lock (flock, non-blocking) is released when the process ends, even on SIGKILL; the file
    names the holder for the message the second process gives.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK
    with open(path, "a+") as handle:  # "a+": opening must not erase the holder's name
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "holder unknown"
            raise StateBusy(
                f"the state directory {state_dir} is in use by another training ({holder}); "
                "not starting a second one"
            ) from None
        except OSError as err:  # a file system without locks: train, but say so
            log.warning("cannot lock %s (%s): a second training would not be stopped", path, err)
        else:
            handle.truncate(0)
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            handle.flush()
        yield
