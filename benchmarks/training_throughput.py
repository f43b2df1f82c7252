"""Training throughput: edtrain's streaming pipeline vs the predecessor's in-memory recipe.

Both train the same predecessor model (angular loss, Adam, batch 32 by default) on the same
synthetic images; "memory" is model.fit on float32 numpy arrays held in RAM (how v7–v13
trained), "stream" is edtrain.batch_stream.ImageBatches reading the float16 image file.
samples/s is measured after the first ``--warmup`` steps (graph tracing, compilation).

    python benchmarks/training_throughput.py                    # CPU table, both models
    python benchmarks/training_throughput.py --rss --samples 170000   # peak host RSS only
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from edtrain.batch_stream import ImageBatches
from edtrain.dataset.reader import Images
from edtrain.device import data_parallel_scope, describe_device
from edtrain.legacy import PREDECESSOR_FIXED
from edtrain.losses import axis_bins, get_loss, head, output_size
from edtrain.model import IMAGE_SHAPE, build_model

# v22: v21 on the central 64×16, time-only pools for the first two layers
V22 = {
    "conv_layers": 4,
    "filters": 64,
    "dense_units": 2048,
    "crop": [64, 16],
    "pools": [[2, 1], [2, 1], [2, 2], [2, 2]],
}
MODELS = {
    "3Lx32F": {"conv_layers": 3, "filters": 32},
    "4Lx64F": {"conv_layers": 4, "filters": 64},
    # the second family at the width v17–v19 train at (docs/training.md), and both families
    # at the accuracy benchmark's CPU width (× 0.25)
    "resnet4x64": {"type": "resnet", "conv_layers": 4, "filters": 64},
    # v21: the predecessor's convolutions with the 2048-unit dense head
    "v21": {"conv_layers": 4, "filters": 64, "dense_units": 2048},
    "v22": V22,
    "v24": {**V22, "plane_supervision": 0.3},  # a 2-D head per branch, its term in the loss
    "v25": {**V22, "plane_supervision": 0.3},  # v24's network with the angular_axial loss
    "v26": {**V22, "plane_supervision": 0.3},  # v24's network with an axis and a direction head
    # v26's (and v27's) network, U and V through one branch
    "v28": {**V22, "plane_supervision": 0.3, "shared_induction": True},
    "v29": {**V22, "plane_supervision": 0.3, "shared_induction": True},  # v28's, bins head
    "v30": {**V22, "plane_supervision": 0.3, "shared_induction": True, "dropout": 0.1},
    "4Lx16F": {"conv_layers": 4, "filters": 16, "dense_units": 64},
    "resnet4x16": {"type": "resnet", "conv_layers": 4, "filters": 16, "dense_units": 64},
    "tiny": {"conv_layers": 2, "filters": 4, "dense_units": 16},
}
LOSSES = {
    "v25": "angular_axial",
    "v26": "axial_direction",
    "v28": "axial_direction",
    "v29": "axial_bins",
    "v30": "axial_bins",
}  # the others: the angular loss
PREDECESSOR = PREDECESSOR_FIXED["model"]  # the layers v7–v13 had whatever their config said


def make_images(path: Path, n: int, seed: int = 0, chunk: int = 512) -> tuple[Images, np.ndarray]:
    """A float16 (n, 3, 128, 32) .npy of sparse ADC-like images, written chunk by chunk.

    Written with plain file writes, not through a mapping, so generating a large file does
    not inflate this process's peak resident memory (which ``--rss`` reports).
    """
    rng = np.random.default_rng(seed)
    header = {"descr": "<f2", "fortran_order": False, "shape": (n, *IMAGE_SHAPE)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, n, chunk):
            block = rng.exponential(40.0, size=(min(chunk, n - start), *IMAGE_SHAPE))
            block[rng.random(block.shape) < 0.9] = 0.0  # ~10 % of pixels lit, like TP clusters
            f.write(block.astype(np.float16).tobytes())
    labels = rng.normal(size=(n, 3)).astype(np.float32)
    labels /= np.linalg.norm(labels, axis=1, keepdims=True)
    return Images([path]), labels


class Throughput(keras.callbacks.Callback):
    """Samples per second from the end of step ``warmup`` to the end of the last step.

    Reading the loss waits for the device, as TerminateOnNaN does in real training, so
    asynchronous dispatch cannot make a step look faster than it is.
    """

    def __init__(self, warmup: int, batch_size: int) -> None:
        super().__init__()
        self.warmup, self.batch_size = warmup, batch_size
        self.first: int | None = None

    def on_train_batch_end(self, batch, logs=None):
        float(logs["loss"])
        now = time.perf_counter()
        if self.first is None:
            if batch + 1 >= self.warmup:
                self.first, self.start = batch, now
        else:
            self.last, self.elapsed = batch, now - self.start

    @property
    def samples_per_s(self) -> float:
        return (self.last - self.first) * self.batch_size / self.elapsed


def measure(
    images: Images,
    labels: np.ndarray,
    model_name: str,
    pipeline: str,
    batch_size: int = 32,
    steps: int = 40,
    warmup: int = 5,
    precision: str = "float32",
    workers: int = 1,
    jit_compile: bool | str = "auto",
    steps_per_execution: int = 1,
    devices: Sequence[str] = (),
) -> float:
    """samples/s of one epoch of (warmup + steps) batches with the given settings.

    With ``devices`` (edtrain.device.data_parallel_devices) the model is replicated on them
    and each (global) batch split between them, as in training.
    """
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    with data_parallel_scope(devices):
        model_cfg = {**PREDECESSOR, **MODELS[model_name]}
        loss = LOSSES.get(model_name, "angular")
        model = build_model(
            model_cfg, {"normalization": "none"}, output_size(loss), head(loss), axis_bins(loss)
        )
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=get_loss(loss, model_cfg.get("plane_supervision", 0.0)),
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
        )
        n = (warmup + steps) * batch_size
        timer = Throughput(warmup, batch_size)
        if pipeline == "memory":
            x = np.asarray(images[:n], dtype=np.float32)  # the predecessor's arrays in RAM
            model.fit(x, labels[:n], batch_size=batch_size, epochs=1, callbacks=[timer], verbose=0)
        else:
            batches = ImageBatches(
                images,
                np.arange(n),
                labels,
                batch_size,
                seed=0,
                workers=workers,
                replicas=max(len(devices), 1),
            )
            model.fit(batches, epochs=1, shuffle=False, callbacks=[timer], verbose=0)
    keras.mixed_precision.set_global_policy("float32")
    return timer.samples_per_s


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {describe_device()}"
    )


def throughput_table(args: argparse.Namespace, images: Images, labels: np.ndarray) -> None:
    print(f"machine: {machine()}; backend {keras.backend.backend()}; batch {args.batch_size}")
    print("| model | pipeline | samples/s | stream / memory |")
    print("|---|---|---|---|")
    for model_name in args.models:
        rates: dict[str, list[float]] = {p: [] for p in args.pipelines}
        for _ in range(args.repeats):  # alternate, so drifting machine load hits both alike
            for pipeline in rates:
                rates[pipeline].append(
                    measure(
                        images,
                        labels,
                        model_name,
                        pipeline,
                        args.batch_size,
                        args.steps,
                        args.warmup,
                        workers=args.workers,
                    )
                )
        median = {p: float(np.median(r)) for p, r in rates.items()}
        for pipeline, rate in median.items():
            ratio = (
                f"{rate / median['memory']:.3f}" if pipeline == "stream" and len(median) > 1 else ""
            )
            print(f"| {model_name} | {pipeline} | {rate:.1f} | {ratio} |")


def rss_check(args: argparse.Namespace, images: Images, labels: np.ndarray) -> None:
    """Peak RSS of a tiny model streaming one full epoch over the whole image file."""
    keras.utils.set_random_seed(0)
    model = build_model({**PREDECESSOR, **MODELS["tiny"]}, {"normalization": "none"})
    model.compile(optimizer="adam", loss=get_loss("angular"))
    batches = ImageBatches(
        images, np.arange(len(images)), labels, 256, seed=0, workers=args.workers
    )
    before = peak_rss_gb()
    start = time.perf_counter()
    model.fit(batches, epochs=1, shuffle=False, verbose=0)
    size_gb = len(images) * images.row_bytes / 1024**3
    print(f"machine: {machine()}; dataset {len(images)} samples, {size_gb:.2f} GiB on disk")
    print(
        f"peak RSS before fit {before:.2f} GiB, after one epoch {peak_rss_gb():.2f} GiB "
        f"({time.perf_counter() - start:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["3Lx32F", "4Lx64F"], choices=MODELS)
    parser.add_argument(
        "--pipelines", nargs="+", default=["memory", "stream"], choices=["memory", "stream"]
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="ImageBatches worker threads")
    parser.add_argument("--samples", type=int, default=0, help="dataset size (default: enough)")
    parser.add_argument("--rss", action="store_true", help="peak-RSS check instead of the table")
    args = parser.parse_args()
    n = args.samples or (args.warmup + args.steps) * args.batch_size
    workdir = Path(tempfile.mkdtemp(prefix="edtrain-bench-"))
    try:
        images, labels = make_images(workdir / "images.npy", n)
        (rss_check if args.rss else throughput_table)(args, images, labels)
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
