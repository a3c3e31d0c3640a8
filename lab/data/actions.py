"""Action algebra: relative actions between consecutive views, as in seq-JEPA (a_i: x_i → x_{i+1}).

All functions are batched over leading dimensions and run on whatever device their inputs are on.
Quaternions are (x, y, z, w), scipy's `as_quat()` order, as 3DIEBench stores them; they are
not canonicalised (q and −q both occur), as in the paper and SIE.
"""

from __future__ import annotations

import torch


def consecutive_diff(params: torch.Tensor) -> torch.Tensor:
    """Differences of absolute parameters along the view axis. (B, V, P) → (B, V−1, P).

    This is the released code's relative action for augmentation parameters.
    """
    return params[:, 1:] - params[:, :-1]


def angle_action(theta: torch.Tensor) -> torch.Tensor:
    """A planar rotation by `theta` (radians) encoded as (sin, cos). (...) → (..., 2)."""
    return torch.stack([torch.sin(theta), torch.cos(theta)], dim=-1)


def relative_angles(theta: torch.Tensor) -> torch.Tensor:
    """Relative rotation between consecutive views as (sin Δ, cos Δ). (B, V) → (B, V−1, 2)."""
    return angle_action(theta[:, 1:] - theta[:, :-1])


def compose_angle_actions(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The (sin, cos) action of doing `a` then `b` (complex multiplication). (..., 2) × (..., 2) → (..., 2)."""
    sa, ca = a.unbind(-1)
    sb, cb = b.unbind(-1)
    return torch.stack([sa * cb + ca * sb, ca * cb - sa * sb], dim=-1)


def quat_conj(q: torch.Tensor) -> torch.Tensor:
    """Conjugate (the inverse rotation for unit quaternions). (..., 4) → (..., 4)."""
    return torch.cat([-q[..., :3], q[..., 3:]], dim=-1)


def quat_mul(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Hamilton product p ⊗ q in (x, y, z, w) order; the rotation R_p R_q. (..., 4) × (..., 4) → (..., 4)."""
    pv, pw = p[..., :3], p[..., 3:]
    qv, qw = q[..., :3], q[..., 3:]
    vec = pw * qv + qw * pv + torch.linalg.cross(pv, qv, dim=-1)
    w = pw * qw - (pv * qv).sum(-1, keepdim=True)
    return torch.cat([vec, w], dim=-1)


def relative_quats(q: torch.Tensor) -> torch.Tensor:
    """q(R_i⁻¹ R_{i+1}) for consecutive views. (B, V, 4) → (B, V−1, 4)."""
    return quat_mul(quat_conj(q[:, :-1]), q[:, 1:])


def affine_actions(theta: torch.Tensor, log_scale: torch.Tensor, shift: torch.Tensor, log_gain: torch.Tensor) -> torch.Tensor:
    """Relative action of the shapes' affine+colour views. (B, V), (B, V), (B, V, 2), (B, V, 3) → (B, V−1, 8).

    Layout: [sin Δθ, cos Δθ, Δlog scale, Δx, Δy, Δlog gain_rgb]. Rotation composes exactly; the
    rest are differences of absolute parameters, as the released code does for augmentations.
    """
    rest = consecutive_diff(torch.cat([log_scale[..., None], shift, log_gain], dim=-1))
    return torch.cat([relative_angles(theta), rest], dim=-1)


# Dimensions that an inverse action keeps: cos(−Δθ) = cos Δθ, and a unit quaternion's w.
_KEPT_BY_INVERSE = {"cos_rot", "q_w"}


def inverse_action_signs(names: list[str]) -> torch.Tensor:
    """(A,) ±1 such that signs · a is the inverse of action a, for every action kind here:
    (sin, cos) of −Δθ is (−sin, cos); q⁻¹ = conj(q) = (−x, −y, −z, w); a difference of absolute
    parameters negates. So the reversed sequence x_V..x_1 has actions signs · a_{V−1}, …, signs · a_1."""
    return torch.tensor([1.0 if name in _KEPT_BY_INVERSE else -1.0 for name in names])
