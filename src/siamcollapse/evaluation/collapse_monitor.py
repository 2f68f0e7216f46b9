"""The label-free collapse metrics of a backbone on a fixed sample of images, during training.

The same sample (``data.subsets.fixed_sample``, seed 0) for every run and every epoch, at the
evaluation transform, with batch norm in eval mode: what changes between two measurements is
the network, nothing else. The spectrum is that of the centred sample x d feature matrix.
"""

from __future__ import annotations

import time

import torch

from ..data.augment import eval_transform
from ..metrics import SPECTRUM_METRICS, spectrum_metrics
from .features import MEAN, STD
from .spectrum import NonFiniteFeatures, SpectrumAccumulator


class CollapseMonitor:
    """``measure(backbone)`` -> the ``metrics.SPECTRUM_METRICS`` of its features of ``images``.

    ``images`` (uint8 [n,3,H,W]) are kept on ``device``; forward passes take ``batch_size``
    images at a time. ``seconds`` adds up the time spent measuring (the overhead of tracking).
    """

    def __init__(self, images: torch.Tensor, image_size: int, device: torch.device, batch_size: int = 256) -> None:
        self.images = images.to(device)
        self.image_size, self.batch_size = image_size, batch_size
        self.seconds = 0.0

    @torch.no_grad()
    def measure(self, backbone: torch.nn.Module) -> dict[str, float]:
        tic = time.time()
        was_training = backbone.training
        backbone.eval()
        try:
            spectrum = SpectrumAccumulator(backbone.feature_dim)
            for start in range(0, len(self.images), self.batch_size):
                batch = eval_transform(self.images[start:start + self.batch_size], self.image_size, MEAN, STD)
                spectrum.update(backbone(batch).float())
        finally:
            backbone.train(was_training)
        try:
            values = spectrum_metrics(spectrum.singular_values())
        except NonFiniteFeatures:
            raise  # the run diverged: the training loop stops it
        except ValueError as err:  # a constant representation: no spectrum to measure
            print(f"collapse metrics undefined: {err}", flush=True)
            values = dict.fromkeys(SPECTRUM_METRICS, float("nan"))
        self.seconds += time.time() - tic
        return values
