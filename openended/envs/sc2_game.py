"""The StarCraft II game processes behind an SC2 task env: install check, launch, reuse, crash.

Contents:
    SC2NotInstalled  -- no game at ``SC2PATH``: says what is missing and how to install it.
    SC2GameCrashed   -- the game could not be (re)started after ``max_launch_attempts`` tries.
    import_pysc2     -- import pysc2-evolved without its import-time logging side effect.
    game_errors      -- what a dead or unreachable game process raises through pysc2.
    check_sc2_install -- the install check (binary and map files), before any launch.
    GameKey / GameCache -- live pysc2 envs keyed by what needs a new game, least recently used closed first.
    CrashingTestEnv  -- pysc2's own mock with fault injection: its "game" dies after N steps.

SC2 runs one game per process (the ``SC2_x64`` binary, ~1-2 s to start headless plus map
load). A pysc2 ``SC2Env`` is bound to its map, players and interface resolution at
construction; episodes on the same game restart cheaply (pysc2 fast-restarts
single-player minigames). So a task env keeps its games alive across episodes and tasks
(`GameCache`, ``max_games`` of them) and launches one only when a task needs a map or
resolution none of the live games has; the step multiplier and the episode length are
per call, so tasks that differ only in those share a game.
"""

from __future__ import annotations

import functools
import logging
import os
import pathlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from openended.errors import ConfigError, Error

__all__ = [
    "SC2NotInstalled",
    "SC2GameCrashed",
    "game_errors",
    "import_pysc2",
    "sc2_path",
    "check_sc2_install",
    "GameKey",
    "GameCache",
    "CrashingTestEnv",
    "INSTALL_HINT",
]

INSTALL_HINT = (
    "install the Linux game package (Blizzard's s2client-proto 'Linux Packages', e.g. SC2.4.10.zip, "
    "unzip with the EULA password given there) to ~/StarCraftII or point SC2PATH at it, and unzip "
    "DeepMind's mini_games.zip (pysc2 releases) into $SC2PATH/Maps/ (see docs/sc2.md); "
    "or set env.config.backend: mock to run against pysc2's mock game"
)


class SC2NotInstalled(ConfigError):
    """The game binary or a map file is missing (the message says where it looked and how to install)."""


class SC2GameCrashed(Error, RuntimeError):
    """A game process could not be (re)started: every launch attempt failed."""


@functools.cache
def import_pysc2() -> None:
    """Import pysc2-evolved once, without its import-time change to the process's logging.

    Its ``settings`` module logs a warning on the root logger at import; with no handler
    configured yet, that call runs ``logging.basicConfig`` for the whole process (every
    later warning of every library goes to stderr in its format). A temporary null
    handler absorbs the message instead. Every module of this family calls this before
    importing pysc2.
    """
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    try:
        import pysc2_evolved.settings  # noqa: F401 - imported for its side effect, made harmless here
    finally:
        root.removeHandler(guard)


@functools.cache
def game_errors() -> tuple[type[BaseException], ...]:
    """What a dead or unreachable game process raises through pysc2 (built on first use: pysc2 is lazy)."""
    import_pysc2()
    from pysc2_evolved.lib import protocol, remote_controller, sc_process

    return (
        protocol.ConnectionError,
        protocol.ProtocolError,
        remote_controller.ConnectError,
        remote_controller.RequestError,
        sc_process.SC2LaunchError,
        ConnectionError,  # the builtin: a websocket to a dead process
        BrokenPipeError,
        TimeoutError,
    )


def sc2_path() -> pathlib.Path:
    """Where pysc2 looks for the game on Linux: ``$SC2PATH`` or ``~/StarCraftII``."""
    return pathlib.Path(os.path.expanduser(os.environ.get("SC2PATH", "~/StarCraftII")))


