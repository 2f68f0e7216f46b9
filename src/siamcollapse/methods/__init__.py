"""Self-supervised methods, registered by name; importing this package registers them all."""

from . import simsiam  # noqa: F401  (registers "simsiam")
from .base import Method, StepOutput, build_method, method_names

__all__ = ["Method", "StepOutput", "build_method", "method_names"]
