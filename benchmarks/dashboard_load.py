"""Dashboard load: first paint and server memory on a run with 1,000,000 logged outcomes.

How to run (from the repository root)::

    .venv/bin/python benchmarks/dashboard_load.py --quick                 # 100,000 outcomes, ~20 s
    .venv/bin/python benchmarks/dashboard_load.py --json dashboard.json   # 1,000,000 outcomes, ~1 min

What it does:

1. Writes a finished run directory in the real formats (`openended.dashboard.synthetic.
   write_bulk_run`: `EventLog` + codec batches of 64 sampled tasks and 64 outcomes, one
   metrics row per 100 outcomes, ~300 teacher views): 1M outcomes is a ~100 MB event log.
2. Starts ``openended dashboard RUN_DIR`` as a subprocess (cold: nothing cached) and times
   server start -> every page's data complete (``/api/summary``, ``sampling``, ``teacher``,
   ``learning``, ``system`` all answered): **first paint** (server side).
3. Reads the server's peak resident memory (``VmHWM``): **server RSS**.
4. Appends 64,000 more outcomes to the live log and times until the API shows them
   (the server follows the log from its offsets; it does not re-read it).
5. If headless Chromium is installed (``bash scripts/setup_browser.sh``): a second, cold
   server, and the time from opening the run page to its density chart drawn with data
   (**first paint in the browser**, including the server's cold read).

Targets: first paint < 2 s, server RSS < 500 MB. Wall times depend on what else runs on
the machine, so the server's CPU seconds to first paint and the load average are printed too.

Output: a table and, with ``--json PATH``, ``{"first_paint_s_1m", "server_rss_mb_1m",
"browser_first_paint_s_1m", "incremental_update_s_1m", "log_mb", "outcomes", ...}`` (keys
end in ``_100k`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openended.dashboard.synthetic import write_bulk_run

PAGES = ("summary", "sampling", "teacher", "learning", "system")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 30.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def start_server(run_dir: pathlib.Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "openended.cli", "dashboard", str(run_dir), "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_up(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            raise RuntimeError(f"dashboard exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            get(f"http://127.0.0.1:{port}/api/runs", timeout=2)
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError("dashboard did not start")


def peak_rss_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process used (load-independent, unlike wall time)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_paint(run_dir: pathlib.Path) -> tuple[float, float, float, subprocess.Popen, int]:
    """Cold server start -> every page's data answered; the server's CPU seconds and peak RSS."""
    port = free_port()
    t0 = time.perf_counter()
    proc = start_server(run_dir, port)
    wait_up(port, proc)
    run_id = run_dir.name
    for page in PAGES:
        get(f"http://127.0.0.1:{port}/api/{page}?run={run_id}", timeout=120)
    return time.perf_counter() - t0, cpu_s(proc.pid), peak_rss_mb(proc.pid), proc, port


def incremental(run_dir: pathlib.Path, port: int, extra: int = 64_000) -> float:
    """Append ``extra`` outcomes to the live log; seconds until the API counts them."""
    import numpy as np

    from openended.runtime.codec import OutcomeBatch
    from openended.runtime.eventlog import EventLog

    base = get(f"http://127.0.0.1:{port}/api/summary?run={run_dir.name}")["curricula"][0]["outcomes"]
    log = EventLog(run_dir / "events.jsonl", fsync="never")
    n = 64
    t0 = time.perf_counter()
    for k in range(extra // n):
        ids = np.arange(k * n, (k + 1) * n, dtype=np.uint64)
        log.outcome(
            "main",
            OutcomeBatch(
                ids,
                np.ones(n),
                np.ones(n, np.int8),
                np.ones(n, np.int32),
                ids + (1 << 40),
                np.zeros(n, np.uint8),
                ("default",),
                np.full(n, time.time()),
                None,
            ),
        )
    log.close()
    while True:
        now = get(f"http://127.0.0.1:{port}/api/summary?run={run_dir.name}")["curricula"][0]["outcomes"]
        if now >= base + extra:
            return time.perf_counter() - t0
        time.sleep(0.01)


def browser_first_paint(run_dir: pathlib.Path) -> tuple[float, float] | None:
    """Seconds from opening the run page (cold server) to its density chart drawn, and to
    Plotly.js being ready (evaluating its 4.8 MB bundle is most of the browser's share)."""
    chrome, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chrome is None or driver_path is None:
        return None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return None
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        opts.add_argument(arg)
    opts.binary_location = chrome
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    port = free_port()
    proc = start_server(run_dir, port)
    try:
        wait_up(port, proc)
        t0 = time.perf_counter()
        driver.get(f"http://127.0.0.1:{port}/#/run/{run_dir.name}/curriculum")
        WebDriverWait(driver, 120, poll_frequency=0.02).until(
            lambda d: d.execute_script(
                "const e = document.getElementById('sampling-plot'); return e && +e.dataset.points > 0;"
            )
        )
        paint = time.perf_counter() - t0
        ready = driver.execute_script(
            "const m = performance.getEntriesByName('oe-plotly-ready')[0]; return m ? m.startTime / 1000 : null;"
        )
        return paint, ready
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100,000 outcomes instead of 1,000,000")
    ap.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON")
    ap.add_argument("--dir", default=None, help="where to write the run (default: a temporary folder, removed)")
    args = ap.parse_args()
    outcomes = 100_000 if args.quick else 1_000_000
    tag = "100k" if args.quick else "1m"
    tmp = pathlib.Path(args.dir) if args.dir else pathlib.Path(tempfile.mkdtemp(prefix="oe-dashboard-load-"))
    run_dir = tmp / "dashboard_load__toy__alp_gmm__s0"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    try:
        t0 = time.perf_counter()
        write_bulk_run(run_dir, outcomes=outcomes, iterations=outcomes // 100)
        gen_s = time.perf_counter() - t0
        log_mb = (run_dir / "events.jsonl").stat().st_size / 2**20
        load_before = os.getloadavg()[0]
        paint_s, paint_cpu_s, rss_mb, proc, port = first_paint(run_dir)
        try:
            inc_s = incremental(run_dir, port)
            rss_mb = max(rss_mb, peak_rss_mb(proc.pid))
        finally:
            proc.terminate()
            proc.wait(10)
        browser = browser_first_paint(run_dir)
    finally:
        if not args.dir:
            shutil.rmtree(tmp, ignore_errors=True)
    res = {
        f"first_paint_s_{tag}": round(paint_s, 3),
        f"first_paint_cpu_s_{tag}": round(paint_cpu_s, 3),
        f"server_rss_mb_{tag}": round(rss_mb, 1),
        f"browser_first_paint_s_{tag}": None if browser is None else round(browser[0], 3),
        f"browser_plotly_ready_s_{tag}": None if browser is None or browser[1] is None else round(browser[1], 3),
        f"incremental_update_s_{tag}": round(inc_s, 3),
        "outcomes": outcomes,
        "log_mb": round(log_mb, 1),
        "generate_s": round(gen_s, 2),
        "targets": {"first_paint_s": 2.0, "server_rss_mb": 500.0},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "load_avg_1min": load_before},
    }
    rows = [
        ("outcomes in the event log", f"{outcomes:,} ({log_mb:.0f} MB)", ""),
        ("write the run (EventLog + codec)", f"{gen_s:.2f} s", ""),
        ("first paint: server start -> all page data", f"{paint_s:.2f} s", "< 2 s"),
        ("  the server's CPU time until then", f"{paint_cpu_s:.2f} s", ""),
        ("first paint in Chromium (cold server)", "-" if browser is None else f"{browser[0]:.2f} s", ""),
        (
            "  of which Plotly.js ready (its own start-up)",
            "-" if not browser or browser[1] is None else f"{browser[1]:.2f} s",
            "",
        ),
        ("server peak RSS", f"{rss_mb:.0f} MB", "< 500 MB"),
        ("+64,000 outcomes appended -> shown", f"{inc_s:.2f} s", "~1 s"),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"load average before: {load_before:.1f} on {os.cpu_count()} cores (wall times grow with it)")
    print(f"{'measure':{w}s}  {'value':>18s}  target")
    for name, value, target in rows:
        print(f"{name:{w}s}  {value:>18s}  {target}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
