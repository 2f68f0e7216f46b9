"""Self-supervised methods, registered by name; importing this package registers them all."""

from . import byol, distill, mocov3, nnsiam, simsiam  # noqa: F401  (each registers its method)
from .base import Method, StepOutput, build_method, method_names

__all__ = ["Method", "StepOutput", "build_method", "method_names"]
