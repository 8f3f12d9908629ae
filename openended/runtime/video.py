"""`openended video RUN_DIR --task ...`: a trained policy on a chosen task, rendered to a GIF.

Why: numbers say how much a policy masters; a video shows how. The policy is the RLModule
of the run's newest checkpoint set (``algo/<student>``), loaded alone (no algorithm, no
Ray); the env is the run's family built with ``render_mode="rgb_array"`` and the same
observation transforms as training and evaluation; actions are deterministic, as in
held-out evaluation.

Contents:
    parse_task   -- ``--task`` text as a task of the family's space.
    write_video  -- load, play one episode, write the frames.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
import yaml

from openended.errors import ConfigError, RunDirError
from openended.tasks import Box, Discrete, Task, TaskSpace, TextSpace

__all__ = ["parse_task", "write_video", "MODULE_PATH"]

#: Where `Algorithm.save_to_path` keeps the (single-agent / shared) policy's RLModule.
MODULE_PATH = ("learner_group", "learner", "rl_module", "default_policy")


def parse_task(space: TaskSpace, text: str) -> Task:
    """``"1.5,3"`` for a Box space, a value for a Discrete one (YAML-typed), the text for a Text one."""
    try:
        if isinstance(space, Box):
            values = [float(x) for x in text.replace(" ", "").split(",") if x]
            if len(values) != space.dim:
                raise ConfigError(
                    f"--task: {space!r} needs {space.dim} comma-separated numbers "
                    f"({', '.join(space.names)}), got {text!r}"
                )
            return space.task(values)
        if isinstance(space, Discrete):
            return space.task(yaml.safe_load(text))
        if isinstance(space, TextSpace):
            return space.task(text)
        raise ConfigError(f"--task: cannot name a task of {space!r} on the command line")
    except ValueError as e:
        raise ConfigError(f"--task: {text!r} is not a task of {space!r}: {e}") from None


def write_video(
    run_dir: str,
    task_text: str,
    out: str | None = None,
    *,
    student: str = "default",
    max_steps: int = 2000,
    every: int = 2,
    fps: float = 25.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Play one deterministic episode of the run's newest policy on ``task_text``; write a GIF.

    Returns the episode's return, length, success, the task and the GIF's path.
    """
    import imageio.v2 as imageio
    from ray.rllib.core.rl_module.rl_module import RLModule

    from openended.envs.registry import make_env
    from openended.runtime.drivers import evaluation_env
    from openended.runtime.evaluate import module_policy
    from openended.runtime.rundir import RunDir

    if out is not None and pathlib.Path(out).suffix.lower() != ".gif":
        raise ConfigError(
            f"--out: {out!r}: only GIF files are written (MP4 would need imageio-ffmpeg); use a .gif path"
        )
    if every < 1 or max_steps < 1:
        raise ConfigError(f"--every and --max-steps: must be >= 1, got {every} and {max_steps}")
    rd = RunDir.open(run_dir)
    exp = rd.load_experiment()
    if exp.algo.name == "none":
        raise ConfigError(f"{rd.path}: algo none has no trained policy to show (the toy learner lives in the env)")
    ckpt = rd.newest_checkpoint()
    member = f"algo/{student}"
    if ckpt is None or not ckpt.has(member):
        raise RunDirError(f"{rd.path}: no checkpoint set with {member!r} yet; a video needs a saved policy")
    module_dir = ckpt.member(member).joinpath(*MODULE_PATH)
    if not module_dir.is_dir():
        raise RunDirError(f"{module_dir}: no RLModule here (a multi-agent run's policy is not supported)")
    try:
        raw = make_env(exp.env.family, **exp.env.config, render_mode="rgb_array")
    except TypeError:
        raise ConfigError(f"env.family {exp.env.family!r}: its envs cannot render frames (no render_mode)") from None
    env = evaluation_env(raw)
    task = parse_task(raw.task_space(), task_text)
    policy = module_policy(RLModule.from_checkpoint(str(module_dir)))
    path = pathlib.Path(out) if out else rd.path / f"video_{task.id}.gif"
    frames: list[Any] = []
    env.set_task(task)
    obs, info = env.reset(seed=seed)
    frames.append(np.asarray(raw.render()))
    total, steps, success = 0.0, 0, None
    space = raw.action_space
    try:
        for steps in range(1, max_steps + 1):
            action = policy(np.asarray(obs)[None])[0]
            if hasattr(space, "low"):
                action = np.clip(action, space.low, space.high)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            if steps % every == 0:
                frames.append(np.asarray(raw.render()))
            if terminated or truncated:
                success = info.get("success")
                break
    finally:
        env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(str(path), frames, duration=1000.0 / fps, loop=0)
    return {
        "path": str(path),
        "task": task.id,
        "params": list(task.params),
        "return": total,
        "length": steps,
        "success": success,
        "frames": len(frames),
    }
