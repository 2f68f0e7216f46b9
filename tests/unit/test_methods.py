"""MoCo-v3, BYOL, NNSiam and distillation: smoke runs, momentum encoders, queue, statistics, collectives in
one process (tests/integration/test_distributed.py runs a real 2-process group)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from siamcollapse.config import SCHEMA_PATH, load_yaml
from siamcollapse.distributed import all_reduce_mean, gather, rank_and_world
from siamcollapse.fingerprint import state_fingerprint
from siamcollapse.methods import build_method, method_names
from siamcollapse.methods.distill import RunningStats
from siamcollapse.methods.losses import (
    info_nce,
    simsiam_loss,
)
from siamcollapse.methods.momentum import MomentumUpdater, momentum_at
from siamcollapse.methods.nnsiam import ProjectionQueue
from siamcollapse.models.backbones import build_backbone
from tests.helpers.tiny_methods import MOMENTUM_METHODS, SETTINGS, make, tiny_backbone, views


def train(model, steps: int, batches=None) -> list[float]:
    """``steps`` SGD steps as the training loop runs them, ``on_step_end`` included; the losses."""
    model.train()
    optimizer = torch.optim.SGD(model.param_groups(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(1, steps + 1):
        view1, view2 = batches[step - 1] if batches else views()
        out = model(view1, view2)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        model.on_step_end(step / steps)
        losses.append(float(out.loss.detach()))
    return losses


def params_of(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


@torch.no_grad()
def distance(a: nn.Module, b: nn.Module) -> float:
    return sum(float((p - q).square().sum()) for p, q in zip(a.parameters(), b.parameters()))


# --- every method ---------------------------------------------------------------------------------

def test_every_registered_method_has_tiny_settings_here():
    """A new method fails here until it is given settings, which puts it in the smoke tests below."""
    assert set(SETTINGS) == set(method_names())


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_smoke_steps_give_finite_losses_and_move_the_backbone(name):
    model = make(name)
    conv_before = model.backbone.conv1.weight.detach().clone()
    losses = train(model, steps=3)
    assert all(math.isfinite(loss) for loss in losses)
    assert not torch.equal(model.backbone.conv1.weight, conv_before)
    out = model(*views())
    assert out.projections.ndim == 2 and len(out.projections) == 8


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_param_groups_hold_every_trainable_parameter_once(name):
    model = make(name)
    grouped = [p for group in model.param_groups() for p in group["params"]]
    assert len({id(p) for p in grouped}) == len(grouped)
    assert {id(p) for p in grouped} == {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in model.backbone.parameters()} <= {id(p) for p in grouped}


# --- momentum encoders (MoCo-v3, BYOL) ------------------------------------------------------------

def test_momentum_schedule_starts_at_base_and_ends_at_one():
    assert momentum_at(0.99, 0.0) == pytest.approx(0.99)
    assert momentum_at(0.99, 1.0) == pytest.approx(1.0)
    assert momentum_at(0.9, 0.5) == pytest.approx(0.95)
    values = [momentum_at(0.9, t / 10) for t in range(11)]
    assert values == sorted(values)


def test_updater_copies_freezes_and_averages():
    torch.manual_seed(0)
    online, target = nn.Linear(4, 3), nn.Linear(4, 3)
    updater = MomentumUpdater([online], [target], base_momentum=0.8)
    assert torch.equal(online.weight, target.weight)
    assert not any(p.requires_grad for p in target.parameters())
    with torch.no_grad():
        online.weight.add_(1.0)
    before = target.weight.detach().clone()
    m = updater.update(0.25)
    assert m == pytest.approx(momentum_at(0.8, 0.25))
    torch.testing.assert_close(target.weight, m * before + (1 - m) * online.weight.detach())
    updater.update(1.0)  # m = 1: the target no longer moves
    torch.testing.assert_close(target.weight, m * before + (1 - m) * online.weight.detach())


def test_updater_rejects_mismatched_modules():
    with pytest.raises(ValueError):
        MomentumUpdater([nn.Linear(4, 3)], [nn.Linear(4, 2)], 0.9)


@pytest.mark.parametrize("name", MOMENTUM_METHODS)
def test_momentum_encoder_gets_no_gradient_and_moves_only_in_on_step_end(name):
    model = make(name)
    targets = (model.momentum_backbone, model.momentum_projector)
    grouped = {id(p) for group in model.param_groups() for p in group["params"]}
    assert not any(id(p) in grouped for t in targets for p in t.parameters())
    optimizer = torch.optim.SGD(model.param_groups(), lr=0.5)
    model.train()
    out = model(*views())
    optimizer.zero_grad()
    out.loss.backward()
    optimizer.step()
    assert all(p.grad is None for t in targets for p in t.parameters())
    before = [params_of(t) for t in targets]
    assert all(torch.equal(a, b) for t, saved in zip(targets, before) for a, b in zip(t.parameters(), saved))
    gap_before = distance(model.projector, model.momentum_projector)
    assert gap_before > 0  # the step moved the online projector away from its copy
    model.on_step_end(0.1)
    assert distance(model.projector, model.momentum_projector) < gap_before
    assert distance(model.backbone, model.momentum_backbone) > 0


def test_mocov3_heads_follow_the_authors_resnet_layout():
    model = make("mocov3")
    assert isinstance(model.projector[-1], nn.BatchNorm1d) and not model.projector[-1].affine
    assert isinstance(model.predictor[-1], nn.Linear)  # no BN after the predictor
    assert sum(isinstance(m, nn.Linear) for m in model.projector) == 2
    assert sum(isinstance(m, nn.Linear) for m in model.predictor) == 2
    assert all(m.bias is None for head in (model.projector, model.predictor) for m in head if isinstance(m, nn.Linear))


def test_byol_heads_have_no_bias_and_no_final_bn():
    model = make("byol")
    for head in (model.projector, model.predictor):
        assert isinstance(head[-1], nn.Linear)
        assert all(m.bias is None for m in head if isinstance(m, nn.Linear))


def test_mocov3_on_a_vit_gets_a_three_layer_projector():
    from siamcollapse.models.vit import build_vit

    model = build_method("mocov3", build_vit(image_size=16, patch_size=8, depth=1, heads=2), SETTINGS["mocov3"])
    assert sum(isinstance(m, nn.Linear) for m in model.projector) == 3
    # MoCo-v3's ViT predictor keeps _build_mlp's default last_bn (the ResNet one switches it off)
    assert isinstance(model.predictor[-1], nn.BatchNorm1d) and not model.predictor[-1].affine


def _predictions_and_targets(model, view1, view2):
    """A momentum method's online predictions and momentum targets of both views, computed by hand."""
    online = tuple(model.predictor(model.projector(model.backbone(v))) for v in (view1, view2))
    target = tuple(model.momentum_projector(model.momentum_backbone(v)) for v in (view1, view2))
    return online, target