def check_sc2_install(map_paths: Iterable[str]) -> None:
    """Raise `SC2NotInstalled` unless the game and every map file (relative to ``Maps/``) exist."""
    base = sc2_path()
    where = (
        f"SC2PATH={os.environ['SC2PATH']!r}"
        if "SC2PATH" in os.environ
        else "SC2PATH is not set; looked in ~/StarCraftII"
    )
    if not (base / "Versions").is_dir():
        raise SC2NotInstalled(f"StarCraft II is not installed at {base} ({where}): no Versions/ folder; {INSTALL_HINT}")
    missing = sorted({p for p in map_paths if not (base / "Maps" / p).is_file()})
    if missing:
        raise SC2NotInstalled(f"StarCraft II map file(s) missing under {base / 'Maps'}: {missing}; {INSTALL_HINT}")


class GameKey(NamedTuple):
    """What binds a pysc2 ``SC2Env``: a task needing another value needs another game."""

    map_name: str
    screen: int
    minimap: int
    bot_race: str | None
    bot_difficulty: str | None


class GameCache:
    """Live games by `GameKey`, at most ``max_games``; the least recently used is closed first.

    ``launch(key)`` builds one (the caller's factory); `launches`, `closed` count for stats.
    """

    def __init__(self, launch: Callable[[GameKey], Any], max_games: int) -> None:
        if max_games < 1:
            raise ConfigError(f"env.config.max_games: must be >= 1, got {max_games}")
        self._launch = launch
        self.max_games = max_games
        self._games: OrderedDict[GameKey, Any] = OrderedDict()
        self.launches = 0

    def get(self, key: GameKey) -> Any:
        """The live game for ``key``, launching it (and closing the oldest if full)."""
        game = self._games.get(key)
        if game is not None:
            self._games.move_to_end(key)
            return game
        while len(self._games) >= self.max_games:
            _, old = self._games.popitem(last=False)
            _close_quietly(old)
        game = self._launch(key)
        self.launches += 1
        self._games[key] = game
        return game

    def discard(self, key: GameKey) -> None:
        """Forget (and close, best effort) the game of ``key``: it died."""
        game = self._games.pop(key, None)
        if game is not None:
            _close_quietly(game)

    def __len__(self) -> int:
        return len(self._games)

    def close(self) -> None:
        """Close every live game (their processes exit)."""
        while self._games:
            _, game = self._games.popitem()
            _close_quietly(game)


def _close_quietly(game: Any) -> None:
    try:
        game.close()
    except Exception:  # noqa: BLE001 - a dead game's close may fail in any way; the process is gone either way
        pass


@functools.cache
def _crashing_test_env_class() -> type:
    import_pysc2()
    from pysc2_evolved.env import mock_sc2_env
    from pysc2_evolved.lib import protocol

    class _CrashingTestEnv(mock_sc2_env.SC2TestEnv):
        """pysc2's ``SC2TestEnv`` whose game "process" dies after ``crash_after_steps`` steps."""

        def __init__(self, *, crash_after_steps: int | None = None, episode_length: int = 10, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.episode_length = episode_length
            self._crash_after = crash_after_steps
            self._steps = 0
            self._dead = False
            self._resetting = False

        def _tick(self) -> None:
            if self._dead:
                raise protocol.ConnectionError("Connection already closed. SC2 probably crashed (mock).")
            if self._crash_after is not None and self._steps >= self._crash_after:
                self._dead = True
                raise protocol.ConnectionError("Websocket timed out: the SC2 process died (injected fault).")
            self._steps += 1

        def reset(self) -> Any:
            self._tick()
            self._resetting = True  # pysc2's mock resets through step(): count the call once
            try:
                return super().reset()
            finally:
                self._resetting = False

        def step(self, actions: Any, step_mul: Any = None) -> Any:
            if not self._resetting:
                self._tick()
            return super().step(actions, step_mul)

    return _CrashingTestEnv


def CrashingTestEnv(**kwargs: Any) -> Any:
    """A pysc2 ``SC2TestEnv`` (canned observations, same specs) whose game dies after ``crash_after_steps`` calls.

    ``crash_after_steps=None`` never crashes; ``episode_length`` sets the mock's episode
    length in agent steps (pysc2's default is 10).
    """
    return _crashing_test_env_class()(**kwargs)
