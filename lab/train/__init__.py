"""Training: the loop, schedules, optimiser, online probes, checkpoints and logging."""
