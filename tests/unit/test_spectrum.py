"""The streamed spectrum equals a float64 SVD of the whole centred matrix."""

import numpy as np
import torch

from siamcollapse.evaluation.spectrum import SpectrumAccumulator


def streamed(x: np.ndarray, batch: int) -> np.ndarray:
    acc = SpectrumAccumulator(x.shape[1])
    for i in range(0, len(x), batch):
        acc.update(torch.from_numpy(x[i:i + batch]).float())
    return acc.singular_values()


def svd_of_centred(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32).astype(np.float64)  # the same float32 values the stream sees
    return np.linalg.svd(x - x.mean(0), compute_uv=False)


def test_streamed_singular_values_match_full_svd_within_1e6_of_the_largest():
    rng = np.random.default_rng(0)
    # Features with a large common offset (as ReLU outputs have) and a decaying spectrum.
    x = rng.normal(size=(3000, 64)) * np.geomspace(10, 1e-3, 64) + 50.0
    expected = svd_of_centred(x)
    got = streamed(x, batch=256)
    assert np.max(np.abs(got - expected)) <= 1e-6 * expected[0]


def test_low_rank_features_give_zero_tail():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1000, 3)) @ rng.normal(size=(3, 16)) + 7.0
    got = streamed(x, batch=100)
    assert np.all(got[3:] <= 1e-6 * got[0])
    assert got[2] > 1e-3 * got[0]


def test_batch_size_does_not_change_the_result():
    x = np.random.default_rng(2).normal(size=(777, 20))
    assert np.allclose(streamed(x, 1), streamed(x, 777), rtol=0, atol=1e-9 * svd_of_centred(x)[0])
