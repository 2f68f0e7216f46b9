"""Pretraining: the loop, lr schedules, data-ordering strategies, checkpoints."""
