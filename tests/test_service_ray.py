"""The teacher service as a Ray actor with real `TeacherClient`s (a local Ray, no mocks)."""

from __future__ import annotations

import shutil
import tempfile
import time
import urllib.request
from collections import Counter

import pytest

ray = pytest.importorskip("ray")

from openended.errors import ServiceError  # noqa: E402
from openended.runtime.client import TeacherClient  # noqa: E402
from openended.runtime.service import get_service, start_service  # noqa: E402
from openended.tasks import Box, Discrete, Outcome, TextSpace  # noqa: E402

pytestmark = pytest.mark.ray
NS = "openended_test_service"
BOX = Box([0.0, 0.0], [1.0, 1.0])


@pytest.fixture(scope="module")
def ray_local():
    tmp = tempfile.mkdtemp(prefix="ray_oe_", dir="/tmp")  # short: Ray's socket paths have a length cap
    ctx = ray.init(num_cpus=2, include_dashboard=False, _temp_dir=tmp, namespace=NS, log_to_driver=False)
    try:
        yield ctx
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def service(ray_local, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    svc = start_service(
        "svc_main", NS, event_log=str(run / "events.jsonl"), checkpoint_dir=str(run / "ckpt"), metrics_interval_s=0.0
    )
    ray.get(svc.add_curriculum.remote("walk", "random", BOX.to_dict(), {"seed": 0}, None, "separate"))
    yield svc
    ray.get(svc.close.remote())
    ray.kill(svc)


def _counters(svc, curriculum):
    return ray.get(svc.snapshot.remote())["curricula"][curriculum]["counters"]


def test_buffer_refills_without_blocking_after_the_first_fill(service):
    client = TeacherClient(service, "walk", "stall_probe", buffer_size=64, low_watermark=32, flush_every=8)
    seen = []
    for _ in range(160):
        task = client.next_task()
        seen.append(task)
        time.sleep(0.002)  # an "episode": a refill (one round trip) has 32 episodes to land
    s = client.stats()
    assert s["first_fill_s"] is not None and s["refills"] >= 4
    assert s["stalls"] == 0, s
    assert len({t.id for t in seen}) == 160 and all(BOX.contains(t) for t in seen)
    client.close()


def test_outbox_flushes_in_batches_and_every_outcome_arrives_once(service):
    client = TeacherClient(
        service, "walk", "flusher", buffer_size=16, low_watermark=4, flush_every=32, flush_interval_s=3600
    )
    before = _counters(service, "walk")
    tasks = [client.next_task() for _ in range(100)]
    for t in tasks:
        client.report(Outcome(t.id, 1.0, success=True, length=5))
    s = client.stats()
    assert s["flushes"] == 3 and s["outbox"] == 4 and s["outcomes_sent"] == 96
    client.flush(wait=True)
    s = client.stats()
    assert s["outcomes_acked"] == 100 == s["outcomes_accepted"] and s["in_flight_reports"] == 0
    after = _counters(service, "walk")
    assert after["outcomes_accepted"] - before["outcomes_accepted"] == 100
    snap = ray.get(service.snapshot.remote())["curricula"]["walk"]["students"]["flusher"]
    assert snap["outcomes"] == 100 and snap["unknown_task_outcomes"] == 0
    client.close()


def test_wire_methods_are_the_plain_ones_in_bytes(service):
    """``sample_columns_wire`` / ``report_wire`` (what clients call) match the plain methods."""
    import pickle

    from openended.runtime.codec import decode_tasks, encode_outcomes

    ray.get(service.add_curriculum.remote("wire", "random", BOX.to_dict(), {"seed": 7}, None, "separate"))
    ray.get(service.add_curriculum.remote("plain", "random", BOX.to_dict(), {"seed": 7}, None, "separate"))
    reply = ray.get(service.sample_columns_wire.remote(pickle.dumps(("wire", "s", 5, None, False))))
    wire = decode_tasks(pickle.loads(reply))
    assert wire == decode_tasks(ray.get(service.sample_columns.remote("plain", "s", 5)))  # same seed, same draws
    outcomes = encode_outcomes([Outcome(t.id, 1.0, student_id="s", episode_id=f"{i:016x}") for i, t in enumerate(wire)])
    assert ray.get(service.report_wire.remote(pickle.dumps(("wire", outcomes)))) == 5
    assert ray.get(service.report_wire.remote(pickle.dumps(("wire", outcomes)))) == 0  # resent: dropped
    assert _counters(service, "wire")["outcomes_accepted"] == 5


def test_two_students_get_separate_state(service):
    alice = TeacherClient(service, "walk", "alice", buffer_size=8, low_watermark=2)
    bob = TeacherClient("svc_main", "walk", "bob", buffer_size=8, low_watermark=2, namespace=NS)
    a = [alice.next_task() for _ in range(12)]
    b = [bob.next_task() for _ in range(7)]
    assert {t.id for t in a}.isdisjoint({t.id for t in b})  # independent streams
    for t in a:
        alice.report(Outcome(t.id, 1.0))
    for t in b:
        bob.report(Outcome(t.id, 0.0))
    alice.close()
    bob.close()
    students = ray.get(service.snapshot.remote())["curricula"]["walk"]["students"]
    assert students["alice"]["outcomes"] == 12 and students["bob"]["outcomes"] == 7
    assert students["alice"]["sampled"] >= 12 and students["bob"]["sampled"] >= 7


def test_named_service_is_found_and_reused(service):
    assert get_service("svc_main", NS)._actor_id == service._actor_id
    again = start_service("svc_main", NS)  # get_if_exists: same actor, kwargs ignored
    assert again._actor_id == service._actor_id
    assert "walk" in ray.get(again.curricula.remote())
    with pytest.raises(ServiceError, match=r"^no teacher service named 'nope' in namespace"):
        get_service("nope", NS)


def test_a_new_service_loads_the_teacher_kernels_before_any_call_needs_them(ray_local):
    """Not on the first eviction (32,768 tasks in): that call stalled ~0.6 s."""

    def _kernels_loaded(actor) -> bool:  # nested: Ray ships it by value (this module is not importable there)
        import sys

        kernels = sys.modules.get("openended.teachers.id_table_kernels")
        return kernels is not None and all(k.signatures for k in (kernels.insert, kernels.lookup, kernels.remove_batch))

    svc = start_service("svc_warm", NS, metrics=False)
    try:
        deadline = time.monotonic() + 60.0
        while not ray.get(svc.__ray_call__.remote(_kernels_loaded)):
            assert time.monotonic() < deadline, "the service never loaded the issued-task table's kernels"
            time.sleep(0.2)
        assert ray.get(svc.curricula.remote()) == []  # loaded with no curriculum and no call
    finally:
        ray.kill(svc)


def test_text_curriculum_round_trips_unicode_through_ray(service):
    texts = ["climb the 🏔", "собрать алмазы", "e\u0301 combining", "tab\tnew\nline", "建造房子"]
    ray.get(service.add_curriculum.remote("talk", "random", TextSpace(texts).to_dict(), {"seed": 1}, None, "shared"))
    levels = Discrete(["lvl-a", 3, "lvl-ü"])
    ray.get(service.add_curriculum.remote("levels", "random", levels.to_dict()))
    talk = TeacherClient(service, "talk", buffer_size=16, low_watermark=4)
    got = [talk.next_task() for _ in range(80)]
    assert {t.text for t in got} == set(texts)
    lv = TeacherClient(service, "levels", buffer_size=16, low_watermark=4)
    assert {lv.next_task().params[0] for _ in range(60)} == {"lvl-a", 3, "lvl-ü"}
    talk.close()
    lv.close()


def _wait_until_restarted(svc, timeout_s: float = 120.0) -> None:
    """Until the killed actor's new process answers (``ray.kill`` returns before the old one is gone)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if ray.get(svc.snapshot.remote(), timeout=10)["counters"]["replayed_events"] > 0:
                return
        except (ray.exceptions.ActorUnavailableError, ray.exceptions.GetTimeoutError):
            pass
        assert time.monotonic() < deadline, "the killed service did not come back"
        time.sleep(0.2)


@pytest.mark.parametrize("wire", [False, True], ids=["ray_calls", "socket"])
def test_actor_crash_and_restart_loses_and_duplicates_nothing(ray_local, tmp_path, wire):
    """Kill the service process mid-run: it restarts from checkpoint + log, the client
    resends unacknowledged batches, the service drops the ones it already had.

    Over the socket the client's connection dies with the process; ``ray.kill`` returns
    before the process is gone, so the test waits for the restart, and the client's next
    calls find the socket closed, resend and connect to the new process."""
    svc = start_service(
        f"svc_crash_{wire}",
        NS,
        event_log=str(tmp_path / "events.jsonl"),
        checkpoint_dir=str(tmp_path / "ckpt"),
        resume=True,
        max_restarts=1,
        metrics=False,
    )
    ray.get(svc.add_curriculum.remote("walk", "random", BOX.to_dict()))
    client = TeacherClient(
        svc, "walk", "alice", buffer_size=64, low_watermark=16, flush_every=10, max_in_flight=8, wire=wire
    )
    sent = []
    for i in range(300):
        t = client.next_task()
        client.report(Outcome(t.id, float(i)))
        sent.append(t.id)
        if i == 120:
            client.flush(wait=True)
            ray.get(svc.checkpoint.remote())
        if i == 200:
            assert client.stats()["transport"] == ("wire" if wire else "ray")
            ray.kill(svc, no_restart=False)  # kill -9 of the actor process; Ray restarts it
            if wire:
                _wait_until_restarted(svc)
    client.close()
    if wire:
        assert client.stats()["wire_connects"] == 2 and client.stats()["resends"] >= 1, client.stats()
    snap = ray.get(svc.snapshot.remote())
    students = snap["curricula"]["walk"]["students"]["alice"]
    assert snap["counters"]["replayed_events"] > 0  # the restarted actor restored itself
    assert snap["counters"]["replay_mismatches"] == 0
    assert students["outcomes"] == 300, (students, client.stats())
    assert students["unknown_task_outcomes"] == 0
    assert client.stats()["outcomes_acked"] >= 300
    # Replay re-ran the logged sample calls, so the teacher did not hand out again a
    # task the client already had.
    assert max(Counter(sent).values()) == 1
    ray.kill(svc, no_restart=True)


def test_metrics_reach_the_ray_metrics_endpoint(ray_local, service):
    """The service's counters appear on the node's Prometheus endpoint (tagged by curriculum)."""
    snap = ray.get(service.snapshot.remote())
    assert snap["metrics"]["pushes"] >= 1 and snap["metrics"]["enabled"]
    port = ray_local.address_info["metrics_export_port"]
    wanted = "ray_openended_service_tasks_total{"
    deadline = time.monotonic() + 30
    found = []
    while not found and time.monotonic() < deadline:
        ray.get(service.snapshot.remote())  # pushes again
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        found = [ln for ln in text.splitlines() if ln.startswith(wanted) and 'curriculum="walk"' in ln]
        if not found:
            time.sleep(1)
    assert found, "openended_service_tasks never reached the metrics endpoint"
    assert any(float(ln.rsplit(" ", 1)[1]) > 0 for ln in found)


def test_exchange_reports_before_it_samples_and_hands_back_a_bad_reports_error(ray_local, tmp_path):
    """``exchange_wire``: one call, the report applied (and logged) before the draw; a
    refused report comes back as its exception beside the tasks, which still arrive."""
    import json
    import pickle

    import numpy as np

    from openended.runtime.codec import CodecError, decode_tasks, encode_outcomes

    svc = start_service("svc_exchange", NS, event_log=str(tmp_path / "events.jsonl"), metrics=False)
    ray.get(svc.add_curriculum.remote("walk", "random", BOX.to_dict(), {"seed": 3}))
    first = decode_tasks(
        pickle.loads(ray.get(svc.sample_columns_wire.remote(pickle.dumps(("walk", "s", 4, None, False)))))
    )
    batch = encode_outcomes([Outcome(t.id, 0.5, student_id="s", episode_id=f"{i:016x}") for i, t in enumerate(first)])
    exchange = svc.exchange_wire.options(num_returns=2)
    accepted_ref, tasks_ref = exchange.remote(pickle.dumps(("walk", batch, "s", 6, None, False)))
    assert ray.get(accepted_ref) == 4
    fresh = decode_tasks(pickle.loads(ray.get(tasks_ref)))
    assert len(fresh) == 6 and {t.id for t in fresh}.isdisjoint({t.id for t in first})
    events = [json.loads(line)["ev"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert events[-2:] == ["outcome", "sampled"]  # the teacher saw the outcomes, then drew

    bad = encode_outcomes(
        [Outcome(t.id, 0.5, student_id="s", episode_id=f"{i + 10:016x}") for i, t in enumerate(fresh)]
    )
    bad.returns[2] = np.nan  # batches skip Outcome's checks: the service refuses it
    accepted_ref, tasks_ref = exchange.remote(pickle.dumps(("walk", bad, "s", 3, None, False)))
    error = ray.get(accepted_ref)
    assert isinstance(error, CodecError) and "returns[2]" in str(error)
    assert len(decode_tasks(pickle.loads(ray.get(tasks_ref)))) == 3
    assert _counters(svc, "walk")["outcomes_accepted"] == 4  # nothing of the bad batch was applied
    ray.get(svc.close.remote())
    ray.kill(svc)


def test_a_client_sends_reports_with_its_refills_and_loses_nothing(service):
    """Defaults (64 tasks, watermark 16, flush every 32): about one call per 32 episodes,
    every outcome accepted once, every task distinct."""
    client = TeacherClient(service, "walk", "exchanger")
    before = _counters(service, "walk")
    ids = []
    for i in range(640):
        task = client.next_task()
        ids.append(task.id)
        time.sleep(0.001)  # an "episode": a reply has 16 of them to land
        client.report(Outcome(task.id, float(i % 7)))
    client.close()
    s = client.stats()
    calls = s["refills"] + s["flushes"] - s["exchanges"]  # an exchange is both a refill and a flush
    assert s["exchanges"] >= 15, s
    assert calls <= 640 // 32 + 3, s  # separate calls: 640/48 refills + 640/32 flushes, ~33
    assert s["outcomes_accepted"] == 640 == s["outcomes_acked"]
    assert _counters(service, "walk")["outcomes_accepted"] - before["outcomes_accepted"] == 640
    assert len(set(ids)) == 640
    students = ray.get(service.snapshot.remote())["curricula"]["walk"]["students"]["exchanger"]
    assert students["outcomes"] == 640 and students["unknown_task_outcomes"] == 0


def test_a_client_raises_a_refused_report_from_an_exchange_once_it_is_collected(service):
    from openended.runtime.codec import CodecError

    client = TeacherClient(service, "walk", "refused", buffer_size=8, low_watermark=2, flush_every=100)
    tasks = [client.next_task() for _ in range(5)]  # 3 left: above the watermark, no refill yet
    for t in tasks:
        client.report(Outcome(t.id, 1.0))
    client._outbox[0] = Outcome(tasks[0].id, 1.0)  # a valid Outcome, then made bad behind its checks:
    object.__setattr__(client._outbox[0], "episode_return", float("nan"))
    client.next_task()  # the refill at the watermark carries the outbox
    assert client.stats()["exchanges"] == 1
    with pytest.raises(CodecError, match=r"returns\[0\]"):
        client.flush(wait=True)


def test_a_client_of_a_service_without_exchange_makes_separate_calls(ray_local):
    from openended.runtime.service import TeacherServiceActor

    class OlderService(TeacherServiceActor):
        exchange_wire = None  # as a service from before exchange_wire (and so before its socket)
        wire_address = None

    svc = ray.remote(OlderService).options(num_cpus=0).remote(metrics=False)
    ray.get(svc.add_curriculum.remote("walk", "random", BOX.to_dict()))
    client = TeacherClient(svc, "walk", buffer_size=16, low_watermark=4, flush_every=8)
    for _ in range(100):
        client.report(Outcome(client.next_task().id, 1.0))
    client.close()
    s = client.stats()
    assert s["exchanges"] == 0 and s["outcomes_accepted"] == 100 and s["refills"] >= 8
    ray.kill(svc)


def test_a_seeded_client_loop_makes_the_same_calls_however_fast_its_episodes_run(service):
    """Which calls carry what is decided by counts, never by whether a reply has landed: an
    adaptive teacher (ALP-GMM refitting every 20 outcomes) hands out the same tasks."""
    runs = {}
    for name, pause in (("instant", 0.0), ("slow", 0.002)):
        curriculum = f"seeded_{name}"
        config = {"seed": 5, "fit_rate": 20, "refit_executor": "inline"}
        ray.get(service.add_curriculum.remote(curriculum, "alp_gmm", BOX.to_dict(), config, None, "separate"))
        client = TeacherClient(service, curriculum, "s", buffer_size=32, low_watermark=8, flush_every=16)
        ids = []
        for i in range(240):
            task = client.next_task()
            ids.append(task.id)
            time.sleep(pause)
            client.report(Outcome(task.id, float(task.params[0] > 0.5), episode_id=f"{i:016x}"))
        client.close()
        stats = client.stats()
        runs[name] = (ids, stats["refills"], stats["flushes"], stats["exchanges"])
    assert runs["instant"] == runs["slow"]
    assert runs["slow"][3] > 0


def test_a_client_on_the_services_node_makes_its_hot_calls_by_socket_and_loses_nothing(service):
    """Same outcomes accepted, same counts, by socket (the default) and by Ray calls."""
    accepted = {}
    for wire in (True, False):
        before = _counters(service, "walk")
        client = TeacherClient(service, "walk", f"socket_{wire}", flush_every=16, wire=wire)
        tasks = []
        for i in range(500):
            tasks.append(client.next_task())
            client.report(Outcome(tasks[-1].id, float(i % 7), success=i % 2 == 0))
        client.flush(wait=True)
        s = client.stats()
        assert s["transport"] == ("wire" if wire else "ray"), s
        assert s["wire_connects"] == int(wire) and s["wire_note"] == ("" if wire else "not tried yet")
        assert s["outcomes_acked"] == 500 == s["outcomes_accepted"] and s["exchanges"] > 0
        after = _counters(service, "walk")
        accepted[wire] = after["outcomes_accepted"] - before["outcomes_accepted"]
        assert len({t.id for t in tasks}) == 500 and all(BOX.contains(t) for t in tasks)
        client.close()
    assert accepted == {True: 500, False: 500}


def test_a_client_goes_by_ray_calls_where_the_socket_is_off_or_on_another_node(ray_local):
    from openended.runtime.client import _connect_wire

    svc = start_service("svc_no_socket", NS, metrics=False, wire_host=None)
    ray.get(svc.add_curriculum.remote("walk", "random", BOX.to_dict()))
    client = TeacherClient(svc, "walk", "nosock")
    task = client.next_task()
    client.report(Outcome(task.id, 1.0))
    client.flush(wait=True)
    s = client.stats()
    assert s["transport"] == "ray" and s["wire_connects"] == 0 and "off" in s["wire_note"]
    assert s["outcomes_accepted"] == 1
    client.close()
    ray.kill(svc)

    class ElsewhereService:
        """What `wire_address` says on a service whose loopback socket is on another node."""

        class wire_address:  # stands in for the actor method
            @staticmethod
            def remote():
                return ray.put({"host": "127.0.0.1", "port": 1, "secret": b"x", "node_id": "another-node"})

    chan, why = _connect_wire(ElsewhereService())
    assert chan is None and "another node" in why
    assert _connect_wire(object()) == (None, "the service has no socket")


def test_a_socket_on_every_interface_is_reached_by_the_nodes_address(ray_local):
    """``service_socket: cluster``: the service advertises its node's IP, and a client gets in with the secret."""
    svc = start_service("svc_cluster_socket", NS, metrics=False, wire_host="0.0.0.0")
    ray.get(svc.add_curriculum.remote("walk", "random", BOX.to_dict()))
    info = ray.get(svc.wire_address.remote())
    assert info["host"] == ray.util.get_node_ip_address() and len(info["secret"]) == 32
    client = TeacherClient(svc, "walk", "remote_host")
    for i in range(40):
        client.report(Outcome(client.next_task().id, float(i)))
    client.flush(wait=True)
    s = client.stats()
    assert s["transport"] == "wire" and s["wire_connects"] == 1 and s["outcomes_accepted"] == 40
    client.close()
    ray.get(svc.close.remote())
    ray.kill(svc)
