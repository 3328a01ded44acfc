"""Content-keyed splits: stable under new data, so production is never scored on its own
training examples after the data grows."""

from __future__ import annotations

import numpy as np
import pytest

from flywheel.datasets.splitting import stable_split


def _keys(n: int, start: int = 0) -> list[str]:
    return [f"sha-{i:06d}" for i in range(start, start + n)]


def _where(splits: dict[str, np.ndarray], keys: list[str]) -> dict[str, str]:
    return {keys[i]: name for name, idx in splits.items() for i in idx}


def test_same_keys_same_split_and_the_seed_matters() -> None:
    keys = _keys(500)
    labels = np.arange(500) % 5
    first = stable_split(keys, 0.15, 0.2, seed=42, labels=labels)
    again = stable_split(keys, 0.15, 0.2, seed=42, labels=labels)
    other = stable_split(keys, 0.15, 0.2, seed=7, labels=labels)
    assert all(np.array_equal(first[s], again[s]) for s in first)
    assert not np.array_equal(first["test"], other["test"])
    everything = np.sort(np.concatenate(list(first.values())))
    assert np.array_equal(everything, np.arange(500))


def test_new_rows_never_move_old_rows() -> None:
    old = _keys(300)
    grown = _keys(90, start=300) + old  # new rows arrive (even in front of the old ones)
    old_labels = np.arange(300) % 3
    grown_labels = np.concatenate([np.arange(90) % 3, old_labels])
    before = _where(stable_split(old, 0.15, 0.2, 1, old_labels), old)
    after = _where(stable_split(grown, 0.15, 0.2, 1, grown_labels), grown)
    assert {k: after[k] for k in old} == before


def test_equal_content_shares_a_split() -> None:
    keys = _keys(200) + _keys(200)  # every row twice
    where = stable_split(keys, 0.2, 0.2, seed=3)
    side = {}
    for name, idx in where.items():
        for i in idx:
            assert side.setdefault(keys[i], name) == name


def test_shares_follow_the_params() -> None:
    n = 20_000
    labels = np.arange(n) % 4
    splits = stable_split(_keys(n), 0.15, 0.2, seed=0, labels=labels)
    assert abs(len(splits["test"]) / n - 0.2) < 0.015
    assert abs(len(splits["val"]) / n - 0.15) < 0.015
    for label in range(4):
        share = np.mean(labels[splits["test"]] == label)
        assert abs(share - 0.25) < 0.03


def test_small_classes_reach_every_split() -> None:
    labels = np.array([0] * 100 + [1] * 3 + [2] * 4)
    splits = stable_split(_keys(len(labels)), 0.1, 0.1, seed=5, labels=labels)
    for name in ("train", "val", "test"):
        assert set(labels[splits[name]]) == {0, 1, 2}, name


def test_regression_rows_and_no_rows() -> None:
    splits = stable_split(_keys(3), 0.01, 0.01, seed=0)
    assert all(len(v) == 1 for v in splits.values())
    with pytest.raises(ValueError, match="no rows"):
        stable_split([], 0.1, 0.1, seed=0)
