"""What the training actually ran on, asked of the active Keras backend.

The predecessor once landed on a broken MIG slice and trained on the CPU for 47 minutes
without noticing; the training record therefore names the accelerator the backend sees
(and the MIG profile when the job was given a slice), and ``require_gpu`` stops a job
before it loads any data when no GPU is visible.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import keras


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


def describe_device() -> str:
    """Either "CPU" or the GPU name(s), with the MIG profile when the job got a slice."""
    names = gpu_names()
    if not names:
        return "CPU"
    migs = _mig_profiles()
    described = ", ".join(names)
    return f"{described} (MIG {', '.join(migs)})" if migs else described


class NoGpuError(RuntimeError):
    """A GPU was required and none is visible."""


def require_gpu() -> None:
    """Raise NoGpuError with a clear message when the backend sees no GPU."""
    if not gpu_names():
        raise NoGpuError(
            f"require_gpu is true but the {keras.backend.backend()} backend sees no GPU "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')!r}); "
            "refusing to train on the CPU"
        )
