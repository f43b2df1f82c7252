"""The common test set and nested subsets must not depend on file order, pool size or chunking."""

import numpy as np
import pytest

from edtrain import splits


def _keys(n_files: int, per_file: int):
    basename = np.repeat([f"prod_gen_{i:06d}_bg_matched" for i in range(n_files)], per_file)
    event = np.tile(np.arange(per_file) * 7 + 12000, n_files)
    match_id = np.tile(np.arange(per_file), n_files)
    return basename, event, match_id


def test_key_hash_depends_on_every_key_field():
    b, e, m = _keys(2, 3)
    h = splits.key_hash(b, e, m)
    assert len(np.unique(h)) == len(h)
    # match_id alone repeats across files; the pair with the basename does not collide
    assert splits.key_hash(b[:1], e[:1], m[:1])[0] != splits.key_hash(b[3:4], e[:1], m[:1])[0]
    assert splits.key_hash(b[:1], e[:1] + 1, m[:1])[0] != h[0]
    assert splits.key_hash(b[:1], e[:1], m[:1] + 1)[0] != h[0]


def test_key_hash_is_order_independent():
    b, e, m = _keys(5, 10)
    perm = np.random.default_rng(1).permutation(len(b))
    np.testing.assert_array_equal(
        splits.key_hash(b, e, m)[perm], splits.key_hash(b[perm], e[perm], m[perm])
    )


def test_test_fraction_and_stability_under_pool_growth():
    b, e, m = _keys(200, 50)
    h = splits.key_hash(b, e, m)
    is_test = splits.test_mask(h, 0.15)
    assert abs(is_test.mean() - 0.15) < 0.01
    # a production that gains files keeps every earlier test decision
    b2, e2, m2 = _keys(300, 50)
    np.testing.assert_array_equal(
        splits.test_mask(splits.key_hash(b2, e2, m2), 0.15)[: len(h)], is_test
    )


def test_nested_subsets_and_shared_test_set():
    b, e, m = _keys(100, 40)
    h = splits.key_hash(b, e, m)
    rank = splits.pool_rank(h, splits.test_mask(h, 0.2))
    small = splits.select_version(h, rank, 500, 0.2)
    large = splits.select_version(h, rank, 2000, 0.3)
    assert set(np.r_[small.train, small.val]) <= set(np.r_[large.train, large.val])
    np.testing.assert_array_equal(small.test, large.test)
    assert len(small.val) == 100 and len(small.train) == 400
    assert not set(small.test) & set(np.r_[large.train, large.val])


def test_requests_beyond_the_pool_are_capped_and_reported():
    b, e, m = _keys(10, 10)
    h = splits.key_hash(b, e, m)
    rank = splits.pool_rank(h, splits.test_mask(h, 0.5))
    sel = splits.select_version(h, rank, 10_000, 0.2)
    assert sel.capped and sel.available == len(sel.train) + len(sel.val)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_invalid_fractions_are_rejected(fraction):
    with pytest.raises(ValueError, match="fraction"):
        splits.test_mask(np.zeros(3, dtype=np.uint64), fraction)
