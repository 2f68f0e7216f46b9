"""The paper-style linear probe: head init, LARS on the head only, a frozen backbone, crop+flip only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from siamcollapse.evaluation import augmented_probe as ap
from siamcollapse.evaluation.features import MEAN, STD
from siamcollapse.fingerprint import state_fingerprint
from siamcollapse.models.backbones import build_backbone
from siamcollapse.optim.optimizers import LARS

CPU = torch.device("cpu")
SETTINGS = {"lr": 0.1, "epochs": 1, "batch_size": 16, "weight_decay": 0.0, "seed": 0}
RED, BLUE = (200, 40, 40), (40, 40, 200)


class MeanColour(nn.Module):
    """A parameter-free 'backbone': the mean of each channel (3-d features)."""

    feature_dim = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class Drifting(MeanColour):
    """A backbone that changes its own state on every forward, even in eval mode and without grad."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return super().forward(x)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second intra-op thread only adds synchronisation (and suffers most on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_resnet() -> nn.Module:
    torch.manual_seed(0)
    return build_backbone("resnet18", 8, "imagenet")


def coloured(per_class: int, seed: int, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes, red and blue images with pixel noise: linearly separable by colour."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(2).repeat_interleave(per_class)
    colours = torch.tensor([RED, BLUE], dtype=torch.float32)[labels]
    images = colours[:, :, None, None] + 30 * torch.randn(len(labels), 3, size, size, generator=generator)
    return images.clamp(0, 255).to(torch.uint8), labels


def uniform(colour: tuple[int, int, int], count: int, size: int = 16) -> torch.Tensor:
    return torch.tensor(colour, dtype=torch.uint8).view(1, 3, 1, 1).expand(count, 3, size, size).contiguous()


def normalised(colour: tuple[int, int, int]) -> torch.Tensor:
    return (torch.tensor(colour) / 255 - torch.tensor(MEAN)) / torch.tensor(STD)


def test_head_is_initialised_with_std_001_weights_and_zero_bias():
    head = ap.init_head(512, 100, torch.Generator().manual_seed(0))
    weights = head.weight.detach()
    assert weights.shape == (100, 512) and torch.all(head.bias == 0)
    assert abs(float(weights.mean())) < 3 * 0.01 / weights.numel() ** 0.5
    assert float(weights.std()) == pytest.approx(0.01, rel=0.02)
    again = ap.init_head(512, 100, torch.Generator().manual_seed(0)).weight
    other = ap.init_head(512, 100, torch.Generator().manual_seed(1)).weight
    assert torch.equal(weights, again) and not torch.equal(weights, other)


def test_one_lars_step_changes_only_the_head_by_the_lars_amount():
    backbone = tiny_resnet().eval()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    head = ap.init_head(backbone.feature_dim, 2, torch.Generator().manual_seed(0))
    w0 = head.weight.detach().clone()
    optimizer = ap.probe_optimizer(head, {**SETTINGS, "lr": 0.4}, batch_size=16)
    assert isinstance(optimizer, LARS) and optimizer.defaults["lr"] == pytest.approx(0.4 * 16 / 256)
    assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["weight_decay"] == 0.0
    images, labels = coloured(8, seed=0)
    loss = ap.probe_step(backbone, head, optimizer, ap.crop_batch(ap.probe_augment(16), images,
                                                                  torch.Generator().manual_seed(0)), labels)
    assert torch.isfinite(loss) and not loss.requires_grad
    for name, value in backbone.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in backbone.parameters())  # the forward built no graph
    assert [p for p in optimizer.param_groups[0]["params"]] == list(head.parameters())
    # First step, no weight decay: LARS moves the matrix by lr x trust (0.001) x |w|, whatever |grad| is.
    step = torch.linalg.vector_norm(head.weight.detach() - w0)
    assert float(step) == pytest.approx(optimizer.defaults["lr"] * 0.001 * float(torch.linalg.vector_norm(w0)),
                                        rel=1e-4)
    assert torch.any(head.bias != 0)


