"""Aggregators g_φ: token mixers (B, T, D) → (B, T, D) over [AGG], u_1..u_M.

The [AGG] token and the read-out of its position belong to `SeqJEPA`, so every aggregator
(transformer, CRATE, …) only mixes tokens and has an `out_dim` attribute.
"""
