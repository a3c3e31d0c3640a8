from __future__ import annotations

import math

import torch
from scipy.spatial.transform import Rotation

from lab.data.actions import (
    affine_actions, angle_action, compose_angle_actions, consecutive_diff, inverse_action_signs, quat_mul, relative_angles,
    relative_quats,
)


def test_relative_rotations_compose_to_the_end_to_end_rotation() -> None:
    theta = (torch.rand(32, 3) * 2 - 1) * math.pi
    rel = relative_angles(theta)  # (32, 2, 2): view1→2 and view2→3
    composed = compose_angle_actions(rel[:, 0], rel[:, 1])
    torch.testing.assert_close(composed, angle_action(theta[:, 2] - theta[:, 0]), atol=1e-5, rtol=0)
    # wrapping: +170° then +30° is the same action as −160°
    a, b = angle_action(torch.tensor(math.radians(170))), angle_action(torch.tensor(math.radians(30)))
    torch.testing.assert_close(compose_angle_actions(a, b), angle_action(torch.tensor(math.radians(-160))), atol=1e-6, rtol=0)


def test_quaternion_algebra_matches_scipy() -> None:
    r = Rotation.random(24, random_state=0)
    q = torch.tensor(r.as_quat(), dtype=torch.float64).view(8, 3, 4)  # xyzw
    rel = relative_quats(q)
    for b in range(8):
        for i in range(2):
            ri, rj = Rotation.from_quat(q[b, i].numpy()), Rotation.from_quat(q[b, i + 1].numpy())
            want = (ri.inv() * rj).as_matrix()
            got = Rotation.from_quat(rel[b, i].numpy()).as_matrix()
            assert abs(want - got).max() < 1e-9
    # composition: q(R1⁻¹R2) ⊗ q(R2⁻¹R3) = q(R1⁻¹R3), up to the double cover's sign
    end_to_end = quat_mul(rel[:, 0], rel[:, 1])
    direct = relative_quats(q[:, [0, 2]])[:, 0]
    sign = torch.sign((end_to_end * direct).sum(-1, keepdim=True))
    torch.testing.assert_close(end_to_end * sign, direct)


def test_affine_actions_layout() -> None:
    theta = torch.tensor([[0.0, math.pi / 2]])
    log_s = torch.tensor([[0.0, math.log(2.0)]])
    shift = torch.tensor([[[0.0, 0.0], [0.1, -0.2]]])
    log_g = torch.zeros(1, 2, 3)
    a = affine_actions(theta, log_s, shift, log_g)
    assert a.shape == (1, 1, 8)
    torch.testing.assert_close(a[0, 0], torch.tensor([1.0, 0.0, math.log(2.0), 0.1, -0.2, 0.0, 0.0, 0.0]), atol=1e-6, rtol=0)


def test_inverse_action_signs_invert_every_kind() -> None:
    theta = torch.tensor([0.3, -1.2])
    a = angle_action(theta)
    inv = inverse_action_signs(["sin_rot", "cos_rot"]) * a
    torch.testing.assert_close(compose_angle_actions(a, inv), angle_action(torch.zeros(2)))
    q = torch.nn.functional.normalize(torch.randn(3, 4), dim=-1)
    identity = quat_mul(q, inverse_action_signs(["q_x", "q_y", "q_z", "q_w"]) * q)
    torch.testing.assert_close(identity, torch.tensor([[0.0, 0.0, 0.0, 1.0]]).expand(3, 4), atol=1e-6, rtol=0)
    params = torch.randn(2, 4, 3)  # absolute parameters of 4 views
    forward = consecutive_diff(params)
    backward = consecutive_diff(params.flip(1))
    torch.testing.assert_close(backward, inverse_action_signs(["a", "b", "c"]) * forward.flip(1))
