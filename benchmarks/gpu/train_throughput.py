"""GPU training throughput of the predecessor models under edtrain's speed settings.

Runs on the JAX backend (no TensorFlow needed) with keras, jax, numpy, pandas and pyarrow
importable; installs nothing. Generates a synthetic float16 image file (100k samples,
2.5 GB float16) in a temporary directory, times each setting over ``--steps`` batches after
``--warmup`` untimed ones (compilation), and prints one Markdown table:

    KERAS_BACKEND=jax python benchmarks/gpu/train_throughput.py [--samples 100000]

"epoch s" extrapolates to one epoch over 70 % of the samples (the train part at
val_fraction 0.3). Settings map to the config's ``batch_size`` (the global batch) and
``performance`` keys; "devices" is the number of GPUs the model is replicated on. With
several GPUs visible, the batch-256 settings run again data-parallel on all of them
(``data_parallel: auto``): the same global batch split, and 256 per GPU.
Measured: 145 s on one H100 including dataset generation (benchmarks/results/training.md);
about a minute more with several GPUs.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "workflow"), str(ROOT / "benchmarks")]

import keras  # noqa: E402
from training_throughput import make_images, measure, peak_rss_gb  # noqa: E402

from edtrain.device import data_parallel_devices, describe_device, gpu_names  # noqa: E402

# (model, pipeline, batch, precision, workers, steps_per_execution)
SETTINGS = [
    ("4Lx64F", "memory", 32, "float32", 1, 1),  # the predecessor's recipe
    ("4Lx64F", "stream", 32, "float32", 1, 1),
    ("4Lx64F", "stream", 32, "float32", 4, 1),
    ("4Lx64F", "stream", 32, "mixed_bfloat16", 4, 1),
    ("4Lx64F", "stream", 32, "mixed_bfloat16", 4, 8),
    ("4Lx64F", "stream", 256, "mixed_bfloat16", 4, 1),
    ("4Lx64F", "stream", 512, "mixed_bfloat16", 8, 1),
    ("4Lx64F", "stream", 1024, "mixed_bfloat16", 8, 4),
    ("3Lx32F", "stream", 32, "float32", 4, 1),
    ("3Lx32F", "stream", 256, "mixed_bfloat16", 4, 1),
]


def data_parallel_settings(replicas: int) -> list[tuple[str, str, int, str, int, int]]:
    """The batch-256 settings on ``replicas`` GPUs: 256 split between them, and 256 per GPU."""
    if replicas < 2:
        return []
    split = 256 // replicas * replicas  # the global batch must divide evenly
    return [
        ("4Lx64F", "stream", split, "mixed_bfloat16", 4, 1),
        ("4Lx64F", "stream", 256 * replicas, "mixed_bfloat16", 4, 1),
        ("3Lx32F", "stream", 256 * replicas, "mixed_bfloat16", 4, 1),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=300, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=40, help="untimed steps first")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="edtrain-gpu-bench-"))
    try:
        start = time.perf_counter()
        images, labels = make_images(workdir / "images.npy", args.samples)
        devices = data_parallel_devices("auto")  # every GPU when several are visible
        print(
            f"device: {describe_device()}; {len(gpu_names())} GPU(s) visible; backend "
            f"{keras.backend.backend()}; {args.samples} samples generated in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
        print(
            "| model | pipeline | batch | precision | workers | steps/exec | devices | "
            "samples/s | epoch s |"
        )
        print("|---|---|---|---|---|---|---|---|---|", flush=True)
        rows = [(*setting, ()) for setting in SETTINGS]
        rows += [(*setting, devices) for setting in data_parallel_settings(len(devices))]
        for model, pipeline, batch, precision, workers, spe, replicated in rows:
            steps = max(args.steps * 32 // batch, 20)
            warmup = max(args.warmup * 32 // batch, 2 * spe)
            warmup += -warmup % spe
            if (steps + warmup) * batch > args.samples:
                steps = args.samples // batch - warmup
            if steps < 2:  # too few samples for this batch: say so rather than time nothing
                print(f"| {model} | {pipeline} | {batch} | skipped: --samples too small |")
                continue
            rate = measure(
                images,
                labels,
                model,
                pipeline,
                batch,
                steps,
                warmup,
                precision,
                workers,
                "auto",
                spe,
                replicated,
            )
            epoch_s = 0.7 * args.samples / rate
            print(
                f"| {model} | {pipeline} | {batch} | {precision} | {workers} | {spe} | "
                f"{max(len(replicated), 1)} | {rate:.0f} | {epoch_s:.1f} |",
                flush=True,
            )
        print(f"peak host RSS {peak_rss_gb():.2f} GiB")
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
