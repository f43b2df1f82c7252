"""Triplet matching on metadata alone (docs/data_format.md §3): keys, cuts, duplicates, labels."""

import numpy as np
import pytest

from edtrain.dataset import match
from edtrain.dataset.match import Cuts, match_triplets
from edtrain.formats import columns as col


def _meta(plane, event, match_id, main=1, marley=1, es=1, mom=(0.0, 0.0, 0.02), energy=10.0):
    """Metadata rows of one plane; scalar fields broadcast over the rows."""
    event = np.atleast_1d(np.asarray(event, dtype=np.float32))
    meta = np.zeros((len(event), 14), dtype=np.float32)
    meta[:, col.EVENT] = event
    meta[:, col.MATCH_ID] = match_id
    meta[:, col.IS_MAIN_TRACK] = main
    meta[:, col.IS_MARLEY] = marley
    meta[:, col.IS_ES] = es
    meta[:, col.MOM] = mom
    meta[:, col.CLUSTER_ENERGY] = energy
    meta[:, col.PLANE] = col.PLANE_ID[plane]
    return meta


def test_rows_are_matched_by_event_and_match_id_not_position():
    x = _meta("X", [10, 11, 12, 13], [0, 1, 2, 3])
    u = _meta("U", [13, 12, 99, 11, 10], [3, 2, 0, 1, 0])  # shuffled, with a stranger
    v = _meta("V", [11, 10, 12, 13], [1, 0, 2, 3])
    m = match_triplets(u, v, x, Cuts())
    np.testing.assert_array_equal(m.x, [0, 1, 2, 3])
    np.testing.assert_array_equal(u[m.u, col.EVENT], x[m.x, col.EVENT])
    np.testing.assert_array_equal(v[m.v, col.MATCH_ID], x[m.x, col.MATCH_ID])
    np.testing.assert_array_equal(m.u, [4, 3, 1, 0])
    assert m.counts["matched"] == 4 and len(m.dropped) == 0


def test_same_match_id_in_another_event_does_not_match():
    x = _meta("X", [10], [5])
    u = _meta("U", [11], [5])
    v = _meta("V", [10], [5])
    m = match_triplets(u, v, x, Cuts())
    assert len(m.x) == 0 and m.counts["unmatched"] == 1 and len(m.dropped) == 0


def test_only_main_track_rows_with_a_match_id_are_candidates():
    x = np.concatenate(
        [_meta("X", 10, 0), _meta("X", 11, 1, main=0), _meta("X", 12, -1), _meta("X", 13, 3)]
    )
    u, v = _meta("U", [10, 11, 12, 13], [0, 1, -1, 3]), _meta("V", [10, 11, 12, 13], [0, 1, -1, 3])
    m = match_triplets(u, v, x, Cuts())
    np.testing.assert_array_equal(m.x, [0, 3])
    assert m.counts["main_track"] == 2


@pytest.mark.parametrize(
    ("cuts", "kept"),
    [
        (Cuts(), [0]),
        (Cuts(es_only=False), [0, 2]),
        (Cuts(marley_only=False), [0, 1]),
        (Cuts(es_only=False, marley_only=False), [0, 1, 2, 3]),
        (Cuts(es_only=False, marley_only=False, energy_min=5.0, energy_max=20.0), [0, 3]),
    ],
)
def test_selection_cuts(cuts, kept):
    x = np.concatenate(
        [
            _meta("X", 10, 0, energy=10.0),
            _meta("X", 11, 1, marley=0, energy=30.0),
            _meta("X", 12, 2, es=0, energy=4.0),
            _meta("X", 13, 3, marley=0, es=0, energy=5.0),
        ]
    )
    u, v = _meta("U", [10, 11, 12, 13], [0, 1, 2, 3]), _meta("V", [10, 11, 12, 13], [0, 1, 2, 3])
    np.testing.assert_array_equal(match_triplets(u, v, x, cuts).x, kept)


def test_momentum_problems_are_dropped_with_reasons():
    x = np.concatenate(
        [_meta("X", 10, 0), _meta("X", 11, 1, mom=(0, 0, 0)), _meta("X", 12, 2, mom=(np.nan, 0, 1))]
    )
    u, v = _meta("U", [10, 11, 12], [0, 1, 2]), _meta("V", [10, 11, 12], [0, 1, 2])
    m = match_triplets(u, v, x, Cuts())
    np.testing.assert_array_equal(m.x, [0])
    assert dict(zip(m.dropped, m.reasons, strict=True)) == {
        1: match.ZERO_MOMENTUM,
        2: match.NONFINITE_MOMENTUM,
    }


def test_duplicate_keys_are_dropped_not_guessed():
    x = _meta("X", [10, 10, 11, 12], [0, 0, 1, 2])
    u = _meta("U", [10, 11, 11, 12], [0, 1, 1, 2])
    v = _meta("V", [10, 11, 12, 12], [0, 1, 2, 2])
    m = match_triplets(u, v, x, Cuts())
    assert len(m.x) == 0
    assert sorted(zip(m.dropped.tolist(), m.reasons, strict=True)) == [
        (0, match.DUPLICATE_X),
        (1, match.DUPLICATE_X),
        (2, match.DUPLICATE_U),
        (3, match.DUPLICATE_V),
    ]


def test_empty_and_all_noise_files():
    empty = np.empty((0, 14), dtype=np.float32)
    x = _meta("X", [10], [0])
    assert len(match_triplets(empty, empty, empty, Cuts()).x) == 0
    assert (
        match_triplets(_meta("U", [10], [-1]), _meta("V", [10], [0]), x, Cuts()).counts["unmatched"]
        == 1
    )
