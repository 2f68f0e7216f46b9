"""Evaluation of a backbone: features and spectrum, linear probe, kNN."""
