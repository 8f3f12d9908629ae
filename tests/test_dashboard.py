"""The dashboard: aggregates (chunks, tail), pages via the JSON API (Starlette TestClient),
live updates over server-sent events, security (token, traversal, read-only, Host, CSP,
escaping) and the static figures. The real-browser test is tests/test_dashboard_browser.py."""

import json
import os
import pathlib
import re
import shutil

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient

from openended.dashboard.app import TOKEN_COOKIE, create_app
from openended.dashboard.chunks import MAX_CHUNKS, BoxSampling, OutcomeSeries, TableSampling
from openended.dashboard.monitor import RunMonitor
from openended.dashboard.runs import RunsRoot, check_run_id
from openended.dashboard.series import Thinned
from openended.dashboard.server import DashboardServer, is_loopback, resolve_token
from openended.dashboard.synthetic import LiveRun
from openended.dashboard.tail import JsonlTail
from openended.errors import ConfigError, UnknownName
from openended.tasks import Box, TextSpace

XSS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=2">',
    "<b>bold?</b> & <i>markup</i> %{x} $x$",
    "collect wood",
]
BOX_RUN = "stump__stump_tracks__alp_gmm__s0"
TEXT_RUN = "xss__crafter_text__lp__s0"


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    box = LiveRun(
        root / BOX_RUN,
        Box([0, 0], [3, 6], names=["stump_height", "spacing"]),
        teacher="alp_gmm",
        family="stump_tracks",
        students=("alice", "bob"),
        iterations=20,
        batch=32,
        evaluation_every=5,
        teacher_config={"fit_rate": 50, "refit_executor": "inline"},
    )
    box.advance(20)
    box.finish()
    text = LiveRun(
        root / TEXT_RUN, TextSpace(seed_tasks=XSS), teacher="lp", iterations=10, teacher_config={"update_every": 2}
    )
    text.advance(10)
    text.finish()
    return root


@pytest.fixture(scope="module")
def client(runs_root):
    with TestClient(create_app(runs_root, stream_max_s=1.5)) as c:
        yield c