@torch.no_grad()
def test_mocov3_loss_is_the_symmetric_info_nce_of_online_queries_and_momentum_keys():
    model = make("mocov3").train()
    view1, view2 = views()
    loss = model(view1, view2).loss
    (q1, q2), (k1, k2) = _predictions_and_targets(model, view1, view2)
    expected = info_nce(q1, k2, 1.0) + info_nce(q2, k1, 1.0)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


@torch.no_grad()
def test_byol_loss_is_zero_when_prediction_matches_target_direction():
    model = make("byol").train()
    # Replace both predictions by the targets' own directions: 2 - 2 cos = 0.
    model.predictor = nn.Identity()
    model.momentum_projector.load_state_dict(model.projector.state_dict())
    view = views()[0]
    assert float(model(view, view).loss) == pytest.approx(0.0, abs=1e-5)


@torch.no_grad()
def test_byol_sums_its_two_loss_terms_as_the_authors():
    model = make("byol").train()
    view1, view2 = views()
    loss = model(view1, view2).loss
    (p1, p2), (t1, t2) = _predictions_and_targets(model, view1, view2)
    expected = 4 - 2 * F.cosine_similarity(p1, t2).mean() - 2 * F.cosine_similarity(p2, t1).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


# --- NNSiam ---------------------------------------------------------------------------------------

