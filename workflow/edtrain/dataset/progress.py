"""Progress over files: a tqdm bar on a terminal, a few plain log lines in batch jobs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)
LOG_STEPS = 10


def progress(items: Sequence[T], desc: str, unit: str = "file") -> Iterator[T]:
    """Yield ``items``, reporting progress in the way that suits where stderr goes."""
    if sys.stderr.isatty():
        from tqdm import tqdm  # imported here: batch jobs, which do not draw bars, start faster

        yield from tqdm(items, desc=desc, unit=unit)
        return
    every = max(1, len(items) // LOG_STEPS)
    for i, item in enumerate(items, 1):
        yield item
        if i % every == 0 or i == len(items):
            log.info("%s: %d/%d %ss", desc, i, len(items), unit)
