"""Reading a dataset directory and streaming batches from its images.

Host memory stays independent of the dataset size: only the sample table and the index
arrays are in RAM. Batches are read from the image files with ``os.preadv``
(``edtrain.dataset.reader``), outside any memory map, so they do not count towards the job's
resident memory. Nothing is copied to the device beyond the batch in flight.
The shuffle is a pure function of (seed, epoch), set from Keras' epoch number by the
``EpochShuffle`` callback, so a resumed run sees exactly the batches an uninterrupted run
would have seen (Keras' own per-epoch hooks on a PyDataset also fire for its signature probe,
and its batch-order shuffle draws from Python's global RNG, so fit runs with shuffle=False).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from edtrain.augment import augment
from edtrain.dataset.reader import MANIFEST, SAMPLES, Images, open_images

LABEL_COLUMNS = ["label_x", "label_y", "label_z"]


@dataclass(frozen=True)
class Dataset:
    """A dataset directory opened for reading: memory map, sample table, manifest."""

    images: Images
    samples: pd.DataFrame
    manifest: dict[str, Any]

    @property
    def labels(self) -> np.ndarray:
        return self.samples[LABEL_COLUMNS].to_numpy(np.float32)


def open_dataset(path: str | Path, columns: list[str] | None = None) -> Dataset:
    """Open the image parts for reading, plus samples.parquet and manifest.json."""
    path = Path(path)
    images = open_images(path)
    samples = pd.read_parquet(path / SAMPLES, columns=columns)
    manifest = json.loads((path / MANIFEST).read_text())
    if len(samples) != len(images):
        raise ValueError(f"{path}: {len(samples)} sample rows but {len(images)} images")
    return Dataset(images=images, samples=samples, manifest=manifest)


class ImageBatches(keras.utils.PyDataset):
    """Batches (images, labels) of the given rows of a dataset's images.

    Images stay float16 as stored: the model casts them in its graph, which is ~10× faster
    than numpy's float16 → float32 conversion and halves the host-to-device transfer.

    With ``seed`` set, ``set_epoch`` orders the rows by a generator seeded with
    (seed, epoch). Without a seed the rows are served in order (validation, prediction).

    With ``replicas`` (data parallelism; ``batch_size`` a multiple of it) the last batch is
    cut to a multiple of ``replicas``, so every replica gets an equal share: JAX cannot shard
    anything else, and on TensorFlow an unequal split would weight the samples unequally.
    The at most ``replicas`` − 1 rows left out of a training epoch change with the shuffle.

    With ``augment`` (and a seed) each batch is augmented (``edtrain.augment``) by a
    generator seeded with (seed, epoch, batch index): a resumed run sees the same batches.
    """

    def __init__(
        self,
        images: Images,
        rows: np.ndarray,
        labels: np.ndarray | None,
        batch_size: int,
        seed: int | None = None,
        replicas: int = 1,
        augment: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if augment and (seed is None or labels is None):
            raise ValueError("augmentation needs a seed and labels (training batches)")
        if batch_size % replicas:
            raise ValueError(f"batch size {batch_size} is not a multiple of {replicas} replicas")
        self.images = images
        self.rows = np.asarray(rows, dtype=np.int64)
        self.labels = labels
        self.batch_size = int(batch_size)
        self.seed = seed
        self.augment = augment
        self.served = len(self.rows) - len(self.rows) % self.batch_size % replicas
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Serve the row order of ``epoch`` (0-based) next."""
        self.epoch = int(epoch)
        if self.seed is None:
            self._order = self.rows
        else:
            self._order = np.random.default_rng([self.seed, self.epoch]).permutation(self.rows)

    def __len__(self) -> int:
        return -(-self.served // self.batch_size)

    def __getitem__(self, index: int):
        stop = min((index + 1) * self.batch_size, self.served)
        rows = np.sort(self._order[index * self.batch_size : stop])
        x = self.images.read(rows)
        if self.labels is None:
            return (x,)
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            return augment(x, self.labels[rows], rng)
        return x, self.labels[rows]
