"""A faithful re-creation of the predecessor's three-plane loader, for side-by-side timing.

What the v7–v13 trainer did (docs/dataset.md, "Why not the old loader"): for every X file in
sorted order, ``np.load`` all three planes whole, build a Python dict (event, match_id) → row for
U and V, walk the X rows in Python, append the matched images (views into the loaded files) and
labels to lists, and turn the lists into arrays with ``np.array`` at the end. Run as a script it
loads one directory and prints a JSON line: triplets, wall time, bytes read (rchar), peak RSS.
"""

from __future__ import annotations

import glob
import json
import os
import resource
import sys
import time

import numpy as np


def load_triplets(directory: str) -> dict[str, np.ndarray]:
    """All matched main-track triplets of a flat (nov11) directory, the old way."""
    images_u, images_v, images_x, labels, energies = [], [], [], [], []
    for x_path in sorted(glob.glob(os.path.join(directory, "*_planeX.npz"))):
        base = x_path[: -len("_planeX.npz")]
        u_path, v_path = f"{base}_planeU.npz", f"{base}_planeV.npz"
        if not (os.path.exists(u_path) and os.path.exists(v_path)):
            continue
        try:
            x_file, u_file, v_file = np.load(x_path), np.load(u_path), np.load(v_path)
            x_img, x_meta = x_file["images"], x_file["metadata"]
            u_img, u_meta = u_file["images"], u_file["metadata"]
            v_img, v_meta = v_file["images"], v_file["metadata"]
        except Exception:  # zero-byte and broken files were skipped like this
            continue
        u_lookup = {(int(m[0]), int(m[13])): i for i, m in enumerate(u_meta)}
        v_lookup = {(int(m[0]), int(m[13])): i for i, m in enumerate(v_meta)}
        for i, m in enumerate(x_meta):
            if m[2] != 1 or m[13] < 0:
                continue
            key = (int(m[0]), int(m[13]))
            if key in u_lookup and key in v_lookup:
                images_u.append(u_img[u_lookup[key]])
                images_v.append(v_img[v_lookup[key]])
                images_x.append(x_img[i])
                momentum = m[7:10]
                labels.append(momentum / np.linalg.norm(momentum))
                energies.append(m[10])
    return {
        "images_u": np.array(images_u),
        "images_v": np.array(images_v),
        "images_x": np.array(images_x),
        "labels": np.array(labels),
        "energies": np.array(energies),
    }


def _rchar() -> int:
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar"))


if __name__ == "__main__":
    start, read_before = time.perf_counter(), _rchar()
    arrays = load_triplets(sys.argv[1])
    result = {
        "triplets": len(arrays["labels"]),
        "wall_s": time.perf_counter() - start,
        "bytes_read": _rchar() - read_before,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    print(json.dumps(result))
