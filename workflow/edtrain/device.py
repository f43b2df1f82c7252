"""What the training actually ran on, asked of the active Keras backend.

The predecessor once landed on a broken MIG slice and trained on the CPU for 47 minutes
without noticing; the training record therefore names the accelerator the backend sees
(and the MIG profile when the job was given a slice), and ``require_gpu`` stops a job
before it loads any data when no GPU is visible.

Data parallelism uses the backend's own machinery, so one code path serves both backends:
``tf.distribute.MirroredStrategy`` on TensorFlow and ``keras.distribution.DataParallel`` on
JAX. Either replicates the model built in its scope on every device and splits each batch
fed to ``fit`` between them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from typing import Literal

import keras

DataParallelMode = Literal["auto", True, False]


def gpu_names() -> list[str]:
    """Names of the GPUs the active backend can use (empty on CPU)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return [
            tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus
        ]
    if backend == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def _mig_profiles() -> list[str]:
    """MIG profiles (e.g. "1g.12gb") of the visible MIG devices, from ``nvidia-smi -L``."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if "MIG-" not in visible or shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = re.findall(r"MIG (\S+)\s+Device\s+\d+: \(UUID: (MIG-[^)]+)\)", listing)
    return [profile for profile, uuid in found if uuid in visible]


def describe_device(replicas: int = 1) -> str:
    """Either "CPU" or the GPU name(s), with the MIG profile when the job got a slice.

    With several replicas, which run on every visible GPU (or logical CPU device), equal
    names are counted: "2 × NVIDIA H100 80GB HBM3", "2 × CPU".
    """
    names = gpu_names()
    if not names:
        return "CPU" if replicas == 1 else f"{replicas} × CPU"
    if replicas > 1 and len(set(names)) == 1:
        described = f"{len(names)} × {names[0]}"
    else:
        described = ", ".join(names)
    migs = _mig_profiles()
    return f"{described} (MIG {', '.join(migs)})" if migs else described


def data_parallel_devices(mode: DataParallelMode = "auto") -> list[str]:
    """The devices to replicate the model on; empty for training on one device.

    ``auto``: every GPU when more than one is visible. ``True``: every visible accelerator,
    or without one every logical CPU device (how the tests exercise it on a CPU). ``False``:
    none.
    """
    if mode not in ("auto", True, False):
        raise ValueError(f"data_parallel must be auto, true or false, not {mode!r}")
    backend = keras.backend.backend()
    if mode is False:
        devices = []
    elif backend == "tensorflow":
        import tensorflow as tf

        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if mode is True and not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    elif backend == "jax":
        # list_devices() without a type: the accelerators if there are any, else the CPUs
        if mode is True:
            devices = keras.distribution.list_devices()
        else:
            devices = keras.distribution.list_devices("gpu") if gpu_names() else []
    elif mode is True:
        raise ValueError(f"data_parallel needs the tensorflow or jax backend, not {backend}")
    else:
        devices = []
    return devices if len(devices) > 1 else []


def data_parallel_scope(
    devices: Sequence[str],
) -> contextlib.AbstractContextManager[object]:
    """Build, compile and fit the model in this scope to replicate it over ``devices``.

    A Keras model on TensorFlow keeps the strategy it was built under; on JAX the
    distribution is global state, so the scope must cover ``fit`` as well (it is restored
    on exit). With no devices the scope does nothing: single-device training is unchanged.
    """
    if not devices:
        return contextlib.nullcontext()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(devices=list(devices)).scope()
    return keras.distribution.DataParallel(devices=list(devices)).scope()


class NoGpuError(RuntimeError):
    """A GPU was required and none is visible."""


def require_gpu() -> None:
    """Raise NoGpuError with a clear message when the backend sees no GPU."""
    if not gpu_names():
        raise NoGpuError(
            f"require_gpu is true but the {keras.backend.backend()} backend sees no GPU "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')!r}); "
            "refusing to train on the CPU. To train on the CPU on purpose, set "
            "`require_gpu: false` in the config (defaults, or the version's entry)"
        )
