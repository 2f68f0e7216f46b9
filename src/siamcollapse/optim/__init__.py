"""Optimisers (SGD, LARS, AdamW over a method's parameter groups) and learning-rate schedules,
below the methods, training and evaluation that use them."""
