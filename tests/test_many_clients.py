"""benchmarks/many_clients.py: many clients against one service, by socket and by Ray calls (small)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import load_script

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "many_clients.py"


def test_every_scheduled_episode_reaches_the_service_once_by_either_transport(tmp_path):
    bench = load_script(BENCH, "many_clients_bench", register=False)  # Ray ships its host actor by value
    out = tmp_path / "many.json"
    res = bench.main(
        ["--clients", "24", "--hosts", "2", "--loads", "stump_tracks", "--seconds", "1.5", "--json", str(out)]
    )
    assert out.exists()
    by = {r["transport"]: r for r in res["loads"]}
    assert set(by) == {"socket", "ray calls"}
    assert by["socket"]["clients_by_transport"] == {"wire": 24}
    assert by["ray calls"]["clients_by_transport"] == {"ray": 24}
    for r in by.values():
        assert r["episodes"] == round(8.0 * 24 * 1.5)  # every scheduled episode was played ...
        assert r["outcomes_accepted"] == r["episodes"]  # ... and its outcome accepted once
        assert 0 < r["keep_up"] <= 1.05 and r["service_cpu_ms_per_1k_episodes"] > 0
    sock = by["socket"]
    assert sock["socket_requests"] > 0 and 0 <= sock["socket_requests_in_waves"] <= sock["socket_requests"]
    assert by["ray calls"]["socket_requests"] == 0  # Ray calls never touch the socket
