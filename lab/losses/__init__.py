"""Losses as pure functions with documented shapes; `objective` assembles the configured terms."""

from lab.losses.coding_rate import class_coding_rate, coding_rate, max_coding_rate
from lab.losses.jepa import cosine_loss, sharpened_loss
from lab.losses.objective import objective

__all__ = ["class_coding_rate", "coding_rate", "cosine_loss", "max_coding_rate", "objective", "sharpened_loss"]