def test_cosine_queue_is_fifo_wraps_and_saturates():
    queue = ProjectionQueue(size=5, dim=2, neighbour="cosine")
    a, b = torch.randn(3, 2), torch.randn(3, 2)
    queue.push(a)
    assert (int(queue.pointer), int(queue.count)) == (3, 3)
    queue.push(b)
    assert (int(queue.pointer), int(queue.count)) == (1, 5)
    expected = F.normalize(torch.stack([b[2], a[1], a[2], b[0], b[1]]), dim=-1)
    torch.testing.assert_close(queue.entries, expected)
    c = torch.randn(7, 2)  # more rows than the queue holds: the newest 5 survive
    queue.push(c)
    assert int(queue.count) == 5
    assert {tuple(r) for r in queue.entries.tolist()} == {tuple(r) for r in F.normalize(c[2:], dim=-1).tolist()}


def test_queue_state_is_saved_in_the_state_dict():
    model = make("nnsiam")
    keys = set(model.state_dict())
    assert {"queue.entries", "queue.pointer", "queue.count"} <= keys
    assert model.queue.entries.shape == (SETTINGS["nnsiam"]["queue_size"], SETTINGS["nnsiam"]["proj_dim"])


def test_cosine_queue_target_is_z_when_empty_and_a_filled_entry_otherwise():
    queue = ProjectionQueue(size=6, dim=3, neighbour="cosine")
    z = torch.randn(4, 3, requires_grad=True)
    torch.testing.assert_close(queue.target(z), z.detach())
    stored = torch.randn(2, 3)
    queue.push(stored)
    target = queue.target(z)
    assert not target.requires_grad
    filled = F.normalize(stored, dim=-1)
    for row in target:
        assert any(torch.allclose(row, entry) for entry in filled)  # never an unfilled (zero) slot


def test_l2_queue_starts_full_of_random_unit_vectors_and_stores_raw_projections():
    queue = ProjectionQueue(size=6, dim=4)  # the authors' search is the default
    assert queue.neighbour == "l2" and int(queue.count) == 6
    torch.testing.assert_close(queue.entries.norm(dim=1), torch.ones(6))
    assert len({tuple(r) for r in queue.entries.tolist()}) == 6
    z = torch.randn(2, 4) * 7
    queue.push(z)
    torch.testing.assert_close(queue.entries[:2], z)  # not normalised
    assert (int(queue.pointer), int(queue.count)) == (2, 6)


def test_l2_queue_target_is_the_entry_at_the_smallest_squared_distance():
    queue = ProjectionQueue(size=20, dim=5)
    queue.push(torch.randn(20, 5) * torch.rand(20, 1) * 4)  # norms vary: L2 and cosine disagree
    z = torch.randn(6, 5, requires_grad=True)
    target = queue.target(z)
    assert not target.requires_grad
    for row, found in zip(z.detach(), target):
        best = min(range(20), key=lambda j: float((row - queue.entries[j]).square().sum()))
        assert torch.equal(found, queue.entries[best])


def test_unknown_neighbour_search_is_rejected_by_key():
    with pytest.raises(ValueError, match="methods.nnsiam.neighbour"):
        ProjectionQueue(size=4, dim=2, neighbour="dot")


