"""siamcollapse: a reproducible pipeline for dimensional collapse in non-contrastive SSL."""

__version__ = "0.1.0"
