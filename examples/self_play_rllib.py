"""Self-play with RLlib multi-agent PPO: the opponent pool is the curriculum's task space.

Each episode the self-play teacher (PFSP by default) in the teacher service draws an
opponent slot; the env (`self_play` family, rock-paper-scissors by default) plays the
learner's side with RLlib's policy and the other side with the frozen learner snapshot
saved under that slot; every ``--add-every`` episodes the teacher adds the next slot to
its pool, which holds the learner as of the last iteration before it joined. Each
iteration prints the pool and the learner's win rate against every member.

    python examples/self_play_rllib.py                        # 10 iterations, PFSP
    python examples/self_play_rllib.py --preset fsp --iterations 30 --runners 2

See docs/teachers.md ("Self-play in RLlib") for how the pieces fit.
"""

from __future__ import annotations

import argparse
import tempfile

import ray

from openended.envs import make_env
from openended.runtime.rllib import build_algo_config
from openended.runtime.rllib_multiagent import register_curriculum_multiagent_env
from openended.runtime.rllib_self_play import SelfPlaySnapshots, self_play_config
from openended.runtime.service import start_service

SERVICE, CURRICULUM = "self_play_example", "self_play"


def main() -> None:
    """Start Ray and the service, train, print the pool each iteration."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--slots", type=int, default=8, help="opponent slots (the most checkpoints that can join)")
    p.add_argument("--add-every", type=int, default=50, help="episodes between checkpoints joining the pool")
    p.add_argument("--preset", default="pfsp", choices=["pfsp", "fsp", "self_play"])
    p.add_argument("--runners", type=int, default=0, help="RLlib env runners (0: sample in this process)")
    p.add_argument("--dir", default=None, help="where the snapshots go (default: a temp dir)")
    args = p.parse_args()

    directory = args.dir or tempfile.mkdtemp(prefix="self-play-")
    env_config = {
        "slots": args.slots,
        "opponent": "openended.runtime.rllib_self_play:snapshot_opponents",
        "opponent_config": {"directory": directory},
    }
    space = make_env("self_play", slots=args.slots).task_space()
    ray.init(include_dashboard=False)
    svc = start_service(SERVICE, metrics=False)
    teacher = {"add_every": args.add_every, "seed": 0}
    ray.get(svc.add_curriculum.remote(CURRICULUM, "self_play", space.to_dict(), teacher, args.preset))
    env = register_curriculum_multiagent_env(
        "self-play", "self_play", env_config, SERVICE, CURRICULUM, client_options={"buffer_size": 4, "low_watermark": 1}
    )
    ppo = {"train_batch_size_per_learner": 500, "minibatch_size": 100, "model_config": {"fcnet_hiddens": [32]}}
    algo = self_play_config(build_algo_config("ppo", env, ppo, num_env_runners=args.runners, seed=0)).build_algo()
    snaps = SelfPlaySnapshots(directory, space.values, svc, CURRICULUM)
    snaps.start(algo)  # every slot holds the initial learner until it joins
    try:
        for it in range(1, args.iterations + 1):
            algo.train()
            snaps.write(algo)  # the slots not yet in the pool get the current learner
            view = ray.get(svc.views.remote())[CURRICULUM]["default"]
            pool = ", ".join(f"{r['task']}: win {r['win_rate']:.2f} p {r['p']:.2f}" for r in view["rows"])
            print(f"iteration {it}: {pool}")
        print(f"snapshots in {directory}")
    finally:
        algo.stop()
        ray.get(svc.close.remote())
        ray.shutdown()


if __name__ == "__main__":
    main()