@torch.no_grad()
def test_l2_nnsiam_looks_up_before_enqueueing_only_z1():
    model = make("nnsiam").train()
    before = model.queue.entries.clone()
    view1, view2 = views()
    loss = model(view1, view2).loss
    z1 = model.projector(model.backbone(view1))  # train mode: the same batch statistics as the step
    z2 = model.projector(model.backbone(view2))
    p1, p2 = model.predictor(z1), model.predictor(z2)

    def nearest(z):
        return before[torch.cdist(z, before).argmin(dim=1)]

    expected = simsiam_loss(p1, p2, nearest(z1), nearest(z2))
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    torch.testing.assert_close(model.queue.entries[:len(view1)], z1)  # z1 enqueued, raw
    torch.testing.assert_close(model.queue.entries[len(view1):], before[len(view1):])  # z2 not
    assert int(model.queue.pointer) == len(view1)


@torch.no_grad()
def test_cosine_nnsiam_with_empty_queue_is_simsiam_and_training_enqueues():
    torch.manual_seed(3)
    nnsiam = build_method("nnsiam", tiny_backbone(), {**SETTINGS["nnsiam"], "neighbour": "cosine"}).train()
    simsiam = make("simsiam", seed=3).train()
    view1, view2 = views()
    assert float(nnsiam(view1, view2).loss) == pytest.approx(float(simsiam(view1, view2).loss), rel=1e-6)
    assert int(nnsiam.queue.count) == len(view1)
    nnsiam.eval()
    nnsiam(view1, view2)
    assert int(nnsiam.queue.count) == len(view1)  # evaluation does not enqueue


@torch.no_grad()
def test_cosine_nnsiam_targets_are_the_neighbours_of_the_other_view():
    torch.manual_seed(0)
    model = build_method("nnsiam", tiny_backbone(), {**SETTINGS["nnsiam"], "neighbour": "cosine"}).train()
    stored = torch.randn(10, SETTINGS["nnsiam"]["proj_dim"])
    model.queue.push(stored)
    reference = ProjectionQueue(10, stored.shape[1], "cosine")  # the queue as it was before this step's push
    reference.push(stored)
    view1, view2 = views()
    loss = model(view1, view2).loss
    z1 = model.projector(model.backbone(view1))
    z2 = model.projector(model.backbone(view2))
    p1, p2 = model.predictor(z1), model.predictor(z2)
    expected = simsiam_loss(p1, p2, reference.target(z1), reference.target(z2))
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert float(loss) != pytest.approx(float(simsiam_loss(p1, p2, z1, z2)), rel=1e-3)


def test_nnsiam_respects_fix_pred_lr():
    model = make("nnsiam")
    groups = model.param_groups()
    assert [g["fix_lr"] for g in groups] == [False, True]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.predictor.parameters()}


# --- distillation ---------------------------------------------------------------------------------

def test_running_stats_start_from_the_first_batch_then_average():
    stats = RunningStats(dim=3, momentum=0.75)
    first, second = torch.randn(50, 3) * 2 + 1, torch.randn(40, 3) - 4
    stats.update(first)
    torch.testing.assert_close(stats.mean, first.mean(0))
    torch.testing.assert_close(stats.std, first.std(0))  # unbiased, as the authors' teacher_pred.std
    stats.update(second)
    torch.testing.assert_close(stats.mean, 0.75 * first.mean(0) + 0.25 * second.mean(0))
    torch.testing.assert_close(stats.std, 0.75 * first.std(0) + 0.25 * second.std(0))
    assert int(stats.updates) == 2


def test_distillation_statistics_converge_to_the_teacher_output_on_a_fixed_stream():
    model = make("distill")
    shifted = tuple(v * 3 + 2 for v in views(seed=5))  # a different first batch, then a fixed one
    fixed = views(seed=6)
    steps = 8
    train(model, steps, batches=[shifted] + [fixed] * (steps - 1))
    with torch.no_grad():
        out = model.teacher(fixed[0])  # one view per step: only view 1 feeds the statistics
        first = model.teacher(shifted[0])
    # momentum 0.5: 7 updates on the fixed batch leave 0.5**7 < 1e-2 of the first batch's offset
    mean_gap = float((first.mean(0) - out.mean(0)).abs().max())
    std_gap = float((first.std(0) - out.std(0)).abs().max())
    assert mean_gap > 1e-2 and std_gap > 1e-2  # the first batch really starts elsewhere
    torch.testing.assert_close(model.stats.mean, out.mean(0), atol=mean_gap * 1e-2, rtol=1e-5)
    torch.testing.assert_close(model.stats.std, out.std(0), atol=std_gap * 1e-2, rtol=1e-5)


