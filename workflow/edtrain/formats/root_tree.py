"""Cluster files as upstream writes them: TTrees with ``std::vector`` branches, via CERN's ROOT.

Upstream's C++ stages open a cluster file's trees with ``dynamic_cast<TTree*>`` and read the
per-TP branches as ``std::vector<int>``/``std::vector<double>``. Only ROOT writes that layout
(uproot writes jagged TTree branches as counted C arrays, and a dict of branches as an
RNTuple), so where ROOT is installed (the ``root`` extra: ``pip install edtrain[root]``) the
production writes its cluster files with it. One C++ function, compiled once per process,
fills a tree from the numpy columns in branch order, so no Python runs per cluster.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

_FILL = r"""
#include <TTree.h>
#include <cstring>
#include <string>
#include <vector>

// kinds: 'I' int32, 'F' float32, 'D' float64, 'O' bool (scalars from a numpy column),
// 'S' std::string (from ``strings``), 'i' std::vector<int>, 'd' std::vector<double>
// (from a flat column cut by ``offsets``).
void edtrain_fill_tree(TTree* tree, long long entries, const std::vector<std::string>& names,
                       const std::string& kinds, const std::vector<long long>& addresses,
                       long long offsets_address, const std::vector<std::string>& strings) {
  const size_t n = names.size();
  std::vector<double> scalars(n);
  std::vector<std::string> text(1);
  std::vector<std::vector<int>> ints(n);
  std::vector<std::vector<double>> doubles(n);
  const long long* offsets = reinterpret_cast<const long long*>(offsets_address);
  for (size_t b = 0; b < n; ++b) {
    const char* name = names[b].c_str();
    switch (kinds[b]) {
      case 'S': tree->Branch(name, &text[0]); break;
      case 'i': tree->Branch(name, &ints[b]); break;
      case 'd': tree->Branch(name, &doubles[b]); break;
      default: tree->Branch(name, &scalars[b], (names[b] + "/" + kinds[b]).c_str());
    }
  }
  for (long long e = 0; e < entries; ++e) {
    for (size_t b = 0; b < n; ++b) {
      const char* column = reinterpret_cast<const char*>(addresses[b]);
      switch (kinds[b]) {
        case 'S': text[0] = strings[e]; break;
        case 'i': {
          const int* p = reinterpret_cast<const int*>(column);
          ints[b].assign(p + offsets[e], p + offsets[e + 1]);
          break;
        }
        case 'd': {
          const double* p = reinterpret_cast<const double*>(column);
          doubles[b].assign(p + offsets[e], p + offsets[e + 1]);
          break;
        }
        case 'O': std::memcpy(&scalars[b], column + e, 1); break;
        case 'D': std::memcpy(&scalars[b], column + 8 * e, 8); break;
        default: std::memcpy(&scalars[b], column + 4 * e, 4);
      }
    }
    tree->Fill();
  }
  tree->ResetBranchAddresses();
}
"""
_KINDS = {
    np.dtype(np.int32): "I",
    np.dtype(np.float32): "F",
    np.dtype(np.float64): "D",
    np.dtype(np.bool_): "O",
}


@functools.cache
def root() -> Any:
    """PyROOT with the tree filler compiled, or None where ROOT is not installed."""
    os.environ.setdefault("ROOT_MAX_THREADS", "1")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the PyPI build warns that it is an alpha
            import ROOT
    except ImportError:
        return None
    ROOT.gROOT.SetBatch(True)
    ROOT.gInterpreter.Declare(_FILL)
    return ROOT


def writer() -> str:
    """What ``write_tree_file`` writes with here, for the production's record."""
    found = root()
    return f"ROOT {found.gROOT.GetVersion()} (TTree)" if found else "unavailable"


def _fill(ROOT: Any, name: str, columns: dict[str, np.ndarray], offsets: np.ndarray) -> None:
    """One tree in the current directory from typed numpy columns (``tp_*`` flat)."""
    entries = len(offsets) - 1
    kept, kinds, addresses, strings = [], [], [], []
    for key, column in columns.items():
        if column.dtype.kind == "U":
            kinds.append("S")
            strings = [str(s) for s in column]
            column = np.zeros(0)
        elif key.startswith("tp_"):
            kinds.append("d" if column.dtype == np.float64 else "i")
        else:
            kinds.append(_KINDS[column.dtype])
        kept.append(np.ascontiguousarray(column))
        addresses.append(kept[-1].ctypes.data)
    tree = ROOT.TTree(name, name)
    bounds = np.ascontiguousarray(offsets, dtype=np.int64)
    ROOT.edtrain_fill_tree(
        tree, entries, list(columns), "".join(kinds), addresses, bounds.ctypes.data, strings
    )
    tree.Write()


def write_tree_file(
    path: Path,
    trees: dict[str, dict[str, tuple[dict[str, np.ndarray], np.ndarray]]],
    metadata: dict[str, np.ndarray],
) -> None:
    """``trees[directory][tree name]`` = (typed columns in branch order, TP offsets), and a
    root-level one-entry tree of ``metadata``; written to a temporary name, then renamed."""
    ROOT = root()
    partial = path.with_name(path.name + ".partial")
    file = ROOT.TFile(str(partial), "RECREATE")
    if file.IsZombie():
        raise OSError(f"{path}: ROOT cannot create the file")
    try:
        for directory, named in trees.items():
            file.mkdir(directory).cd()
            for name, (columns, offsets) in named.items():
                _fill(ROOT, name, columns, offsets)
        file.cd()
        _fill(ROOT, "clustering_metadata", metadata, np.zeros(2, dtype=np.int64))
    finally:
        file.Close()
    partial.replace(path)
