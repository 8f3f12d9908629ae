"""SC2's function-and-arguments actions as one flat ``MultiDiscrete`` with a mask.

Contents:
    MINIGAME_FUNCTIONS -- the pysc2 functions the seven DeepMind minigames need (the default set).
    ActionLayout       -- the flattening: ``[function, arg_1, ..., arg_k]`` <-> a pysc2 ``FunctionCall``,
                          and the mask of what is allowed now (from ``available_actions``).

Why this shape: a pysc2 action is a function id plus the arguments that function takes
(``Attack_screen(queued, screen)``). The SC2LE baseline agents (Vinyals et al., 2017)
output the function and every argument type with independent heads and use only the
arguments the chosen function takes; a ``MultiDiscrete`` is that policy in gymnasium
terms, so RLlib's default PPO heads apply unchanged. Spatial arguments are one component
of ``width * height`` cells (row-major, ``x + y * width``), not two coordinates, so a
point is one categorical choice as in the baselines.

The mask is the concatenation of one 0/1 vector per component (``sum(nvec)`` entries, the
layout RLlib's MultiDiscrete logits have): functions allowed by ``available_actions``;
spatial cells inside the running task's resolution (a task may play at a lower resolution
than the env's largest; its observation is zero-padded to the same shape); every value of
the other arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from openended.errors import ConfigError

__all__ = ["MINIGAME_FUNCTIONS", "SPATIAL_ARGS", "ActionLayout"]

#: What the seven minigames are played with: selection, move/attack (screen and minimap),
#: gathering, building supply depots / barracks / refineries / command centres, training
#: SCVs and marines, the camera. ``no_op`` is always first.
MINIGAME_FUNCTIONS: tuple[str, ...] = (
    "no_op",
    "move_camera",
    "select_point",
    "select_rect",
    "select_control_group",
    "select_idle_worker",
    "select_army",
    "Attack_screen",
    "Attack_minimap",
    "Move_screen",
    "Move_minimap",
    "Smart_screen",
    "Stop_quick",
    "HoldPosition_quick",
    "Harvest_Gather_screen",
    "Harvest_Return_quick",
    "Rally_Workers_screen",
    "Build_SupplyDepot_screen",
    "Build_Barracks_screen",
    "Build_Refinery_screen",
    "Build_CommandCenter_screen",
    "Train_SCV_quick",
    "Train_Marine_quick",
)

#: Argument types that are points: which resolution each one is on.
SPATIAL_ARGS: dict[str, str] = {"screen": "screen", "screen2": "screen", "minimap": "minimap"}


def _pysc2_actions() -> Any:
    from openended.envs.sc2_game import import_pysc2

    import_pysc2()
    from pysc2_evolved.lib import actions  # lazy: the family is imported only when made

    return actions


class ActionLayout:
    """The flat action space of a set of pysc2 functions at given (largest) resolutions.

    Args:
        functions: pysc2 function names (``"Attack_screen"``), or ``"minigames"`` / ``"all"``.
        screen: side of the largest screen (square feature layers), in cells.
        minimap: side of the largest minimap.
        field: the config field named in errors.
    """

    def __init__(
        self, functions: str | Sequence[str], screen: int, minimap: int, *, field: str = "env.config.functions"
    ) -> None:
        actions = _pysc2_actions()
        if functions == "minigames":
            names: Sequence[str] = MINIGAME_FUNCTIONS
        elif functions == "all":
            names = [f.name for f in actions.FUNCTIONS]
        elif isinstance(functions, str):
            raise ConfigError(f"{field}: 'minigames', 'all' or a list of pysc2 function names, got {functions!r}")
        else:
            names = list(functions)
        known = {f.name: f for f in actions.FUNCTIONS}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"{field}: unknown pysc2 function(s) {unknown}; see pysc2_evolved.lib.actions.FUNCTIONS")
        if "no_op" not in names:
            names = ["no_op", *names]  # an action that is always allowed: what an unavailable choice becomes
        if len(set(names)) != len(names):
            raise ConfigError(f"{field}: function names must be unique")
        self.screen, self.minimap = int(screen), int(minimap)
        self.functions = [known[n] for n in names]
        self.function_ids = np.array([int(f.id) for f in self.functions], dtype=np.int64)
        self._slot_of_id = {int(f.id): i for i, f in enumerate(self.functions)}
        arg_types = sorted({a.id: a for f in self.functions for a in f.args}.values(), key=lambda a: a.id)
        self.arg_names: list[str] = [a.name for a in arg_types]
        self._arg_component = {name: 1 + i for i, name in enumerate(self.arg_names)}
        sizes = [self._side(a.name) ** 2 if a.name in SPATIAL_ARGS else int(a.sizes[0]) for a in arg_types]
        self.nvec = np.array([len(self.functions), *sizes], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self.nvec)])
        self._function_args = [[self._arg_component[a.name] for a in f.args] for f in self.functions]
        self._base_mask = np.ones(int(self._offsets[-1]), dtype=np.int8)
        self._mask_cache: dict[tuple[int, int], np.ndarray] = {}

    def _side(self, arg_name: str) -> int:
        return self.screen if SPATIAL_ARGS[arg_name] == "screen" else self.minimap

    def argument_usage(self) -> list[list[int]]:
        """``usage[f][j] = 1`` when function slot ``f`` takes argument component ``j + 1``.

        What a policy needs to leave the arguments a function ignores out of its
        log-probability (`openended.runtime.rllib_masking.FunctionArgsDistribution`).
        """
        n_args = len(self.arg_names)
        return [[int(1 + j in comps) for j in range(n_args)] for comps in self._function_args]

    @property
    def mask_size(self) -> int:
        """Entries of the mask: ``sum(nvec)``."""
        return int(self._offsets[-1])

    def function_slots(self, available_actions: np.ndarray) -> np.ndarray:
        """Positions (in `functions`) of the available pysc2 function ids that this layout has."""
        slot = self._slot_of_id
        return np.array([slot[i] for i in np.asarray(available_actions).tolist() if i in slot], dtype=np.int64)

    def mask(self, available_actions: np.ndarray, screen: int, minimap: int) -> np.ndarray:
        """The 0/1 ``int8`` mask (``mask_size``) for this step: available functions, in-resolution cells."""
        key = (int(screen), int(minimap))
        base = self._mask_cache.get(key)
        if base is None:
            base = self._base_mask.copy()
            base[: self.nvec[0]] = 0
            for name, comp in self._arg_component.items():
                if name in SPATIAL_ARGS:
                    side, inner = self._side(name), screen if SPATIAL_ARGS[name] == "screen" else minimap
                    cells = np.zeros((side, side), dtype=np.int8)
                    cells[:inner, :inner] = 1
                    base[self._offsets[comp] : self._offsets[comp + 1]] = cells.ravel()
            self._mask_cache[key] = base
        out = base.copy()
        out[self.function_slots(available_actions)] = 1
        return out

    def to_call(self, action: Any, available_actions: np.ndarray, screen: int, minimap: int) -> tuple[Any, bool]:
        """The pysc2 ``FunctionCall`` of a flat ``action``, and whether it was allowed as chosen.

        An unavailable function becomes ``no_op`` (pysc2 would raise on it); a point
        outside the running task's resolution is clipped into it. Both count as not allowed.
        """
        a = np.asarray(action, dtype=np.int64).reshape(-1)
        if a.shape[0] != self.nvec.shape[0] or np.any(a < 0) or np.any(a >= self.nvec):
            raise ConfigError(f"sc2 action {a.tolist()} is outside the action space (nvec {self.nvec.tolist()})")
        slot = int(a[0])
        fn = self.functions[slot]
        if int(fn.id) not in set(np.asarray(available_actions).tolist()):
            return _pysc2_actions().FunctionCall(0, []), False
        allowed = True
        args: list[list[int]] = []
        for arg, comp in zip(fn.args, self._function_args[slot]):
            value = int(a[comp])
            if arg.name in SPATIAL_ARGS:
                side = self._side(arg.name)
                inner = screen if SPATIAL_ARGS[arg.name] == "screen" else minimap
                x, y = value % side, value // side
                if x >= inner or y >= inner:
                    allowed = False
                    x, y = min(x, inner - 1), min(y, inner - 1)
                args.append([x, y])
            else:
                args.append([value])
        return _pysc2_actions().FunctionCall(fn.id, args), allowed