def _files(root):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(pathlib.Path(root).rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------- aggregates
def test_chunks_stay_bounded_and_keep_every_count():
    s = BoxSampling([0, 0, 0], [1, 2, 3], ["a", "b", "c"], cap=16)
    rng = np.random.default_rng(0)
    total = 0
    for i in range(300):
        n = int(rng.integers(1, 40))
        params = rng.random((n, 3)) * [1, 2, 3]
        codes = (rng.random(n) < 0.3).astype(np.uint8)
        s.add_batch((params, codes, ("sampled", "uniform")), n, float(i), float(i))
        total += n
    assert len(s.chunks()) <= MAX_CHUNKS and s.total == total
    assert s.histogram(0, 2).sum() == total and s.histogram(2, 0).shape == (s.bins, s.bins)
    assert sum(s.origins().values()) == total
    assert s.marginal_over_time(1).sum() == total
    cs = s.chunks()
    assert [c.start for c in cs] == [sum(c.n for c in cs[:i]) for i in range(len(cs))]
    last = s.histogram(0, 1, len(cs) - 1, len(cs) - 1).sum()
    assert last == cs[-1].n
    assert 0 < len(s.points()) <= len(cs) * 260
    with pytest.raises(ValueError):
        s.histogram(1, 1)


def test_table_and_outcome_series():
    t = TableSampling(cap=8)
    ids = np.array([1, 2, 2, 3, 3, 3], dtype=np.uint64)
    for _ in range(10):
        t.add_batch((ids, {3: "three <b>"}), len(ids), 0.0, 1.0)
    assert t.counts().most_common(1) == [(3, 30)] and t.label(3) == "three <b>" and t.label(1) == f"{1:016x}"
    o = OutcomeSeries(cap=4)
    for k in range(50):
        r = np.full(4, float(k))
        o.add_batch((r, np.array([1, 0, -1, -1], dtype=np.int8), np.array([0, 1, 1, 0]), ("a", "b")), 4, float(k), k)
    rows = o.series()["rows"]
    assert rows[-1]["outcomes"] == 200 and o.total == 200
    assert all(r["success_rate"] == pytest.approx(0.5) for r in rows)
    assert set(o.series()["students"]) == {"a", "b"}


def test_thinned_keeps_the_newest_and_stays_bounded():
    th: Thinned[int] = Thinned(10)
    for i in range(1000):
        th.add(i)
    items = th.items()
    assert len(items) <= 11 and items[0] == 0 and items[-1] == 999


def test_tail_waits_for_a_torn_line_and_restarts_on_rewrite(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": 2')
    tail = JsonlTail(path)
    reset, events = tail.poll()
    assert not reset and [e["a"] for e in events] == [1]
    with open(path, "a") as f:
        f.write('}\nnot json\n[1]\n{"a": 3}\n')
    assert [e["a"] for e in tail.poll()[1]] == [2, 3] and tail.bad_lines == 2
    tmp = tmp_path / "y"
    tmp.write_text('{"a": 9}\n')
    os.replace(tmp, path)  # rewritten atomically (a resumed run's metrics.jsonl)
    reset, events = tail.poll()
    assert reset and [e["a"] for e in events] == [9]


def test_monitor_follows_a_live_run_incrementally(tmp_path):
    run = LiveRun(tmp_path / "r", Box([0, 0], [1, 1]), teacher="riac", iterations=10, batch=16)
    run.advance(2)
    mon = RunMonitor(run.path)
    assert mon.refresh() and not mon.refresh()  # nothing new: no work
    before = mon.sampling("main")["total"]
    run.advance(3)
    assert mon.refresh()
    assert mon.sampling("main")["total"] == before + 3 * 16
    assert mon.summary()["iteration"] == 5 and mon.summary()["state"] == "running"
    with open(run.rd.events_path, "a") as f:
        f.write('{"ev": "outcome", "cur": "main", "outcomes": {"retu')  # a writer mid-line
    mon.refresh()
    assert mon.summary()["skipped_lines"] == 0
    run.finish()


def test_monitor_leaves_out_what_a_resume_superseded(tmp_path):
    run = LiveRun(tmp_path / "r", Box([0, 0], [1, 1]), teacher="random", iterations=10, batch=16)
    run.advance(2)
    set_offset = run.rd.events_path.stat().st_size  # the checkpoint set a resume goes back to
    run.advance(3)
    mon = RunMonitor(run.path)
    mon.refresh()
    killed = mon.summary()["curricula"][0]
    assert killed["tasks"] == 5 * 16 and killed["outcomes"] == 5 * 16
    end = run.rd.events_path.stat().st_size
    with open(run.rd.events_path, "a") as f:  # what `run --resume` appends, then it goes on
        f.write(json.dumps({"ev": "rewind", "from": set_offset, "to": end, "iteration": 2}) + "\n")
    run.advance(1)
    assert mon.refresh()
    resumed = mon.summary()["curricula"][0]
    assert resumed["tasks"] == 3 * 16 and resumed["outcomes"] == 3 * 16
    fresh = RunMonitor(run.path)  # a dashboard opened after the resume sees the same
    fresh.refresh()
    assert fresh.summary()["curricula"][0] == resumed
    run.finish()


# ---------------------------------------------------------------------- pages
def test_runs_table(client):
    data = client.get("/api/runs").json()
    rows = {r["id"]: r for r in data["runs"]}
    assert set(rows) == {BOX_RUN, TEXT_RUN}
    r = rows[BOX_RUN]
    assert (r["state"], r["teacher"], r["env"], r["iteration"], r["episodes"]) == (
        "finished",
        "alp_gmm",
        "stump_tracks",
        20,
        20 * 32 * 2,
    )
    assert r["wall_s"] > 0 and r["last_update"] > 0
    assert client.get("/api/latest").json()["id"] in rows


def test_run_pages(client):
    s = client.get("/api/summary", params={"run": BOX_RUN}).json()
    assert s["students"] == ["alice", "bob"] and s["curricula"][0]["kind"] == "box"
    assert s["curricula"][0]["tasks"] == s["curricula"][0]["outcomes"] == 1280
    sp = client.get("/api/sampling", params={"run": BOX_RUN, "x": 1, "y": 0}).json()
    assert sp["kind"] == "box" and sp["dims"] == ["stump_height", "spacing"] and (sp["x"], sp["y"]) == (1, 0)
    assert np.asarray(sp["hist"]).sum() == sp["total"] == 1280
    first = client.get("/api/sampling", params={"run": BOX_RUN, "lo": 0, "hi": 0}).json()
    assert first["window_total"] == sp["chunks"][0]["n"]
    te = client.get("/api/teacher", params={"run": BOX_RUN, "student": "bob"}).json()
    assert te["student"] == "bob" and te["view"]["kind"] == "gmm" and te["count"] == len(te["iterations"]) == 20
    old = client.get("/api/teacher", params={"run": BOX_RUN, "index": 0}).json()
    assert old["iteration"] == 1
    le = client.get("/api/learning", params={"run": BOX_RUN}).json()
    assert len(le["metrics"]["env_steps_total"]) == 20 and "student.bob.mean_return" in le["metrics"]
    g = le["grid"]
    assert g["kind"] == "grid" and len(g["x"]) == len(g["y"]) == 10 and len(le["grids"]) == 4
    assert np.asarray(g["z"], dtype=float).shape == (10, 10)
    sy = client.get("/api/system", params={"run": BOX_RUN}).json()["metrics"]
    assert any(v is not None and v > 0 for v in sy["tasks_per_s"])
    assert any(k.endswith("refit_ms_last") for k in sy)


def test_text_tasks_come_back_as_data(client):
    sp = client.get("/api/sampling", params={"run": TEXT_RUN}).json()
    assert sp["kind"] == "text" and {r["label"] for r in sp["top"]} == set(XSS)
    te = client.get("/api/teacher", params={"run": TEXT_RUN}).json()
    assert te["view"]["kind"] == "scores" and {r["task"] for r in te["view"]["rows"]} == set(XSS)


def test_bad_parameters_name_the_field(client):
    r = client.get("/api/sampling", params={"run": BOX_RUN, "x": "one"})
    assert r.status_code == 400 and "x" in r.json()["error"]
    r = client.get("/api/teacher", params={"run": BOX_RUN, "cur": "nope"})
    assert r.status_code == 400 and "cur" in r.json()["error"]


# ---------------------------------------------------------------------- live updates
def test_event_stream_pushes_an_update_when_files_change(tmp_path):
    run = LiveRun(tmp_path / "live__toy__riac__s0", Box([0, 0], [1, 1]), teacher="riac", iterations=10, batch=8)
    run.advance(1)
    import threading

    with TestClient(create_app(tmp_path, poll_s=0.05, stream_max_s=1.5)) as c:
        timer = threading.Timer(0.4, lambda: run.advance(1))
        timer.start()
        with c.stream("GET", "/api/stream", params={"run": "live__toy__riac__s0"}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            body = "".join(r.iter_text())
        timer.join()
    versions = [json.loads(d)["version"] for d in re.findall(r"event: update\ndata: (.*)\n", body)]
    assert len(versions) >= 2 and versions == sorted(versions)  # the initial state, then the change
    run.finish()


# ---------------------------------------------------------------------- security
@pytest.mark.parametrize(
    "run_id",
    ["..", "../etc", "%2e%2e", "%2e%2e%2fetc", "/etc/passwd", f"{BOX_RUN}/..", f"a/../{BOX_RUN}", "..\\x", "a/b/c", ""],
)
def test_run_ids_cannot_leave_the_root(client, run_id):
    r = client.get(f"/api/summary?run={run_id}")
    assert r.status_code == 404, run_id
    if run_id:  # (no run id at all is the runs table's stream)
        assert client.get(f"/api/stream?run={run_id}").status_code == 404


def test_symlinks_out_of_the_root_are_not_served(tmp_path, runs_root):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    shutil.copytree(runs_root / TEXT_RUN, outside)
    (root / "escape").symlink_to(outside)
    inside = root / "real"
    shutil.copytree(runs_root / TEXT_RUN, inside)
    (root / "alias").symlink_to(inside)
    r = RunsRoot(root)
    assert set(r.runs()) == {"alias", "real"}
    with pytest.raises(UnknownName):
        r.resolve("escape")
    with TestClient(create_app(root)) as c:
        assert c.get("/api/summary", params={"run": "escape"}).status_code == 404
        assert c.get("/api/summary", params={"run": "real"}).status_code == 200
    for bad in ("..", "a\x00", "/x", "a\\b", "a/./b"):
        with pytest.raises(UnknownName):
            check_run_id(bad)


def test_static_files_are_a_fixed_list(client):
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/plotly.min.js").status_code == 200
    for path in ("/static/..%2fapp.py", "/static/%2e%2e/app.py", "/static/index.html", "/static/../../etc/passwd"):
        assert client.get(path).status_code == 404, path


def test_read_only_and_no_file_is_touched(client, runs_root):
    before = _files(runs_root)
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/api/summary", params={"run": BOX_RUN}).status_code == 405
    for path in ("/", "/api/runs", "/api/latest"):
        client.get(path)
    for run in (BOX_RUN, TEXT_RUN):
        for page in ("summary", "sampling", "teacher", "learning", "system"):
            assert client.get(f"/api/{page}", params={"run": run}).status_code == 200
    assert _files(runs_root) == before


def test_security_headers_and_no_html_sinks_in_the_app(client):
    r = client.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    static = pathlib.Path(__file__).resolve().parents[1] / "openended" / "dashboard" / "static"
    for js in static.glob("*.js"):
        src = js.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in src, f"{js.name} uses {sink}"
    assert "<script>" not in (static / "index.html").read_text().split("</head>")[1]


def test_token_is_required_everywhere_but_login(runs_root):
    token = "s3cret-token-0123456789"
    with TestClient(create_app(runs_root, token=token, stream_max_s=0.5)) as c:
        for path in ("/", "/api/runs", "/static/app.js", "/static/plotly.min.js", f"/api/stream?run={BOX_RUN}"):
            assert c.get(path).status_code == 401, path
        assert c.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/login").status_code == 200
        assert c.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/api/runs", params={"token": token}).status_code == 200
        r = c.get("/", params={"token": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/" and TOKEN_COOKIE in r.headers["set-cookie"]
        assert "httponly" in r.headers["set-cookie"].lower()
        c.cookies.set(TOKEN_COOKIE, token)
        assert c.get("/api/runs").status_code == 200 and c.get("/static/app.js").status_code == 200


def test_loopback_without_token_checks_the_host_header(runs_root):
    with TestClient(
        create_app(runs_root, allowed_hosts=("127.0.0.1", "localhost")), base_url="http://127.0.0.1:8765"
    ) as c:
        assert c.get("/api/runs").status_code == 200
        assert c.get("/api/runs", headers={"host": "evil.example:8765"}).status_code == 400


def test_binding_beyond_loopback_needs_a_token(monkeypatch, runs_root):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    assert resolve_token("127.0.0.1", {}) is None
    assert len(resolve_token("0.0.0.0", {}) or "") >= 24
    assert resolve_token("0.0.0.0", {"OPENENDED_DASHBOARD_TOKEN": "x" * 20}) == "x" * 20
    with pytest.raises(ConfigError, match="16 characters"):
        resolve_token("0.0.0.0", {"OPENENDED_DASHBOARD_TOKEN": "short"})
    with pytest.raises(ConfigError, match="token"):
        DashboardServer(runs_root, "0.0.0.0", 0, token="")


def test_server_in_a_thread_serves_and_prints_its_url(runs_root):
    import urllib.request

    with DashboardServer(runs_root, "127.0.0.1", 0) as server:
        assert server.port > 0 and server.url().startswith(f"http://127.0.0.1:{server.port}/")
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/runs", timeout=10) as r:
            assert len(json.loads(r.read())["runs"]) == 2


# ---------------------------------------------------------------------- figures and CLI
def test_plot_writes_figures_for_one_and_several_runs(runs_root, tmp_path):
    from openended.cli import main

    assert main(["plot", str(runs_root / BOX_RUN), "--out", str(tmp_path / "one"), "--format", "png"]) == 0
    names = sorted(p.name for p in (tmp_path / "one" / BOX_RUN).iterdir())
    assert names == ["heldout.png", "learning.png", "sampling.png", "teacher.png"]
    assert all((tmp_path / "one" / BOX_RUN / n).stat().st_size > 10_000 for n in names)
    from openended.dashboard.plots import write_figures

    files = write_figures([runs_root], tmp_path / "all", ["svg"], ["sampling", "compare"])
    assert tmp_path / "all" / "compare-learning.svg" in files
    assert {p.name for p in (tmp_path / "all" / TEXT_RUN).iterdir()} == {"sampling.svg"}
    svg = (tmp_path / "all" / TEXT_RUN / "sampling.svg").read_text()
    assert "<script>window" not in svg  # text is drawn as glyphs or escaped, never markup


def test_cli_reports_a_bad_root(capsys, tmp_path):
    from openended.cli import main

    assert main(["plot", str(tmp_path)]) == 2
    assert "no run directory" in capsys.readouterr().err


def test_the_dashboard_never_imports_ray():
    import subprocess
    import sys

    code = (
        "import sys, openended.dashboard.app, openended.dashboard.server, openended.dashboard.plots, "
        "openended.dashboard.synthetic; assert 'ray' not in sys.modules, 'ray imported'"
    )
    root = pathlib.Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root)
