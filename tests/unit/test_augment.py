"""Behavioural tests of the batched SimSiam augmentation against torchvision's reference ops."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import RandomResizedCrop

from siamcollapse.data.augment import (
    AugmentConfig,
    BatchAugment,
    BatchShare,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    blur_kernel_size,
    eval_transform,
    gaussian_blur,
    gaussian_kernels,
    resized_crop_flip,
    rgb_to_grayscale,
    sample_crop_boxes,
    solarize_where,
)
from siamcollapse.data.loaders import InMemoryPairs, augment_config
from siamcollapse.errors import UserInputError

OFF = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0,
                    jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def uint8_images(b: int = 6, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (b, 3, h, w), dtype=torch.uint8, generator=gen(seed))


def unit_images(b: int = 6, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=gen(seed))


def plain(images: torch.Tensor, size: int, cfg: AugmentConfig = OFF) -> torch.Tensor:
    """The whole image resized (bilinear) to size x size and normalised."""
    resized = torch.nn.functional.interpolate(images.float() / 255, size=(size, size), mode="bilinear",
                                              align_corners=False)
    return TF.normalize(resized, cfg.mean, cfg.std)


def per_image(fn, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    return torch.stack([fn(img, float(p)) for img, p in zip(images, params)])


# --------------------------------------------------------------------------- whole pipeline


@pytest.mark.parametrize("processes", [2, 4])
def test_each_image_gets_the_same_views_whatever_the_number_of_processes(processes: int) -> None:
    augment, images = BatchAugment(AugmentConfig(), 24), uint8_images(8, 32, 40)
    whole = augment(images, gen(3))
    n = len(images) // processes
    shares = [augment(images[rank * n:(rank + 1) * n], gen(3), BatchShare(rank, processes))
              for rank in range(processes)]
    torch.testing.assert_close(torch.cat(shares), whole)
    assert not torch.allclose(shares[0], whole[n:2 * n])  # the rows really are per-image draws


MOCO_VIEWS = (replace(AugmentConfig(), crop_scale=(0.08, 1.0), saturation=0.2, blur_p=1.0, solarize_p=0.0),
              replace(AugmentConfig(), crop_scale=(0.08, 1.0), saturation=0.2, blur_p=0.1, solarize_p=0.2))


@pytest.mark.parametrize("processes", [2, 4])
def test_per_view_configs_keep_the_views_independent_of_the_number_of_processes(processes: int) -> None:
    augment, images = BatchAugment(MOCO_VIEWS, 24), uint8_images(8, 32, 40)
    for view in (0, 1):
        whole = augment(images, gen(3), view=view)
        n = len(images) // processes
        shares = [augment(images[rank * n:(rank + 1) * n], gen(3), BatchShare(rank, processes), view=view)
                  for rank in range(processes)]
        torch.testing.assert_close(torch.cat(shares), whole)


def test_each_view_uses_its_own_config() -> None:
    images = uint8_images(8, 32, 32)
    pair = BatchAugment(MOCO_VIEWS, 32)
    for view, cfg in enumerate(MOCO_VIEWS):
        torch.testing.assert_close(pair(images, gen(4), view=view), BatchAugment(cfg, 32)(images, gen(4)))
    assert not torch.allclose(pair(images, gen(4), view=0), pair(images, gen(4), view=1))
    with pytest.raises(UserInputError, match="normalisation"):
        BatchAugment((AugmentConfig(), replace(AugmentConfig(), mean=(0.5, 0.5, 0.5))), 32)


def test_in_memory_pairs_give_view_1_then_view_2_with_the_step_seed() -> None:
    images = uint8_images(6, 32, 32)
    augment = BatchAugment(MOCO_VIEWS, 32)
    pairs = InMemoryPairs(images, augment, torch.device("cpu"))
    (view1, view2), = list(pairs.pairs(torch.arange(6)[None], [9]))
    generator = gen(9)
    torch.testing.assert_close(view1, augment(images, generator, view=0))
    torch.testing.assert_close(view2, augment(images, generator, view=1))


def test_augment_config_reads_one_value_or_a_per_view_pair() -> None:
    settings = {"crop_min_scale": 0.08, "jitter_p": 0.8, "saturation": 0.2, "grayscale_p": 0.2,
                "blur_p": [1.0, 0.1], "blur_sigma_scaled": True, "solarize_p": [0.0, 0.2], "flip_p": 0.5}
    view1, view2 = augment_config(settings)
    assert (view1.blur_p, view2.blur_p) == (1.0, 0.1)
    assert (view1.solarize_p, view2.solarize_p) == (0.0, 0.2)
    assert view1.saturation == view2.saturation == 0.2
    assert view1.crop_scale == view2.crop_scale == (0.08, 1.0)
    assert view1.blur_sigma_reference == 224
    assert augment_config({**settings, "blur_sigma_scaled": False})[0].blur_sigma_reference is None
    with pytest.raises(UserInputError, match="augment.blur_p"):
        augment_config({**settings, "blur_p": [1.0, 0.5, 0.1]})


def test_mocov3_and_byol_default_to_the_asymmetric_moco_v3_views() -> None:
    from siamcollapse.config import deep_merge, validate_config

    config = validate_config({})
    for method in ("mocov3", "byol"):
        view1, view2 = augment_config(deep_merge(config["augment"], config["methods"][method]["augment"]))
        assert (view1.blur_p, view1.solarize_p, view2.blur_p, view2.solarize_p) == (1.0, 0.0, 0.1, 0.2)
        assert view1.saturation == view2.saturation == 0.2 and view1.crop_scale == (0.08, 1.0)
    view1, view2 = augment_config(deep_merge(config["augment"], config["methods"]["simsiam"].get("augment", {})))
    assert view1 == view2 and (view1.blur_p, view1.solarize_p, view1.saturation) == (0.5, 0.0, 0.4)



@pytest.mark.parametrize(("h", "w", "size"), [(32, 32, 32), (40, 48, 32), (32, 32, 64)])
def test_output_shape_dtype_and_range(h: int, w: int, size: int) -> None:
    cfg = AugmentConfig()
    out = BatchAugment(cfg, size)(uint8_images(8, h, w), gen())
    assert out.shape == (8, 3, size, size) and out.dtype == torch.float32
    assert out.is_contiguous()
    unit = out * torch.tensor(cfg.std).view(1, 3, 1, 1) + torch.tensor(cfg.mean).view(1, 3, 1, 1)
    assert unit.min() >= -1e-5 and unit.max() <= 1 + 1e-5


def test_same_seed_reproduces_other_seed_differs() -> None:
    augment, images = BatchAugment(AugmentConfig(), 32), uint8_images()
    first, again = augment(images, gen(3)), augment(images, gen(3))
    assert torch.equal(first, again)
    assert not torch.allclose(first, augment(images, gen(4)))


def test_views_differ_within_a_call_and_global_rng_is_used_without_generator() -> None:
    augment, images = BatchAugment(AugmentConfig(), 32), uint8_images()
    torch.manual_seed(7)
    a = augment(images)
    torch.manual_seed(7)
    assert torch.equal(a, augment(images))
    assert not torch.allclose(augment(images), augment(images))


@pytest.mark.parametrize("size", [32, 64])
def test_everything_off_is_plain_resize_and_normalise(size: int) -> None:
    images = uint8_images()
    out = BatchAugment(OFF, size)(images, gen())
    torch.testing.assert_close(out, plain(images, size), atol=1e-5, rtol=0)


def test_flip_only_mirrors_the_input() -> None:
    images = uint8_images()
    out = BatchAugment(replace(OFF, flip_p=1.0), 32)(images, gen())
    torch.testing.assert_close(out, plain(images, 32).flip(-1), atol=1e-5, rtol=0)


def test_grayscale_only_gives_equal_channels_with_luma() -> None:
    images = unit_images()
    out = BatchAugment(replace(OFF, grayscale_p=1.0), 16).colour(images, gen())
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    r, g, b = images.unbind(1)
    torch.testing.assert_close(out[:, 0], 0.299 * r + 0.587 * g + 0.114 * b, atol=1e-6, rtol=0)
    # torchvision's tensor path weighs red 0.2989 instead of 0.299: up to 1e-4 apart.
    torch.testing.assert_close(out[:, :1], TF.rgb_to_grayscale(images), atol=1.5e-4, rtol=0)


def test_colour_does_not_modify_its_input() -> None:
    images = unit_images()
    before = images.clone()
    BatchAugment(replace(AugmentConfig(), jitter_p=1.0, blur_p=1.0), 16).colour(images, gen())
    assert torch.equal(images, before)


@pytest.mark.parametrize(
    ("changes", "p"),
    [({"jitter_p": 0.8, "hue": 0.0, "contrast": 0.0, "saturation": 0.0}, 0.8),
     ({"grayscale_p": 0.2}, 0.2),
     ({"blur_p": 0.5, "blur_sigma_reference": None}, 0.5),
     ({"solarize_p": 0.3}, 0.3)],
)
def test_colour_ops_hit_the_configured_fraction_of_images(changes: dict, p: float) -> None:
    images = unit_images(4000, 8)
    out = BatchAugment(replace(OFF, **changes), 8).colour(images, gen(1))
    changed = (out - images).abs().amax(dim=(1, 2, 3)) > 1e-6
    assert changed.float().mean().item() == pytest.approx(p, abs=0.03)


def test_brightness_factors_span_the_colorjitter_range() -> None:
    images = 0.25 + 0.5 * unit_images(2000, 4)  # far from 0 and 1: no clamping
    out = BatchAugment(replace(OFF, jitter_p=1.0, contrast=0, saturation=0, hue=0), 4).colour(
        images, gen())
    factors = (out / images).mean(dim=(1, 2, 3))
    assert factors.min() >= 0.6 - 1e-5 and factors.max() <= 1.4 + 1e-5
    assert factors.min() < 0.61 and factors.max() > 1.39
    assert factors.mean().item() == pytest.approx(1.0, abs=0.02)


# --------------------------------------------------------------------------- colour ops


@pytest.mark.parametrize(
    ("ours", "reference", "low", "high"),
    [(adjust_brightness, TF.adjust_brightness, 0.6, 1.4),
     (adjust_contrast, TF.adjust_contrast, 0.6, 1.4),
     (adjust_saturation, TF.adjust_saturation, 0.0, 2.0),
     (adjust_hue, TF.adjust_hue, -0.5, 0.5)],
)
def test_jitter_ops_match_torchvision_per_sample(ours, reference, low, high) -> None:
    images = unit_images(16)
    images[0] = 0.5  # grey image: undefined hue, constant contrast
    images[1, :, :4] = images[1, 0:1, :4]  # grey patch inside a coloured image
    factors = low + (high - low) * torch.rand(16, generator=gen(1), dtype=torch.float64)
    expected = per_image(reference, images, factors)
    torch.testing.assert_close(ours(images, factors), expected, atol=1e-3, rtol=0)


def test_hue_full_turn_is_identity_and_half_turn_is_not() -> None:
    images = unit_images()
    torch.testing.assert_close(adjust_hue(images, torch.zeros(6)), images, atol=1e-6, rtol=0)
    assert (adjust_hue(images, torch.full((6,), 0.5)) - images).abs().max() > 0.1


def test_gray_luma_has_one_channel() -> None:
    assert rgb_to_grayscale(unit_images()).shape == (6, 1, 16, 16)


# --------------------------------------------------------------------------- blur


@pytest.mark.parametrize("size", [3, 7])
def test_blur_matches_torchvision_per_sample_sigma(size: int) -> None:
    images = unit_images(8, 20)
    sigmas = 0.1 + 1.9 * torch.rand(8, generator=gen(2), dtype=torch.float64)
    ours = gaussian_blur(images, gaussian_kernels(sigmas, size))
    expected = torch.stack([TF.gaussian_blur(img, [size, size], [float(s)] * 2)
                            for img, s in zip(images, sigmas)])
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=0)


def test_solarize_matches_torchvision_at_threshold_128_on_uint8() -> None:
    images = uint8_images(4, 8, 8)
    mask = torch.tensor([True, False, True, True])
    ours = solarize_where(images.float() / 255, mask, 0.5)
    expected = torch.stack([TF.solarize(img, 128) if m else img for img, m in zip(images, mask)]).float() / 255
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("reference,side", [(224.0, 32), (None, 32), (224.0, 224)])
def test_blur_sigma_scales_with_the_image_side(reference, side: int) -> None:
    cfg = replace(OFF, blur_p=1.0, blur_sigma=(2.0, 2.0), blur_sigma_reference=reference)
    images = unit_images(2, side)
    out = BatchAugment(cfg, side).colour(images, gen())
    sigma = 2.0 * side / 224 if reference else 2.0
    size = blur_kernel_size(side, cfg.blur_kernel_fraction)
    expected = gaussian_blur(images, gaussian_kernels(torch.full((2,), sigma, dtype=torch.float64), size))
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_delta_kernel_leaves_image_unchanged() -> None:
    images = unit_images(4)
    delta = torch.tensor([[0.0, 1.0, 0.0]]).expand(4, 3)
    assert torch.equal(gaussian_blur(images, delta), images)


@pytest.mark.parametrize(("side", "expected"), [(8, 3), (32, 3), (64, 7), (96, 11), (224, 23)])
def test_blur_kernel_is_about_a_tenth_of_the_side_and_odd(side: int, expected: int) -> None:
    assert blur_kernel_size(side, 0.1) == expected


# --------------------------------------------------------------------------- crop


def test_crop_boxes_respect_scale_ratio_and_bounds() -> None:
    boxes = sample_crop_boxes(20000, 32, 32, (0.2, 1.0), (3 / 4, 4 / 3), gen())
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= 32).all() and (left + w <= 32).all()
    area = h * w / 32**2
    # Boxes are rounded to whole pixels, so the range holds to within a pixel's rounding.
    assert area.min() >= 0.2 - 0.03 and area.max() <= 1.0
    assert ((w / h).log().abs() <= math.log(4 / 3) + 0.1).all()
    assert 0.55 < area.mean() < 0.65


def test_crop_distribution_matches_torchvision() -> None:
    ours = sample_crop_boxes(4000, 32, 40, (0.2, 1.0), (3 / 4, 4 / 3), gen())
    torch.manual_seed(0)
    image = torch.zeros(3, 32, 40)
    params = [RandomResizedCrop.get_params(image, [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(4000)]
    ref = torch.tensor([[int(v) for v in box] for box in params], dtype=torch.float64)
    for column in range(4):  # top, left, height, width
        mine, theirs = ours[:, column], ref[:, column]
        assert mine.mean().item() == pytest.approx(theirs.mean().item(), abs=0.6)
        assert mine.std().item() == pytest.approx(theirs.std().item(), rel=0.08)


def test_crop_falls_back_to_central_crop_when_nothing_fits() -> None:
    boxes = sample_crop_boxes(5, 10, 40, (1.0, 1.0), (1.0, 1.0), gen())
    assert torch.equal(boxes, torch.tensor([[0.0, 15.0, 10.0, 10.0]]).expand(5, 4))


def test_resized_crop_flip_matches_torchvision_crop_resize_flip() -> None:
    images = torch.rand(8, 3, 40, 48, generator=gen())
    boxes = sample_crop_boxes(8, 40, 48, (0.05, 1.0), (3 / 4, 4 / 3), gen(1))
    flips = torch.arange(8) % 2 == 0
    expected = []
    for img, box, flip in zip(images, boxes.long().tolist(), flips):
        view = TF.resized_crop(img, *box, [32, 32], antialias=False)
        expected.append(TF.hflip(view) if flip else view)
    out = resized_crop_flip(images, boxes, flips, 32)
    torch.testing.assert_close(out, torch.stack(expected), atol=1e-5, rtol=0)


def test_flips_happen_half_the_time() -> None:
    images = torch.arange(8, dtype=torch.float32).expand(1000, 3, 8, 8).contiguous()
    out = BatchAugment(replace(OFF, flip_p=0.5), 8).crop_and_flip(images, gen())
    flipped = out[:, 0, 0, 0] > out[:, 0, 0, -1]
    assert flipped.float().mean().item() == pytest.approx(0.5, abs=0.05)


# --------------------------------------------------------------------------- eval + config


def test_eval_transform_is_resize_256_centre_crop_224_scaled_to_the_size() -> None:
    cfg = AugmentConfig()
    images = uint8_images(4, 64, 64)
    side = round(32 * 256 / 224)  # 37: the short side before the central crop
    top = (side - 32) // 2
    resized = TF.resize(images.float() / 255, [side, side], antialias=True)[..., top:top + 32, top:top + 32]
    expected = TF.normalize(resized, cfg.mean, cfg.std)
    out = eval_transform(images, 32, cfg.mean, cfg.std)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert eval_transform(uint8_images(1, 256, 300), 224, cfg.mean, cfg.std).shape[-2:] == (224, 224)


def test_eval_transform_keeps_aspect_and_centre_crops() -> None:
    images = uint8_images(2, 32, 48)
    out = eval_transform(images, 32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    resized = TF.resize(images.float() / 255, [37, 56], antialias=True)  # short side 37, aspect kept
    torch.testing.assert_close(out, resized[..., 2:34, 12:44], atol=1e-5, rtol=0)
    square = uint8_images(2, 32, 32)  # already the input size: only normalised
    torch.testing.assert_close(eval_transform(square, 32, (0.0,) * 3, (1.0,) * 3), square.float() / 255)


@pytest.mark.parametrize(
    "changes",
    [{"flip_p": 1.5}, {"hue": 0.7}, {"crop_scale": (0.5, 0.2)}, {"blur_sigma": (0.0, 1.0)},
     {"std": (0.2, 0.0, 0.2)}],
)
def test_invalid_config_is_rejected_by_name(changes: dict) -> None:
    with pytest.raises(UserInputError, match=next(iter(changes))):
        AugmentConfig(**changes)


@pytest.mark.gpu  # make test-gpu
def test_cuda_matches_cpu_with_same_seed() -> None:
    augment, images = BatchAugment(AugmentConfig(), 32), uint8_images()
    cpu = augment(images, gen(5))
    cuda = augment(images.cuda(), gen(5))
    assert cuda.is_cuda
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-4, rtol=0)
    views = BatchAugment(MOCO_VIEWS, 32)  # blur and solarize on every path
    for view in (0, 1):
        torch.testing.assert_close(views(images.cuda(), gen(6), view=view).cpu(), views(images, gen(6), view=view),
                                   atol=1e-4, rtol=0)
