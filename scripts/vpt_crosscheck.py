"""Cross-check `openended.priors.vpt` against OpenAI's reference VPT code, given a checkout of it.

Builds OpenAI's ``MinecraftAgentPolicy`` (``lib/policy.py`` of github.com/openai/Video-Pre-Training)
and the project's `VPTPolicy` from the same ``policy_kwargs``, compares their state-dict names
and shapes, copies the reference's random weights into the project's network and compares
action log-probabilities and values over several chunks with the recurrent state carried
and episode starts in between. The reference imports ``gym3`` and ``minerl`` only for types
and item tables the networks do not use; they are stubbed when absent.

Usage::

    python scripts/vpt_crosscheck.py --reference PATH/TO/Video-Pre-Training [--with-1x-forward]

Exit status 0 when names, shapes and outputs agree (max abs difference <= 1e-5).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import types
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))


def _stub_reference_imports() -> Any:
    """Minimal ``gym3.types`` (the action-space types the heads are built from) and an empty ``minerl``."""
    for name in ("minerl", "minerl.herobraine", "minerl.herobraine.hero", "minerl.herobraine.hero.mc"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    try:
        import gym3.types as real  # present: use it

        return real
    except ImportError:
        pass
    g3t = types.ModuleType("gym3.types")

    class ValType:
        pass

    class Discrete:
        def __init__(self, n: int) -> None:
            self.n = n

    class Real:
        pass

    class TensorType(ValType):
        def __init__(self, shape: tuple[int, ...], eltype: Any) -> None:
            self.shape, self.eltype = tuple(shape), eltype

        @property
        def size(self) -> int:
            return math.prod(self.shape)

    class DictType(ValType, dict):  # type: ignore[type-arg]  # a stub of gym3's dict space
        def __init__(self, **kw: Any) -> None:
            dict.__init__(self, **kw)

    for cls in (ValType, Discrete, Real, TensorType, DictType):
        setattr(g3t, cls.__name__, cls)
    gym3 = types.ModuleType("gym3")
    gym3.types = g3t  # type: ignore[attr-defined]
    sys.modules.update({"gym3": gym3, "gym3.types": g3t})
    return g3t


def compare(reference: Any, g3t: Any, kwargs: dict[str, Any], forward: bool) -> float:
    """Names/shapes check (raises) and, with ``forward``, the max abs output difference."""
    import torch

    from openended.priors.vpt import VPTConfig, VPTPolicy, load_weights

    space = g3t.DictType(
        camera=g3t.TensorType(shape=(1,), eltype=g3t.Discrete(121)),
        buttons=g3t.TensorType(shape=(1,), eltype=g3t.Discrete(8641)),
    )
    head = {"temperature": 2.0}
    device = None if forward else torch.device("meta")
    with torch.device(device or "cpu"):
        ref = reference(space, copy.deepcopy(kwargs), dict(head))
        ours = VPTPolicy(VPTConfig.from_kwargs(kwargs, head))
    a = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    if a != b:
        raise SystemExit(
            f"state dicts differ: only reference {sorted(set(a) - set(b))}, only ours {sorted(set(b) - set(a))}"
        )
    print(f"  {len(a)} tensors, {sum(math.prod(s) for s in a.values()):,} numbers: names and shapes agree")
    if not forward:
        return 0.0
    with torch.no_grad():  # non-trivial value normaliser statistics
        ref.value_head.normalizer.running_mean.fill_(0.3)
        ref.value_head.normalizer.running_mean_sq.fill_(2.0)
        ref.value_head.normalizer.debiasing_term.fill_(0.5)
    load_weights(ours, ref.state_dict())
    ref.eval()
    ours.eval()
    h, w, _ = kwargs["img_shape"]
    s_ref, s_ours = ref.initial_state(2), ours.initial_state(2)
    gen = torch.Generator().manual_seed(1)
    worst = 0.0
    for t, starts in [
        (3, [True, True]),
        (2, [False, False]),
        (4, [False, True]),
        (1, [False, False]),
        (5, [True, False]),
    ]:
        img = torch.randint(0, 256, (2, t, h, w, 3), generator=gen, dtype=torch.uint8)
        first = torch.zeros(2, t, dtype=torch.bool)
        first[:, 0] = torch.tensor(starts)
        with torch.no_grad():
            (pd, vpred, _), s_ref = ref(obs={"img": img}, first=first, state_in=s_ref)
            out, s_ours = ours(img, first, s_ours)
        for name in ("buttons", "camera"):
            worst = max(worst, (pd[name][:, :, 0] - out[name]).abs().max().item())
        worst = max(worst, (ref.value_head.denormalize(vpred)[..., 0] - ours.value(out["value"])).abs().max().item())
    print(f"  outputs over 5 chunks (state carried, episode starts): max abs difference {worst:.2e}")
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", required=True, help="a checkout of github.com/openai/Video-Pre-Training")
    ap.add_argument("--with-1x-forward", action="store_true", help="also compare 1x outputs (~300 MB per network)")
    args = ap.parse_args(argv)
    import torch

    from openended.priors.vpt import VPT_1X_KWARGS, VPTConfig

    torch.set_num_threads(1)
    if not hasattr(torch, "has_cuda"):
        torch.has_cuda = False  # type: ignore[attr-defined]  # the reference reads it at import
    g3t = _stub_reference_imports()
    sys.path.insert(0, os.path.abspath(args.reference))
    from lib.policy import MinecraftAgentPolicy  # the reference's own package name

    small = VPTConfig.small().to_kwargs()[0]
    worst = 0.0
    for name, kw, fwd in [
        ("small", small, True),
        ("small, pre-LN, memory 2", dict(small, use_pre_lstm_ln=True, timesteps=3, attention_memory_size=5), True),
        ("1x", VPT_1X_KWARGS, args.with_1x_forward),
    ]:
        print(name)
        worst = max(worst, compare(MinecraftAgentPolicy, g3t, kw, fwd))
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
