"""Losses as pure functions with documented shapes, chosen by `objective.loss`."""

from lab.losses.jepa import cosine_loss

LOSSES = {"cosine": cosine_loss}

__all__ = ["LOSSES", "cosine_loss"]
