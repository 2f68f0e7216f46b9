"""Losses: SimSiam, MoCo-v3 (InfoNCE over shards), BYOL, NNSiam's neighbour search, distillation."""

import math

import pytest
import torch
import torch.nn.functional as F

from siamcollapse.methods.losses import (
    byol_loss,
    distillation_mse,
    info_nce,
    nearest_neighbours,
    negative_cosine,
    normalized_std,
    simsiam_loss,
)


def test_negative_cosine_is_minus_one_for_aligned_and_zero_for_orthogonal():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert negative_cosine(p, p * 3) == pytest.approx(-1.0)
    assert negative_cosine(p, torch.tensor([[0.0, 1.0], [5.0, 0.0]])) == pytest.approx(0.0)


def test_simsiam_loss_stops_the_gradient_through_the_targets():
    p1, p2, z1, z2 = (torch.randn(8, 4, requires_grad=True) for _ in range(4))
    simsiam_loss(p1, p2, z1, z2).backward()
    assert p1.grad is not None and p2.grad is not None
    assert z1.grad is None and z2.grad is None


def test_without_stop_gradient_the_targets_get_a_gradient_and_the_value_is_unchanged():
    p1, p2, z1, z2 = (torch.randn(8, 4, requires_grad=True) for _ in range(4))
    loss = simsiam_loss(p1, p2, z1, z2, stop_gradient=False)
    assert float(loss) == pytest.approx(float(simsiam_loss(p1, p2, z1, z2)))
    loss.backward()
    assert z1.grad is not None and z2.grad is not None and z1.grad.abs().sum() > 0


def test_simsiam_loss_is_symmetric():
    p1, p2, z1, z2 = (torch.randn(8, 4) for _ in range(4))
    assert simsiam_loss(p1, p2, z1, z2) == pytest.approx(float(simsiam_loss(p2, p1, z2, z1)))


def test_normalized_std_is_near_one_over_sqrt_d_when_healthy_and_zero_when_collapsed():
    d = 256
    healthy = torch.randn(4096, d)
    assert normalized_std(healthy) == pytest.approx(d ** -0.5, rel=0.05)
    collapsed = torch.randn(1, d).repeat(64, 1)
    assert normalized_std(collapsed) == pytest.approx(0.0, abs=1e-6)


# --- MoCo-v3, BYOL, NNSiam and distillation losses -------------------------------------------

def _hand_info_nce(q: torch.Tensor, k: torch.Tensor, temperature: float, positives: list[int]) -> float:
    """-log softmax of each query's positive column, one query at a time, times 2 * temperature."""
    total = 0.0
    for i, column in enumerate(positives):
        logits = [float(q[i] @ k[j]) / (float(q[i].norm()) * float(k[j].norm())) / temperature for j in range(len(k))]
        total += -(logits[column] - math.log(sum(math.exp(v) for v in logits)))
    return 2 * temperature * total / len(positives)


@pytest.mark.parametrize("temperature", [1.0, 0.2])
def test_info_nce_is_the_scaled_cross_entropy_of_cosine_logits(temperature):
    q, k = torch.randn(5, 7), torch.randn(5, 7)
    expected = _hand_info_nce(q, k, temperature, positives=list(range(5)))
    assert float(info_nce(q, k, temperature)) == pytest.approx(expected, rel=1e-5)


def test_info_nce_offset_selects_this_shards_positive_columns():
    q, k = torch.randn(3, 4), torch.randn(9, 4)  # 3 local queries against a gathered batch of 9 keys
    expected = _hand_info_nce(q, k, 0.5, positives=[6, 7, 8])
    assert float(info_nce(q, k, 0.5, offset=6)) == pytest.approx(expected, rel=1e-5)
    aligned = k[3:6] + 0.01 * torch.randn(3, 4)  # queries matching keys 3..5
    assert info_nce(aligned, k, 0.1, offset=3) < info_nce(aligned, k, 0.1, offset=0)


def test_info_nce_over_shards_with_offsets_averages_to_the_whole_batch():
    q, k = torch.randn(8, 4), torch.randn(8, 4)
    shards = [info_nce(q[i:i + 4], k, 0.7, offset=i) for i in (0, 4)]
    assert float(sum(shards) / 2) == pytest.approx(float(info_nce(q, k, 0.7)), rel=1e-5)


def test_info_nce_sends_no_gradient_to_the_keys():
    q, k = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    info_nce(q, k.detach(), 1.0).backward()
    assert q.grad is not None and k.grad is None


def test_byol_loss_is_zero_aligned_two_orthogonal_four_opposite_and_stops_the_target_gradient():
    p = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    assert float(byol_loss(p, p * 2)) == pytest.approx(0.0, abs=1e-6)
    assert float(byol_loss(p, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))) == pytest.approx(2.0)
    assert float(byol_loss(p, -p)) == pytest.approx(4.0)
    p.requires_grad_(True)
    z = torch.randn(2, 2, requires_grad=True)
    byol_loss(p, z).backward()
    assert p.grad is not None and z.grad is None


def test_byol_loss_is_the_mean_squared_distance_of_normalised_vectors():
    p, z = torch.randn(6, 5), torch.randn(6, 5)
    expected = (F.normalize(p, dim=1) - F.normalize(z, dim=1)).square().sum(1).mean()
    assert float(byol_loss(p, z)) == pytest.approx(float(expected), rel=1e-5)


def test_nearest_neighbours_matches_a_brute_force_search():
    z, queue = torch.randn(6, 4), torch.randn(20, 4) * torch.rand(20, 1) * 5  # norms vary: cosine, not dot
    found = nearest_neighbours(z, queue)
    for row, result in zip(z, found):
        best = max(range(len(queue)), key=lambda j: float(F.cosine_similarity(row, queue[j], dim=0)))
        assert torch.equal(result, queue[best])


def test_nearest_neighbours_searches_only_valid_rows():
    z = torch.randn(5, 3)
    queue = torch.cat([z * 2, torch.randn(4, 3)])  # the exact matches sit in the invalid part
    valid = torch.tensor([False] * 5 + [True] * 4)
    found = nearest_neighbours(z, queue, valid)
    assert all(any(torch.equal(row, entry) for entry in queue[5:]) for row in found)


def test_distillation_mse_normalises_the_target_and_stops_its_gradient():
    prediction, target = torch.randn(8, 3, requires_grad=True), torch.randn(8, 3, requires_grad=True)
    mean, std = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 0.5, 1.0])
    loss = distillation_mse(prediction, target, mean, std, eps=0.0)
    expected = ((prediction - (target - mean) / std) ** 2).mean()
    torch.testing.assert_close(loss.detach(), expected.detach())
    loss.backward()
    assert prediction.grad is not None and target.grad is None


def test_nearest_neighbours_by_l2_matches_a_brute_force_search():
    z, queue = torch.randn(6, 4), torch.randn(20, 4) * torch.rand(20, 1) * 5
    found = nearest_neighbours(z, queue, metric="l2")
    for row, result in zip(z, found):
        best = min(range(len(queue)), key=lambda j: float((row - queue[j]).square().sum()))
        assert torch.equal(result, queue[best])