def test_probe_lars_adapts_the_bias_as_apex_larc():
    head = ap.init_head(3, 2, torch.Generator().manual_seed(0)).double()  # the step is ~1e-5 of |b|
    with torch.no_grad():
        head.bias.copy_(torch.tensor([0.5, -0.25]))
    b0 = head.bias.detach().clone()
    optimizer = ap.probe_optimizer(head, {**SETTINGS, "lr": 0.4}, batch_size=16)
    features = torch.randn(8, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    labels = torch.tensor([0, 1] * 4)
    nn.functional.cross_entropy(head(features), labels).backward()
    optimizer.step()
    # a first step moves the (non-zero) bias by lr x trust (0.001) x |b|, whatever its gradient
    step = torch.linalg.vector_norm(head.bias.detach() - b0)
    assert float(step) == pytest.approx(optimizer.defaults["lr"] * 0.001 * float(torch.linalg.vector_norm(b0)),
                                        rel=1e-4)


def test_backbone_in_train_mode_is_put_in_eval_mode_and_its_bn_statistics_stay():
    backbone = tiny_resnet().train()
    bn = backbone.bn1
    stats = bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()
    fingerprint = state_fingerprint(backbone)
    images, labels = coloured(8, seed=0)
    ap.train_augmented_probe(backbone, ap.InMemoryCrops(images, labels, 16, 8, CPU), 2, SETTINGS, CPU)
    assert not any(m.training for m in backbone.modules())
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    assert int(bn.num_batches_tracked) == int(stats[2]) == 0
    assert state_fingerprint(backbone) == fingerprint


def test_a_backbone_that_changes_during_probing_is_an_error():
    images, labels = coloured(4, seed=0)
    with pytest.raises(RuntimeError, match="backbone changed"):
        ap.train_augmented_probe(Drifting(), ap.InMemoryCrops(images, labels, 16, 4, CPU), 2, SETTINGS, CPU)
    # The static check itself: one changed weight is enough.
    backbone = tiny_resnet()
    fingerprint = state_fingerprint(backbone)
    ap.check_unchanged(backbone, fingerprint)
    with torch.no_grad():
        next(backbone.parameters()).view(-1)[0] += 1e-3
    with pytest.raises(RuntimeError, match="backbone changed"):
        ap.check_unchanged(backbone, fingerprint)


def test_probe_on_a_random_resnet_separates_two_colour_classes(capsys):
    backbone = tiny_resnet()
    train_images, train_labels = coloured(32, seed=0)
    val_images, val_labels = coloured(16, seed=1)
    # LARS moves weight and bias by lr x 0.001 x their norm per step: with 60 steps in all it needs a high lr.
    settings = {**SETTINGS, "lr": 100.0, "epochs": 30}
    untrained = ap.init_head(backbone.feature_dim, 2, torch.Generator().manual_seed(settings["seed"]))
    head = ap.train_augmented_probe(backbone, ap.InMemoryCrops(train_images, train_labels, 16, 16, CPU), 2,
                                    settings, CPU)
    before = ap.evaluate(backbone, untrained, iter([(val_images, val_labels)]), 16, CPU)["top1"]
    after = ap.evaluate(backbone, head, iter([(val_images, val_labels)]), 16, CPU)
    assert after["top1"] >= 90 and before <= 60 and "top5" not in after  # 2 classes: no top-5
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("probe epoch")]
    assert len(lines) == 30 and "loss" in lines[0] and "lr" in lines[0] and "images/s" in lines[0]


def test_top5_is_reported_only_with_more_than_five_classes():
    head = nn.Linear(3, 6)
    with torch.no_grad():  # the same ranking for every image: class 0 first, then 1, ..., 5 last
        head.weight.zero_()
        head.bias.copy_(torch.tensor([5.0, 4, 3, 2, 1, 0]))
    images = uniform(RED, 4)
    second = ap.evaluate(MeanColour(), head, iter([(images, torch.full((4,), 1))]), 16, CPU)
    last = ap.evaluate(MeanColour(), head, iter([(images, torch.full((4,), 5))]), 16, CPU)
    assert second == {"top1": 0.0, "top5": 100.0} and last == {"top1": 0.0, "top5": 0.0}
    small = nn.Linear(3, 5)
    assert set(ap.evaluate(MeanColour(), small, iter([(images, torch.zeros(4, dtype=torch.long))]), 16, CPU)) == {"top1"}


