"""SimSiam's MoCo-v2 and MoCo-v3/BYOL's augmentations, batched on tensors on the training device.

Why: per-image PIL augmentation in a Python loop costs more than a small
ResNet's forward/backward on a 2-core machine. Drawing each image's random
parameters on the CPU and then applying them to the whole batch at once (one
``grid_sample`` for crop+flip, per-sample factor tensors for colour, one
depthwise convolution for blur) makes the data pipeline almost free, and the
same code runs on CUDA for 224-px images.

Each view of a pair may have its own ``AugmentConfig`` (``BatchAugment((view1, view2), size)``):
MoCo-v3 and BYOL use asymmetric views (blur p 1.0 / 0.1, solarize p 0 / 0.2, saturation 0.2),
SimSiam the same MoCo-v2 config for both. The op order is MoCo-v3's: crop, jitter, grayscale,
blur, solarize (flip with the crop, see below).

Semantics follow torchvision's RandomResizedCrop, ColorJitter, RandomGrayscale,
GaussianBlur, RandomSolarize and RandomHorizontalFlip, with these deliberate differences:

- Colour-jitter order: one random permutation of (brightness, contrast,
  saturation, hue) per call, shared by the batch; the factors are per image.
  (torchvision draws a permutation per image when used per image.)
- Grayscale uses the ITU-R 601-2 luma weights 0.299/0.587/0.114 like PIL;
  torchvision's tensor path uses 0.2989 (a difference of at most 1e-4).
- The blur kernel spans ~10% of the image side (odd, >= 3) as in SimCLR/MoCo;
  SimSiam's PIL blur has unbounded support. Its sigma range (0.1-2 px) is meant for 224-px
  crops, so by default (``blur_sigma_reference=224``) it is scaled by side / 224: at 32 px
  sigma is 0.014-0.29 px, the same blur relative to the image as at 224 px (almost none),
  rather than a 2-px blur that wipes out a small image. ``blur_sigma_reference=None`` keeps
  the sigmas in absolute pixels.
- Solarize inverts values >= 0.5 in [0, 1] units, which on uint8-derived inputs is exactly
  PIL's / torchvision's solarize at threshold 128.
- The flip is done together with the crop; every later op is mirror-symmetric,
  so this equals MoCo-v2's flip-last order.
- The crop is resized bilinearly without antialiasing (PIL antialiases when it
  downsamples); the crops are rarely much larger than the output.

On several processes each holds a share of the global batch (``BatchShare``): random numbers
are drawn for the whole global batch and sliced, so an image's views do not depend on how
many processes train (a 2-GPU run sees the data a 1-GPU run sees).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from siamcollapse.errors import UserInputError

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
CROP_ATTEMPTS = 10  # as torchvision's RandomResizedCrop before its central-crop fallback
_HUE_CHANNEL_OFFSETS = (5.0, 3.0, 1.0)  # sextant offsets of R, G, B in the HSV->RGB closed form


@dataclass(frozen=True)
class AugmentConfig:
    """MoCo-v2 / SimSiam augmentation hyper-parameters (the papers' defaults)."""

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_fraction: float = 0.1
    blur_sigma_reference: float | None = 224.0  # sigma scaled by side / this; None: absolute pixels
    solarize_p: float = 0.0
    solarize_threshold: float = 0.5
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p", "solarize_threshold"):
            _check(0.0 <= getattr(self, name) <= 1.0, name, "must lie in [0, 1]")
        for name in ("brightness", "contrast", "saturation"):
            _check(getattr(self, name) >= 0.0, name, "must be >= 0")
        _check(0.0 <= self.hue <= 0.5, "hue", "must lie in [0, 0.5]")
        _check(0.0 < self.crop_scale[0] <= self.crop_scale[1] <= 1.0, "crop_scale",
               "must satisfy 0 < low <= high <= 1")
        _check(0.0 < self.crop_ratio[0] <= self.crop_ratio[1], "crop_ratio",
               "must satisfy 0 < low <= high")
        _check(0.0 < self.blur_sigma[0] <= self.blur_sigma[1], "blur_sigma",
               "must satisfy 0 < low <= high")
        _check(self.blur_kernel_fraction > 0.0, "blur_kernel_fraction", "must be > 0")
        _check(self.blur_sigma_reference is None or self.blur_sigma_reference > 0, "blur_sigma_reference",
               "must be > 0 or None")
        _check(all(s > 0 for s in self.std), "std", "must be positive")


@dataclass(frozen=True)
class BatchShare:
    """The rows ``[rank x n, (rank + 1) x n)`` of a global batch of ``processes x n`` images."""

    rank: int = 0
    processes: int = 1

    def rand(self, n: int, *shape: int, generator: torch.Generator | None) -> Tensor:
        """This share's rows of uniform float64 draws for the whole global batch."""
        draws = torch.rand(n * self.processes, *shape, generator=generator, dtype=torch.float64)
        return draws[self.rank * n:(self.rank + 1) * n]


WHOLE_BATCH = BatchShare()


def _check(ok: bool, name: str, rule: str) -> None:
    """Fail before any work with a message naming the offending key."""
    if not ok:
        raise UserInputError(f"augmentation setting '{name}' {rule}")


# --------------------------------------------------------------------------- helpers


def on_device(values: Tensor, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """``values`` (drawn or built on the CPU) on ``like``'s device, in ``dtype`` (default: their
    own), without a host sync: to a GPU through pinned memory, a copy the GPU's stream orders (a
    plain copy from pageable memory waits until the GPU has finished all the work queued)."""
    if values.device != like.device and like.device.type == "cuda":
        values = values.pin_memory().to(like.device, non_blocking=True)
    return values.to(device=like.device, dtype=dtype or values.dtype)


def _constant(values: Sequence[float], like: Tensor) -> Tensor:
    """A small constant vector on the images' device, in their dtype."""
    return on_device(torch.tensor(values, dtype=like.dtype), like)


def _per_sample(values: Tensor, like: Tensor) -> Tensor:
    """[B] parameters -> [B,1,1,1] on the images' device/dtype, for broadcasting."""
    return on_device(values, like, like.dtype).view(-1, 1, 1, 1)


def _to_unit_float(images: Tensor) -> Tensor:
    """uint8 [0,255] -> float32 [0,1]; floating images are assumed already in [0,1]."""
    if images.dtype == torch.uint8:
        return images.float().mul_(1.0 / 255.0)
    return images


def _uniform(n: int, bounds: tuple[float, float], generator: torch.Generator | None,
             share: BatchShare = WHOLE_BATCH) -> Tensor:
    low, high = bounds
    return low + (high - low) * share.rand(n, generator=generator)


def _coins(n: int, p: float, generator: torch.Generator | None, share: BatchShare = WHOLE_BATCH) -> Tensor:
    return share.rand(n, generator=generator) < p


def normalize(images01: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Per-channel (x - mean) / std; constants are built on the images' device."""
    m = _constant(mean, images01).view(1, 3, 1, 1)
    s = _constant(std, images01).view(1, 3, 1, 1)
    return (images01 - m).div_(s)


# --------------------------------------------------------------------------- crop + flip


def _fallback_crop_size(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """torchvision's central crop used when all random attempts fall outside the image."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        return round(width / min(ratio)), width
    if in_ratio > max(ratio):
        return height, round(height * max(ratio))
    return height, width


def sample_crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator | None = None,
    share: BatchShare = WHOLE_BATCH,
) -> Tensor:
    """RandomResizedCrop boxes for n images, vectorised: float64 [n,4] (top, left, h, w).

    Draws CROP_ATTEMPTS candidates per image at once and keeps the first that fits,
    which has the same distribution as torchvision's sequential retry loop.
    """
    draws = share.rand(n, CROP_ATTEMPTS, 2, generator=generator)
    area = scale[0] + (scale[1] - scale[0]) * draws[..., 0]
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * draws[..., 1])
    target = height * width * area
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    valid = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = valid.to(torch.uint8).argmax(dim=1, keepdim=True)  # index of first True
    found = valid.any(dim=1)
    fallback_h, fallback_w = _fallback_crop_size(height, width, ratio)
    h = torch.where(found, h.gather(1, first).squeeze(1), float(fallback_h))
    w = torch.where(found, w.gather(1, first).squeeze(1), float(fallback_w))
    offsets = share.rand(n, 2, generator=generator)
    top = torch.where(found, torch.floor(offsets[:, 0] * (height - h + 1)), (height - h) // 2)
    left = torch.where(found, torch.floor(offsets[:, 1] * (width - w + 1)), (width - w) // 2)
    return torch.stack((top.clamp(max=height - h), left.clamp(max=width - w), h, w), dim=1)


def _axis_grid(start: Tensor, length: Tensor, size: int, extent: int) -> Tensor:
    """Normalised sample positions [B,size] of a crop along one axis.

    Same source coordinates as crop-then-``interpolate(bilinear, align_corners=False)``:
    half-pixel centres, clamped to the crop's edge pixels so nothing outside the crop
    leaks in when upsampling.
    """
    u = (torch.arange(size, device=start.device, dtype=start.dtype) + 0.5) / size
    pix = start[:, None] + u[None, :] * length[:, None] - 0.5
    pix = torch.clamp(pix, min=start[:, None], max=(start + length - 1)[:, None])
    return (2.0 * pix + 1.0) / extent - 1.0


def resized_crop_flip(images01: Tensor, boxes: Tensor, flips: Tensor, size: int) -> Tensor:
    """Crop each image to its box, resize to size x size and mirror where flips is True.

    One ``grid_sample`` for the whole batch, instead of B crops and B resizes.
    """
    b, _, height, width = images01.shape
    top, left, h, w = on_device(boxes, images01, torch.float32).unbind(1)
    xs = _axis_grid(left, w, size, width)
    xs = torch.where(on_device(flips, images01)[:, None], xs.flip(1), xs)
    ys = _axis_grid(top, h, size, height)
    grid = torch.stack((xs[:, None, :].expand(b, size, size), ys[:, :, None].expand(b, size, size)), -1)
    return F.grid_sample(images01, grid.to(images01.dtype), mode="bilinear",
                         padding_mode="border", align_corners=False)


# --------------------------------------------------------------------------- colour


def rgb_to_grayscale(images01: Tensor) -> Tensor:
    """[B,3,H,W] -> [B,1,H,W] luma with ITU-R 601-2 weights."""
    weights = _constant(LUMA_WEIGHTS, images01)
    return (images01 * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)  # einsum is 4x slower


def adjust_brightness(images01: Tensor, factors: Tensor) -> Tensor:
    """Per-sample brightness: multiply by factor (torchvision: blend with black)."""
    return (images01 * _per_sample(factors, images01)).clamp_(0.0, 1.0)


def adjust_contrast(images01: Tensor, factors: Tensor) -> Tensor:
    """Per-sample contrast: blend with the image's mean grey level."""
    mean = rgb_to_grayscale(images01).mean(dim=(1, 2, 3), keepdim=True)
    return torch.lerp(mean, images01, _per_sample(factors, images01)).clamp_(0.0, 1.0)


def adjust_saturation(images01: Tensor, factors: Tensor) -> Tensor:
    """Per-sample saturation: blend with the grayscale image."""
    gray = rgb_to_grayscale(images01)
    return torch.lerp(gray, images01, _per_sample(factors, images01)).clamp_(0.0, 1.0)


def adjust_hue(images01: Tensor, shifts: Tensor) -> Tensor:
    """Per-sample hue rotation by shift (fraction of a turn, in [-0.5, 0.5]).

    Same result as torchvision's RGB->HSV, shift, HSV->RGB, but via the closed form
    c = V - C * clamp(min(k, 4 - k), 0, 1), k = (n + 6H) mod 6, which needs no
    per-sextant masks: value V and chroma C are invariant under a hue rotation.
    """
    r, g, b = images01[:, 0:1], images01[:, 1:2], images01[:, 2:3]
    maxc = torch.maximum(torch.maximum(r, g), b)  # elementwise beats amax over dim 1
    chroma = maxc - torch.minimum(torch.minimum(r, g), b)
    # Grey pixels (chroma 0) get an arbitrary finite hue; it is multiplied by chroma below.
    inv = chroma.clamp_min(1e-12).reciprocal_()
    # Hue in sextants, ties resolved r > g > b as torchvision does. In-place ops: on CPU
    # every fresh temporary of this size can cost page faults, which dominate here.
    hue6 = torch.where(
        maxc == r,
        (g - b).mul_(inv),
        torch.where(maxc == g, (b - r).mul_(inv).add_(2.0), (r - g).mul_(inv).add_(4.0)),
    )
    offsets = _constant(_HUE_CHANNEL_OFFSETS, images01)
    k = (hue6 + (6.0 * _per_sample(shifts, images01) + offsets.view(1, 3, 1, 1))).remainder_(6.0)
    shade = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return torch.addcmul(maxc, chroma, shade, value=-1.0)


def grayscale_where(images01: Tensor, mask: Tensor) -> Tensor:
    """Replace the images selected by mask [B] with their 3-channel grayscale."""
    selected = on_device(mask, images01).view(-1, 1, 1, 1)
    return torch.where(selected, rgb_to_grayscale(images01), images01)


def solarize_where(images01: Tensor, mask: Tensor, threshold: float) -> Tensor:
    """Invert (1 - x) the values >= threshold of the images selected by mask [B]."""
    selected = on_device(mask, images01).view(-1, 1, 1, 1)
    return torch.where(selected & (images01 >= threshold), 1.0 - images01, images01)


def blur_kernel_size(side: int, fraction: float) -> int:
    """Kernel size ~ fraction of the side, odd (centred) and at least 3."""
    size = max(3, round(fraction * side))
    return size if size % 2 else size + 1


def gaussian_kernels(sigmas: Tensor, size: int) -> Tensor:
    """Normalised 1-D Gaussian kernels [B,size], sampled like torchvision's."""
    x = torch.arange(size, dtype=sigmas.dtype, device=sigmas.device) - (size - 1) / 2
    pdf = torch.exp(-0.5 * (x[None, :] / sigmas[:, None]) ** 2)
    return pdf / pdf.sum(dim=1, keepdim=True)


def gaussian_blur(images01: Tensor, kernels: Tensor) -> Tensor:
    """Separable per-sample blur with reflect padding: one depthwise conv per axis.

    kernels [B,K] (odd K); a delta kernel leaves its image exactly unchanged.
    """
    b, c, h, w = images01.shape
    k = kernels.shape[1]
    weight = on_device(kernels, images01, images01.dtype).repeat_interleave(c, dim=0)
    x = F.pad(images01.reshape(1, b * c, h, w), (k // 2,) * 4, mode="reflect")
    x = F.conv2d(x, weight.view(b * c, 1, k, 1), groups=b * c)
    x = F.conv2d(x, weight.view(b * c, 1, 1, k), groups=b * c)
    return x.view(b, c, h, w)


JitterOp = Callable[[Tensor, Tensor], Tensor]
_JITTER_OPS: tuple[JitterOp, ...] = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
_JITTER_IDENTITY = (1.0, 1.0, 1.0, 0.0)


def _jitter_bounds(cfg: AugmentConfig) -> tuple[tuple[float, float], ...]:
    """torchvision ColorJitter's sampling ranges for (brightness, contrast, saturation, hue)."""
    ranges = [(max(0.0, 1.0 - s), 1.0 + s) for s in (cfg.brightness, cfg.contrast, cfg.saturation)]
    return (*ranges, (-cfg.hue, cfg.hue))


# --------------------------------------------------------------------------- module


class BatchAugment(torch.nn.Module):
    """One random view per image of a uint8 batch, on the batch's device.

    ``config`` is one ``AugmentConfig`` for every view or a pair (view 1's, view 2's); the
    ``view`` argument (0 or 1) of each call picks one. Random parameters come from
    ``generator`` (a CPU generator; None = torch's global one) so a seeded run is
    reproducible on any device; only the small parameter tensors are moved to the images.
    Every call draws the same amount of randomness whatever the coins say, so one stage's
    outcome never shifts the next stage's draws. ``share`` says which rows of a global batch
    the images are (see module doc).
    """

    def __init__(self, config: AugmentConfig | Sequence[AugmentConfig], output_size: int) -> None:
        super().__init__()
        if output_size < 1:
            raise UserInputError(f"augmentation output_size must be >= 1, got {output_size}")
        views = (config, config) if isinstance(config, AugmentConfig) else tuple(config)
        if len(views) != 2:
            raise UserInputError(f"augmentation needs one config or one per view (2), got {len(views)}")
        if any((v.mean, v.std) != (views[0].mean, views[0].std) for v in views):
            raise UserInputError("augmentation views must share one normalisation (mean, std)")
        self.views = views
        self.config = views[0]
        self.output_size = output_size

    def forward(self, images_uint8: Tensor, generator: torch.Generator | None = None,
                share: BatchShare = WHOLE_BATCH, view: int = 0) -> Tensor:
        """uint8 [B,3,H,W] -> normalised float [B,3,S,S]: view ``view``'s augmentation."""
        views = self.colour(self.crop_and_flip(images_uint8, generator, share, view), generator, share, view)
        return self.normalize(views).contiguous()

    def crop_and_flip(self, images_uint8: Tensor, generator: torch.Generator | None = None,
                      share: BatchShare = WHOLE_BATCH, view: int = 0) -> Tensor:
        """Random resized crop + horizontal flip -> float [B,3,S,S] in [0,1]."""
        cfg = self.views[view]
        b, _, height, width = images_uint8.shape
        boxes = sample_crop_boxes(b, height, width, cfg.crop_scale, cfg.crop_ratio, generator, share)
        flips = _coins(b, cfg.flip_p, generator, share)
        return resized_crop_flip(_to_unit_float(images_uint8), boxes, flips, self.output_size)

    def colour(self, images01: Tensor, generator: torch.Generator | None = None,
               share: BatchShare = WHOLE_BATCH, view: int = 0) -> Tensor:
        """Colour jitter (p), grayscale (p), Gaussian blur (p), solarize (p); stays in [0,1].

        Jitter order is one random permutation per call (see module docstring).
        """
        cfg = self.views[view]
        x = self._jitter(cfg, images01, generator, share)
        x = self._grayscale(cfg, x, generator, share)
        x = self._blur(cfg, x, generator, share)
        return self._solarize(cfg, x, generator, share)

    def normalize(self, images01: Tensor) -> Tensor:
        """Per-channel normalisation with the config's mean/std."""
        return normalize(images01, self.config.mean, self.config.std)

    @staticmethod
    def _jitter(cfg: AugmentConfig, x: Tensor, generator: torch.Generator | None, share: BatchShare) -> Tensor:
        n = x.shape[0]
        applied = _coins(n, cfg.jitter_p, generator, share)
        order = torch.randperm(len(_JITTER_OPS), generator=generator)
        bounds = _jitter_bounds(cfg)
        factors = [torch.where(applied, _uniform(n, bound, generator, share), ident)
                   for bound, ident in zip(bounds, _JITTER_IDENTITY)]
        if not bool(applied.any()):
            return x
        for i in order.tolist():
            if bounds[i] != (_JITTER_IDENTITY[i], _JITTER_IDENTITY[i]):  # skip disabled ops
                x = _JITTER_OPS[i](x, factors[i])
        return x

    @staticmethod
    def _grayscale(cfg: AugmentConfig, x: Tensor, generator: torch.Generator | None, share: BatchShare) -> Tensor:
        mask = _coins(x.shape[0], cfg.grayscale_p, generator, share)
        return grayscale_where(x, mask) if bool(mask.any()) else x

    @staticmethod
    def _blur(cfg: AugmentConfig, x: Tensor, generator: torch.Generator | None, share: BatchShare) -> Tensor:
        n, _, height, width = x.shape
        mask = _coins(n, cfg.blur_p, generator, share)
        sigmas = _uniform(n, cfg.blur_sigma, generator, share)
        if not bool(mask.any()):
            return x
        side = min(height, width)
        if cfg.blur_sigma_reference is not None:
            sigmas = sigmas * (side / cfg.blur_sigma_reference)
        size = blur_kernel_size(side, cfg.blur_kernel_fraction)
        delta = torch.zeros(size, dtype=sigmas.dtype)
        delta[size // 2] = 1.0
        kernels = torch.where(mask[:, None], gaussian_kernels(sigmas, size), delta)
        return gaussian_blur(x, kernels)

    @staticmethod
    def _solarize(cfg: AugmentConfig, x: Tensor, generator: torch.Generator | None, share: BatchShare) -> Tensor:
        mask = _coins(x.shape[0], cfg.solarize_p, generator, share)
        return solarize_where(x, mask, cfg.solarize_threshold) if bool(mask.any()) else x


EVAL_RESIZE_RATIO = 256 / 224  # Resize(256) + CenterCrop(224), the authors' evaluation transform


def eval_resize_side(output_size: int) -> int:
    """The shorter side an image is resized to before its central ``output_size`` crop (256 for 224)."""
    return round(output_size * EVAL_RESIZE_RATIO)


def eval_transform(
    images_uint8: Tensor, output_size: int, mean: Sequence[float], std: Sequence[float]
) -> Tensor:
    """No augmentation, for feature extraction: images already ``output_size`` square are only
    normalised; others have their shorter side resized to ``output_size x 256/224`` (antialiased
    bilinear) and are centre-cropped to ``output_size``, as Resize(256) + CenterCrop(224)."""
    x = _to_unit_float(images_uint8)
    height, width = x.shape[-2:]
    if (height, width) != (output_size, output_size):
        short, target = min(height, width), eval_resize_side(output_size)
        new_size = (round(height * target / short), round(width * target / short))
        x = F.interpolate(x, size=new_size, mode="bilinear", align_corners=False, antialias=True)
        height, width = new_size
    top, left = (height - output_size) // 2, (width - output_size) // 2
    x = x[..., top:top + output_size, left:left + output_size]
    return normalize(x, mean, std).contiguous()
