"""Datasets (embedded and on-disk) and batched, on-device view/action generation."""