def test_training_augmentation_is_random_resized_crop_and_flip_only():
    cfg = ap.PROBE_AUGMENT
    assert (cfg.jitter_p, cfg.grayscale_p, cfg.blur_p, cfg.flip_p) == (0.0, 0.0, 0.0, 0.5)
    assert cfg.crop_scale == (0.08, 1.0) and (cfg.mean, cfg.std) == (MEAN, STD)
    augment = ap.probe_augment(16)
    generator = torch.Generator().manual_seed(0)
    # No colour op: a uniform image stays exactly its normalised colour.
    out = ap.crop_batch(augment, uniform(RED, 32), generator)
    assert out.shape == (32, 3, 16, 16)
    assert torch.allclose(out, normalised(RED).view(1, 3, 1, 1).expand_as(out), atol=1e-5)
    # Geometry only: a left-to-right ramp stays monotonic along every row, mirrored in about half the
    # images, and the crops zoom in by different amounts.
    ramp = torch.linspace(0, 255, 16).round().to(torch.uint8).view(1, 1, 1, 16).expand(64, 3, 16, 16).contiguous()
    rows = ap.crop_batch(augment, ramp, generator)[:, 0]
    steps = rows.diff(dim=-1)
    rising = (steps >= -1e-5).all(dim=(1, 2))
    falling = (steps <= 1e-5).all(dim=(1, 2))
    assert torch.all(rising | falling) and 10 < int(falling.sum()) < 54
    spans = (rows[:, :, -1] - rows[:, :, 0]).abs().mean(dim=1)
    assert float(spans.max() - spans.min()) > 1.0


def test_in_memory_batches_cover_the_training_set_once_per_epoch_and_are_reproducible():
    images, labels = coloured(5, seed=0)
    crops = ap.InMemoryCrops(images, labels, 16, 4, CPU)
    epoch = list(crops.epoch(torch.Generator().manual_seed(3)))
    assert [len(y) for _, y in epoch] == [4, 4, 2] and sorted(torch.cat([y for _, y in epoch]).tolist()) == \
        sorted(labels.tolist())
    again = list(crops.epoch(torch.Generator().manual_seed(3)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epoch, again, strict=True))


def test_streaming_crops_decode_crop_and_normalise_like_in_memory(tmp_path: Path):
    for label, colour in enumerate((RED, BLUE)):
        folder = tmp_path / "train" / f"{label}_class"
        folder.mkdir(parents=True)
        for i in range(3):  # non-square files: the crop comes from the whole resized image
            Image.fromarray(np.full((20, 30, 3), colour, dtype=np.uint8)).save(folder / f"{i}.png")
    crops = ap.StreamingCrops(tmp_path, 16, batch_size=4, num_workers=0, device=CPU)
    assert crops.count == 6
    batches = list(crops.epoch(torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in batches] == [4, 2]
    for inputs, labels in batches:
        assert inputs.shape == (len(labels), 3, 16, 16)
        expected = torch.stack([normalised(RED if y == 0 else BLUE) for y in labels.tolist()])
        assert torch.allclose(inputs, expected[:, :, None, None].expand_as(inputs), atol=1e-5)
    again = list(crops.epoch(torch.Generator().manual_seed(0)))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again, strict=True))


def test_streaming_crops_are_the_same_with_any_worker_count_and_differ_between_epochs(tmp_path: Path):
    rng = np.random.default_rng(0)
    for label in range(2):
        folder = tmp_path / "train" / f"class{label}"
        folder.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")

    def first_epochs(workers: int) -> list[torch.Tensor]:
        crops = ap.StreamingCrops(tmp_path, 16, batch_size=6, num_workers=workers, device=CPU)
        generator = torch.Generator().manual_seed(0)
        return [next(crops.epoch(generator))[0] for _ in range(2)]

    in_process, in_worker = first_epochs(0), first_epochs(1)
    assert all(torch.equal(a, b) for a, b in zip(in_process, in_worker, strict=True))
    assert not torch.equal(in_process[0], in_process[1])  # a new epoch draws new crops