@torch.no_grad()
def test_distillation_normalises_view1_with_the_statistics_before_this_batch():
    model = make("distill").train()
    model(*views(seed=5))  # the first batch sets the statistics
    mean, std = model.stats.mean.clone(), model.stats.std.clone()
    view1, view2 = views(seed=6)
    loss = model(view1, view2).loss
    target = (model.teacher(view1) - mean) / (std + 1e-6)
    expected = F.mse_loss(model.head(model.backbone(view1)), target)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    teacher_out = model.teacher(view1)
    batch_std = teacher_out.std(0)
    m = SETTINGS["distill"]["stats_momentum"]
    torch.testing.assert_close(model.stats.mean, m * mean + (1 - m) * teacher_out.mean(0))
    torch.testing.assert_close(model.stats.std, m * std + (1 - m) * batch_std)


def test_distillation_statistics_default_to_the_authors_momentum():
    schema = load_yaml(SCHEMA_PATH)
    assert schema["properties"]["methods"]["properties"]["distill"]["properties"]["stats_momentum"]["default"] == 0.95


def test_teacher_stays_frozen_in_eval_mode_and_out_of_the_optimiser():
    model = make("distill")
    teacher_state = state_fingerprint(model.teacher)
    model.train()
    assert model.backbone.training and not model.teacher.training
    assert not any(p.requires_grad for p in model.teacher.parameters())
    grouped = {id(p) for group in model.param_groups() for p in group["params"]}
    assert grouped == {id(p) for m in (model.backbone, model.head) for p in m.parameters()}
    train(model, steps=2)
    assert state_fingerprint(model.teacher) == teacher_state
    assert all(p.grad is None for p in model.teacher.parameters())


def test_distillation_head_is_one_linear_layer_to_the_teacher_dimension():
    model = make("distill")
    assert isinstance(model.head, nn.Linear)
    assert (model.head.in_features, model.head.out_features) == (model.backbone.feature_dim, model.teacher.feature_dim)


def test_distillation_needs_a_teacher():
    with pytest.raises(ValueError, match="teacher"):
        build_method("distill", tiny_backbone(), SETTINGS["distill"])


def test_checkpoint_extras_hold_the_distillation_statistics():
    model = make("distill")
    train(model, steps=2)
    extras = model.checkpoint_extras()["distill_stats"]
    torch.testing.assert_close(extras["mean"], model.stats.mean)
    torch.testing.assert_close(extras["std"], model.stats.std)
    assert extras["momentum"] == SETTINGS["distill"]["stats_momentum"]
    assert extras["updates"] == 2
    assert make("byol").checkpoint_extras() == {}


# --- collectives ----------------------------------------------------------------------------------

def test_collectives_are_identities_in_one_process():
    x = torch.randn(3, 2, requires_grad=True)
    assert rank_and_world() == (0, 1)
    assert torch.equal(gather(x), x) and not gather(x).requires_grad
    assert torch.equal(all_reduce_mean(x), x)


SIMSIAM_STEP_SETTINGS = {"proj_dim": 64, "pred_dim": 16, "fix_pred_lr": True, "stop_gradient": True}


def test_simsiam_step_reduces_loss_and_predictor_group_keeps_fixed_lr():
    torch.manual_seed(0)
    model = build_method("simsiam", build_backbone("resnet18", 8), SIMSIAM_STEP_SETTINGS)
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
        losses.append(float(out.loss.detach()))
    assert -1 <= losses[-1] < losses[0] <= 1
    assert out.projections.shape == (16, 64)


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="unknown method"):
        build_method("nope", build_backbone("resnet18", 8), SIMSIAM_STEP_SETTINGS)
