"""VPT's hierarchical joint action space and the env's factored one (pure numpy).

The VPT network does not output 20 independent buttons: its ``buttons`` head is one
categorical over 8641 joint choices -- one option from each mutually exclusive group below
(10 x 3 x 3 x 3 x 2 x 2 x 2 x 2 x 2 = 8640 combinations, the last group being a "camera
moves" meta-action) plus ``inventory`` alone -- and its ``camera`` head one categorical over
the 11 x 11 (pitch bin, yaw bin) pairs, used only when the meta-action says the camera moves.
Index order is that of a nested loop over the groups in the order listed, the last
fastest; the camera index is ``pitch * 11 + yaw``. The factored side is the `minecraft`
env's action: 20 buttons in `openended.envs.minecraft_actions.VPT_BUTTONS` order, then
camera pitch and yaw bins.

Factored -> joint resolves what a joint choice cannot hold the way VPT's recorder did:
forward + back (and left + right) cancel to neither, two keys of one other group keep the
later one (sneak over sprint, the highest hotbar slot), and ``inventory`` wins over
everything (the camera stays still). Canonical actions -- at most one key per group,
``inventory`` alone -- round-trip exactly.
"""

from __future__ import annotations

import itertools

import numpy as np

from openended.envs.minecraft_actions import VPT_BUTTONS, VPT_CAMERA_BINS

__all__ = [
    "BUTTON_GROUPS",
    "N_BUTTON_CHOICES",
    "N_CAMERA_CHOICES",
    "CAMERA_NULL",
    "INVENTORY_CHOICE",
    "joint_to_factored",
    "factored_to_joint",
    "button_table",
    "camera_table",
]

#: Mutually exclusive button groups: option 0 is "none"; the last group is the camera meta-action.
BUTTON_GROUPS: tuple[tuple[str, ...], ...] = (
    ("none", *(f"hotbar.{i}" for i in range(1, 10))),
    ("none", "forward", "back"),
    ("none", "left", "right"),
    ("none", "sprint", "sneak"),
    ("none", "use"),
    ("none", "drop"),
    ("none", "attack"),
    ("none", "jump"),
    ("none", "camera"),
)
_SIZES = np.array([len(g) for g in BUTTON_GROUPS])
INVENTORY_CHOICE = int(np.prod(_SIZES))  # 8640: the one choice outside the product
N_BUTTON_CHOICES = INVENTORY_CHOICE + 1
N_CAMERA_CHOICES = VPT_CAMERA_BINS * VPT_CAMERA_BINS
CAMERA_NULL = VPT_CAMERA_BINS // 2  # the still bin of each axis
_B = {name: i for i, name in enumerate(VPT_BUTTONS)}
_STRIDES = np.array([int(np.prod(_SIZES[k + 1 :])) for k in range(len(_SIZES))])


def button_table() -> tuple[np.ndarray, np.ndarray]:
    """``(pressed, camera_moves)``: per joint choice, its 20 factored buttons (int64) and its meta-action (bool)."""
    pressed = np.zeros((N_BUTTON_CHOICES, len(VPT_BUTTONS)), dtype=np.int64)
    moves = np.zeros(N_BUTTON_CHOICES, dtype=bool)
    for idx, combo in enumerate(itertools.product(*BUTTON_GROUPS)):
        for name in combo[:-1]:
            if name != "none":
                pressed[idx, _B[name]] = 1
        moves[idx] = combo[-1] == "camera"
    pressed[INVENTORY_CHOICE, _B["inventory"]] = 1
    return pressed, moves


def camera_table() -> np.ndarray:
    """Per joint camera choice, its (pitch bin, yaw bin)."""
    idx = np.arange(N_CAMERA_CHOICES)
    return np.stack([idx // VPT_CAMERA_BINS, idx % VPT_CAMERA_BINS], axis=1)


_PRESSED, _MOVES = button_table()
_CAMERA = camera_table()


def joint_to_factored(buttons: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """Joint choices (``buttons`` 0..8640, ``camera`` 0..120, equal shapes) -> env actions (..., 22)."""
    b = np.asarray(buttons, dtype=np.int64)
    c = np.asarray(camera, dtype=np.int64)
    if b.shape != c.shape:
        raise ValueError(f"joint_to_factored: buttons shape {b.shape} != camera shape {c.shape}")
    if b.size and (b.min() < 0 or b.max() >= N_BUTTON_CHOICES or c.min() < 0 or c.max() >= N_CAMERA_CHOICES):
        raise ValueError(
            f"joint_to_factored: buttons must be in [0, {N_BUTTON_CHOICES}), camera in [0, {N_CAMERA_CHOICES})"
        )
    cam = np.where(_MOVES[b][..., None], _CAMERA[c], CAMERA_NULL)
    return np.concatenate([_PRESSED[b], cam], axis=-1)


def _group_choice(pressed: np.ndarray, group: tuple[str, ...]) -> np.ndarray:
    """Option index per row: the last pressed key of the group wins; opposite movement keys cancel."""
    keys = [name for name in group if name != "none"]
    cols = pressed[:, [_B[k] for k in keys]].astype(bool)
    if keys in (["forward", "back"], ["left", "right"]):
        cols[cols.all(axis=1)] = False
    weights = np.arange(1, len(keys) + 1)
    return (cols * weights).max(axis=1)  # 0: none pressed


def factored_to_joint(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Env actions (..., 22): 20 buttons 0/1 then camera bins -> (button choice, camera choice)."""
    a = np.asarray(actions, dtype=np.int64)
    width = len(VPT_BUTTONS) + 2
    if a.shape[-1:] != (width,):
        raise ValueError(f"factored_to_joint: actions must end in a dimension of {width}, got shape {a.shape}")
    lead = a.shape[:-1]
    flat = a.reshape(-1, width)
    pressed, cam = flat[:, : len(VPT_BUTTONS)], flat[:, len(VPT_BUTTONS) :]
    moves = (cam != CAMERA_NULL).any(axis=1)
    choice = np.zeros(len(flat), dtype=np.int64)
    for k, group in enumerate(BUTTON_GROUPS[:-1]):
        choice += _group_choice(pressed, group) * _STRIDES[k]
    choice += moves.astype(np.int64) * _STRIDES[-1]
    inventory = pressed[:, _B["inventory"]].astype(bool)
    choice[inventory] = INVENTORY_CHOICE
    cam_choice = np.where(
        inventory, CAMERA_NULL * VPT_CAMERA_BINS + CAMERA_NULL, cam[:, 0] * VPT_CAMERA_BINS + cam[:, 1]
    )
    return choice.reshape(lead), cam_choice.reshape(lead)
