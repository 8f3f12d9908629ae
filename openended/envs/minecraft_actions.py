"""VPT's action space and its conversion to and from MineDojo's, in pure numpy.

VPT (Baker et al. 2022) acts with 20 keyboard/mouse buttons and a camera move quantized
into 11 x 11 mu-law bins of at most 10 degrees per step; MineDojo acts with an 8-part
``MultiDiscrete`` whose camera moves in 15-degree bins. A VPT-prior policy drives a MineDojo
task through `VPTToMineDojo`, which keeps the camera motion VPT asked for that a 15-degree
bin could not express and emits it once it adds up to a bin, so slow turns still turn.

Layouts (index: meaning)::

    VPT buttons:  attack back forward jump left right sneak sprint use drop inventory hotbar.1..9
    VPT camera:   (pitch bin, yaw bin), 0..10, 5 = still; degrees by mu-law (mu 10, max 10)
    MineDojo:     [0] 0 noop 1 forward 2 back      [1] 0 noop 1 left 2 right
                  [2] 0 noop 1 jump 2 sneak 3 sprint
                  [3] pitch bin, [4] yaw bin: 0..24, 12 = still, 15 degrees each
                  [5] 0 noop 1 use 2 drop 3 attack 4 craft 5 equip 6 place 7 destroy
                  [6] craft argument (244 recipes)  [7] equip/place/destroy slot (36)
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "VPT_BUTTONS",
    "VPT_CAMERA_BINS",
    "MINEDOJO_NVEC",
    "camera_degrees_to_bin",
    "camera_bin_to_degrees",
    "vpt_to_minedojo",
    "minedojo_to_vpt",
    "VPTToMineDojo",
]

VPT_BUTTONS: tuple[str, ...] = (
    "attack", "back", "forward", "jump", "left", "right", "sneak", "sprint", "use", "drop", "inventory",
    *(f"hotbar.{i}" for i in range(1, 10)),
)  # fmt: skip
VPT_CAMERA_BINS = 11
CAMERA_MAX_DEG = 10.0
CAMERA_MU = 10.0
MINEDOJO_NVEC: tuple[int, ...] = (3, 3, 4, 25, 25, 8, 244, 36)
MINEDOJO_CAMERA_STEP_DEG = 15.0
_B = {name: i for i, name in enumerate(VPT_BUTTONS)}
_HALF = VPT_CAMERA_BINS // 2


def camera_degrees_to_bin(deg: np.ndarray | float) -> np.ndarray:
    """Degrees of camera move -> VPT's mu-law bin (0..10; 5 is no move), clipped at +-10 degrees."""
    v = np.clip(np.asarray(deg, dtype=np.float64), -CAMERA_MAX_DEG, CAMERA_MAX_DEG) / CAMERA_MAX_DEG
    encoded = np.sign(v) * np.log1p(CAMERA_MU * np.abs(v)) / np.log1p(CAMERA_MU)
    return np.rint(encoded * _HALF + _HALF).astype(np.int64)


def camera_bin_to_degrees(b: np.ndarray | int) -> np.ndarray:
    """VPT's camera bin -> degrees (the inverse of `camera_degrees_to_bin` at bin centres)."""
    encoded = (np.asarray(b, dtype=np.float64) - _HALF) / _HALF
    return np.sign(encoded) * np.expm1(np.abs(encoded) * np.log1p(CAMERA_MU)) / CAMERA_MU * CAMERA_MAX_DEG


def _pair(buttons: np.ndarray, a: str, b: str) -> int:
    """0 for neither or both (they cancel, as in the game), 1 for ``a`` alone, 2 for ``b`` alone."""
    pa, pb = bool(buttons[_B[a]]), bool(buttons[_B[b]])
    return 1 if pa and not pb else 2 if pb and not pa else 0


def vpt_to_minedojo(buttons: np.ndarray, camera_deg: np.ndarray) -> np.ndarray:
    """One VPT action (20 buttons, camera move in degrees) -> MineDojo's 8-part action.

    MineDojo takes one functional action per step: attack beats use, use beats drop, and a
    hotbar key (equip) is taken only when none of those is pressed. ``inventory`` has no
    MineDojo counterpart and is dropped. The camera is rounded to the nearest 15-degree bin
    (`VPTToMineDojo` keeps the remainder across steps).
    """
    buttons = np.asarray(buttons)
    act = np.zeros(len(MINEDOJO_NVEC), dtype=np.int64)
    act[0] = _pair(buttons, "forward", "back")
    act[1] = _pair(buttons, "left", "right")
    act[2] = 1 if buttons[_B["jump"]] else 2 if buttons[_B["sneak"]] else 3 if buttons[_B["sprint"]] else 0
    steps = np.clip(np.rint(np.asarray(camera_deg, dtype=np.float64) / MINEDOJO_CAMERA_STEP_DEG), -12, 12)
    act[3], act[4] = int(steps[0]) + 12, int(steps[1]) + 12
    hotbar = [i for i in range(1, 10) if buttons[_B[f"hotbar.{i}"]]]
    if buttons[_B["attack"]]:
        act[5] = 3
    elif buttons[_B["use"]]:
        act[5] = 1
    elif buttons[_B["drop"]]:
        act[5] = 2
    elif hotbar:
        act[5], act[7] = 5, hotbar[0] - 1
    return act


def minedojo_to_vpt(action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MineDojo's action -> (VPT buttons, camera degrees), for the parts VPT can express.

    Craft, place and destroy (functional 4, 6, 7) have no VPT button and map to none.
    """
    a = np.asarray(action, dtype=np.int64)
    buttons = np.zeros(len(VPT_BUTTONS), dtype=np.int64)
    if a[0]:
        buttons[_B["forward" if a[0] == 1 else "back"]] = 1
    if a[1]:
        buttons[_B["left" if a[1] == 1 else "right"]] = 1
    if a[2]:
        buttons[_B[("jump", "sneak", "sprint")[a[2] - 1]]] = 1
    fn = int(a[5])
    if fn in (1, 2, 3):
        buttons[_B[{1: "use", 2: "drop", 3: "attack"}[fn]]] = 1
    elif fn == 5 and a[7] < 9:
        buttons[_B[f"hotbar.{int(a[7]) + 1}"]] = 1
    camera = (a[3:5].astype(np.float64) - 12.0) * MINEDOJO_CAMERA_STEP_DEG
    return buttons, camera


class VPTToMineDojo:
    """Stateful VPT -> MineDojo conversion that carries sub-bin camera motion to later steps.

    Why: VPT's camera moves at most 10 degrees per step, below MineDojo's 15-degree bin, so a
    stateless rounding would never turn at VPT's usual speeds.
    """

    def __init__(self) -> None:
        self.residual = np.zeros(2)

    def reset(self) -> None:
        """Forget the carried camera motion (a new episode)."""
        self.residual[:] = 0.0

    def __call__(self, buttons: np.ndarray, camera_bins: np.ndarray) -> np.ndarray:
        """One VPT action with camera as bins (0..10 each) -> MineDojo's action."""
        wanted = camera_bin_to_degrees(np.asarray(camera_bins)) + self.residual
        act = vpt_to_minedojo(buttons, wanted)
        sent = (act[3:5] - 12) * MINEDOJO_CAMERA_STEP_DEG
        self.residual = wanted - sent
        return act
