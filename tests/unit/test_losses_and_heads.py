"""SimSiam's loss, heads and method wiring."""

import pytest
import torch

from siamcollapse.methods import build_method
from siamcollapse.methods.losses import negative_cosine, normalized_std, simsiam_loss
from siamcollapse.models.backbones import build_backbone, state_fingerprint
from siamcollapse.models.heads import predictor, projector

SETTINGS = {"proj_dim": 64, "pred_dim": 16, "fix_pred_lr": True}


def test_negative_cosine_is_minus_one_for_aligned_and_zero_for_orthogonal():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert negative_cosine(p, p * 3) == pytest.approx(-1.0)
    assert negative_cosine(p, torch.tensor([[0.0, 1.0], [5.0, 0.0]])) == pytest.approx(0.0)


def test_simsiam_loss_stops_the_gradient_through_the_targets():
    p1, p2, z1, z2 = (torch.randn(8, 4, requires_grad=True) for _ in range(4))
    simsiam_loss(p1, p2, z1, z2).backward()
    assert p1.grad is not None and p2.grad is not None
    assert z1.grad is None and z2.grad is None


def test_simsiam_loss_is_symmetric():
    p1, p2, z1, z2 = (torch.randn(8, 4) for _ in range(4))
    assert simsiam_loss(p1, p2, z1, z2) == pytest.approx(float(simsiam_loss(p2, p1, z2, z1)))


def test_normalized_std_is_near_one_over_sqrt_d_when_healthy_and_zero_when_collapsed():
    d = 256
    healthy = torch.randn(4096, d)
    assert normalized_std(healthy) == pytest.approx(d ** -0.5, rel=0.05)
    collapsed = torch.randn(1, d).repeat(64, 1)
    assert normalized_std(collapsed) == pytest.approx(0.0, abs=1e-6)


def test_projector_ends_in_affine_free_bn_with_frozen_bias():
    head = projector(32, 64)
    assert isinstance(head[-1], torch.nn.BatchNorm1d) and not head[-1].affine
    assert not head[-2].bias.requires_grad
    assert head(torch.randn(8, 32)).shape == (8, 64)


def test_predictor_is_a_bottleneck():
    head = predictor(64, 16)
    assert head[0].out_features == 16 and head(torch.randn(8, 64)).shape == (8, 64)


@pytest.mark.parametrize("arch,width,dim", [("resnet18", 64, 512), ("resnet18", 16, 128), ("resnet50", 16, 512)])
def test_backbone_feature_dim(arch, width, dim):
    net = build_backbone(arch, width)
    assert net.feature_dim == dim
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, dim)


def test_backbones_are_zero_init_residual():
    net = build_backbone("resnet18", 16)
    assert all(float(block.bn2.weight.detach().abs().sum()) == 0 for block in net.layer1)


def test_small_stem_keeps_resolution():
    assert isinstance(build_backbone("resnet18", 8, "small").maxpool, torch.nn.Identity)


def test_fingerprint_changes_when_a_weight_changes():
    net = build_backbone("resnet18", 8)
    before = state_fingerprint(net)
    with torch.no_grad():
        net.conv1.weight[0, 0, 0, 0] += 1
    assert state_fingerprint(net) != before


def test_simsiam_step_reduces_loss_and_predictor_group_keeps_fixed_lr():
    torch.manual_seed(0)
    model = build_method("simsiam", build_backbone("resnet18", 8), SETTINGS)
    groups = model.param_groups()
    assert [g["fix_lr"] for g in groups] == [False, True]
    optimizer = torch.optim.SGD(groups, lr=0.05, momentum=0.9)
    x1, x2 = torch.randn(16, 3, 32, 32), torch.randn(16, 3, 32, 32)
    losses = []
    for _ in range(5):
        out = model(x1, x2)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.loss))
    assert -1 <= losses[-1] < losses[0] <= 1
    assert out.projections.shape == (16, 64)


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="unknown method"):
        build_method("nope", build_backbone("resnet18", 8), SETTINGS)
