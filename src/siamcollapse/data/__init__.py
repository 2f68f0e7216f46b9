"""Datasets: the embedded generator, on-disk sources, subsets, augmentation, loaders."""
