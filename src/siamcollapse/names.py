"""Names every layer shares, torch-free: the pseudo-methods of the floors and of a distilled
student, as runs, tables and feature files spell them."""

RANDOM_INIT = "random-init"  # the untrained network of a model: its standard initialisation
RAW_PIXELS = "raw-pixels"  # the pixel floor: the probes on the eval-transformed images themselves
DISTILL = "distill"  # a student trained to predict a teacher's representation
# The "source" of cached features in their meta.json: the linear probe checks a backbone's
# features against its checkpoint and takes raw pixels without one.
BACKBONE_SOURCE, RAW_PIXELS_SOURCE = "backbone", RAW_PIXELS
