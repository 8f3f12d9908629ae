"""``openended plot``: the dashboard's views as static figures (PNG / SVG, matplotlib Agg).

For papers and machines without a browser. Per run (in ``OUT/<run dir>/``):
    sampling  -- where tasks were sampled: density in four successive time windows and one
                 dimension over time (Box); the most sampled tasks over time (Discrete/text)
    teacher   -- the teacher's latest view (components, regions, scores, partition, lineage)
    learning  -- training return, success rate and % mastered over env steps, per student
    heldout   -- the last held-out evaluation per task (when the run evaluated)
With several runs, ``compare-learning`` puts them side by side: runs with the same label
(teacher name and preset, or the experiment name) become one curve, mean ± std over seeds.

Everything is read through `RunMonitor`, the same aggregates the dashboard serves. Task
texts are drawn as plain text (matplotlib's ``$...$`` math parsing is escaped).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from openended.dashboard.monitor import RunMonitor
from openended.dashboard.runs import RunsRoot
from openended.errors import ConfigError, DependencyNotInstalled

__all__ = ["write_figures", "expand_runs", "FORMATS", "FIGURES"]

FORMATS = ("png", "svg")
#: Figure names (``compare`` needs several runs).
FIGURES = ("sampling", "teacher", "learning", "heldout", "compare")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise DependencyNotInstalled("openended plot needs matplotlib; pip install 'openended[dashboard]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _text(s: Any, n: int = 40) -> str:
    """A label as plain text: clipped, and ``$`` escaped (matplotlib would parse math)."""
    t = str(s)
    t = t if len(t) <= n else t[: n - 1] + "…"
    return t.replace("$", r"\$")


def expand_runs(paths: Sequence[str | os.PathLike]) -> list[pathlib.Path]:
    """Run directories named by ``paths`` (a folder of runs stands for all its runs)."""
    out: list[pathlib.Path] = []
    for p in paths:
        root = RunsRoot(p)
        found = list(root.runs().values())
        if not found:
            raise ConfigError(f"plot: {str(p)!r} holds no run directory (a run directory has config.yaml)")
        out.extend(found)
    return out


def write_figures(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike = "figures",
    formats: Sequence[str] = FORMATS,
    figures: Sequence[str] = FIGURES,
) -> list[pathlib.Path]:
    """Write the ``figures`` (default: all) for the runs in ``paths`` under ``out``; return the files."""
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"plot --format: choose from {list(FORMATS)}, got {list(formats)}")
    unknown = [f for f in figures if f not in FIGURES]
    if unknown or not figures:
        raise ConfigError(f"plot --only: choose from {list(FIGURES)}, got {list(figures)}")
    plt = _pyplot()
    runs = expand_runs(paths)
    out_dir = pathlib.Path(out)
    written: list[pathlib.Path] = []
    monitors = []
    for path in runs:
        mon = RunMonitor(path)
        mon.refresh()
        monitors.append(mon)
        target = out_dir / path.name
        target.mkdir(parents=True, exist_ok=True)
        for name, draw in (
            ("sampling", _sampling),
            ("teacher", _teacher),
            ("learning", _learning),
            ("heldout", _heldout),
        ):
            if name not in figures:
                continue
            fig = draw(plt, mon)
            if fig is not None:
                written += _save(plt, fig, target / name, formats)
    if len(monitors) > 1 and "compare" in figures:
        out_dir.mkdir(parents=True, exist_ok=True)
        written += _save(plt, _compare(plt, monitors), out_dir / "compare-learning", formats)
    return written


def _save(plt: Any, fig: Any, stem: pathlib.Path, formats: Sequence[str]) -> list[pathlib.Path]:
    files = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        files.append(path)
    plt.close(fig)
    return files


def _title(mon: RunMonitor) -> str:
    s = mon.summary()
    return _text(f"{s['name'] or s['dir']} — {s['teacher']} on {s['env']} (seed {s['seed']})", 90)


# ------------------------------------------------------------------------ sampling
def _sampling(plt: Any, mon: RunMonitor) -> Any:
    names = mon.curriculum_names()
    if not names:
        return None
    page = mon.sampling(names[0])
    n = len(page["chunks"])
    if not n:
        return None
    if page["kind"] == "box":
        quarters = [(i * n // 4, max(i * n // 4, (i + 1) * n // 4 - 1)) for i in range(4)] if n >= 4 else [(0, n - 1)]
        two_d = "hist" in page
        fig, axes = plt.subplots(1, len(quarters) + 1, figsize=(4.2 * (len(quarters) + 1), 4.0), squeeze=False)
        ax_row = axes[0]
        for ax, (lo, hi) in zip(ax_row, quarters):
            win = mon.sampling(names[0], page["x"], page.get("y", 1), lo, hi)
            c0, c1 = page["chunks"][lo], page["chunks"][hi]
            if two_d:
                h = np.asarray(win["hist"], dtype=float)
                ex, ey = win["edges_x"], win["edges_y"]
                ax.imshow(h, origin="lower", extent=(ex[0], ex[-1], ey[0], ey[-1]), aspect="auto", cmap="viridis")
                ax.set_ylabel(_text(win["dims"][win["y"]]))
            ax.set_xlabel(_text(win["dims"][win["x"]]))
            ax.set_title(f"tasks {c0['start']:,}–{c1['start'] + c1['n']:,}", fontsize=10)
        m = np.asarray(page["marginal"], dtype=float)
        ends = [c["start"] + c["n"] for c in page["chunks"]]
        ex = page["edges_x"]
        ax = ax_row[-1]
        ax.imshow(m.T, origin="lower", aspect="auto", cmap="viridis", extent=(0, ends[-1], ex[0], ex[-1]))
        ax.set_xlabel("tasks sampled")
        ax.set_ylabel(_text(page["dims"][page["x"]]))
        ax.set_title("one dimension over time", fontsize=10)
    else:
        ot = page["over_time"]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [1, 2]})
        top = page["top"][:25][::-1]
        a1.barh(range(len(top)), [r["count"] for r in top], color="#2563eb")
        a1.set_yticks(range(len(top)), [_text(r["label"], 36) for r in top], fontsize=8)
        a1.set_xlabel("times sampled")
        z = np.asarray(ot["z"], dtype=float)
        if z.size:
            ends = [c["start"] + c["n"] for c in page["chunks"]]
            a2.imshow(z, aspect="auto", cmap="viridis", extent=(0, ends[-1], len(z) - 0.5, -0.5))
            a2.set_yticks(range(len(z)), [_text(x, 36) for x in ot["labels"]], fontsize=8)
            a2.set_xlabel("tasks sampled")
        a2.set_title("top tasks over time", fontsize=10)
    fig.suptitle(_title(mon) + " · where tasks were sampled", fontsize=11)
    return fig


# ------------------------------------------------------------------------ teacher
def _teacher(plt: Any, mon: RunMonitor) -> Any:
    names = mon.curriculum_names()
    data = mon.teacher(names[0]) if names else {}
    view = data.get("view")
    if not view or view.get("kind") not in _VIEWS:
        return None
    fig = _VIEWS[view["kind"]](plt, view, data)
    fig.suptitle(
        _title(mon) + f" · teacher view at iteration {data.get('iteration')} ({data.get('student')})", fontsize=11
    )
    return fig


def _gmm(plt: Any, v: dict, data: dict) -> Any:
    from matplotlib.patches import Ellipse

    fig, ax = plt.subplots(figsize=(7, 6))
    comps = v["components"]
    if len(v["dims"]) >= 2:
        sig = np.asarray([c["signal"] or 0.0 for c in comps], dtype=float)
        norm = plt.Normalize(float(sig.min(initial=0)), float(max(sig.max(initial=1e-12), 1e-12)))
        cmap = plt.get_cmap("viridis")
        for c, s in zip(comps, sig):
            cov = np.asarray(c["cov"], dtype=float)[:2, :2]
            w, vec = np.linalg.eigh(cov)
            angle = float(np.degrees(np.arctan2(vec[1, 1], vec[0, 1])))
            width, height = 4 * np.sqrt(np.clip(w[::-1], 0, None))
            ax.add_patch(
                Ellipse(c["mean"][:2], width, height, angle=angle, fc=cmap(norm(s)), ec=cmap(norm(s)), alpha=0.35, lw=2)
            )
        sc = ax.scatter([c["mean"][0] for c in comps], [c["mean"][1] for c in comps], c=sig, cmap="viridis", norm=norm)
        fig.colorbar(sc, ax=ax, label=v["signal"].upper())
        ax.set_xlim(v["low"][0], v["high"][0])
        ax.set_ylim(v["low"][1], v["high"][1])
        ax.set_xlabel(_text(v["dims"][0]))
        ax.set_ylabel(_text(v["dims"][1]))
    ax.set_title(f"{len(comps)} components (2σ), colour = {v['signal'].upper()}", fontsize=10)
    return fig


def _regions(plt: Any, v: dict, data: dict) -> Any:
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(7, 6))
    alps = np.asarray([r["alp"] or 0.0 for r in v["regions"]], dtype=float)
    norm = plt.Normalize(0, float(max(alps.max(initial=0), 1e-12)))
    cmap = plt.get_cmap("viridis")
    for r, a in zip(v["regions"], alps):
        lo, hi = r["low"], r["high"]
        ax.add_patch(
            Rectangle((lo[0], lo[1]), hi[0] - lo[0], hi[1] - lo[1], fc=cmap(norm(a)), ec="k", lw=0.4, alpha=0.8)
        )
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="ALP")
    ax.set_xlim(v["low"][0], v["high"][0])
    ax.set_ylim(v["low"][1], v["high"][1])
    ax.set_xlabel(_text(v["dims"][0]))
    ax.set_ylabel(_text(v["dims"][1]) if len(v["dims"]) > 1 else "")
    ax.set_title(f"{v['n_leaves']} leaf regions, colour = ALP", fontsize=10)
    return fig


def _bars(
    plt: Any, rows: list[dict], value: str, shade: str | None, xlabel: str, title: str, colors: Any = None
) -> Any:
    rows = rows[:30][::-1]
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.28 * len(rows) + 1)))
    vals = [r.get(value) or 0.0 for r in rows]
    if colors is None and shade is not None:
        s = np.asarray([r.get(shade) or 0.0 for r in rows], dtype=float)
        colors = plt.get_cmap("viridis")(plt.Normalize(s.min(initial=0), max(s.max(initial=1e-12), 1e-12))(s))
    ax.barh(range(len(rows)), vals, color=colors)
    ax.set_yticks(range(len(rows)), [_text(r["task"], 44) for r in rows], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    return fig


def _scores(plt: Any, v: dict, data: dict) -> Any:
    if v["teacher"] == "plr":
        return _bars(plt, v["rows"], "score", "staleness", "score", "PLR buffer: score (colour = staleness)")
    return _bars(plt, v["rows"], "lp", "ema_success", "learning progress", "LP per task (colour = EMA success)")


def _partition(plt: Any, v: dict, data: dict) -> Any:
    palette = {"interesting": "#16a34a", "boring": "#9ca3af", "unlabelled": "#60a5fa"}
    rows = v["rows"][:30][::-1]
    c = v.get("counts", {})
    title = f"OMNI partition: {c.get('interesting', 0)} interesting, {c.get('boring', 0)} boring (bar = EMA success)"
    return _bars(plt, v["rows"], "success", None, "EMA success", title, [palette.get(r["label"], "#999") for r in rows])


def _lineage(plt: Any, v: dict, data: dict) -> Any:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"width_ratios": [3, 2]})
    nodes = {n["id"]: n for n in v["nodes"]}
    depth: dict[str, int] = {}
    for n in v["nodes"]:  # parents come first (pool order)
        depth[n["id"]] = 1 + max((depth[p] for p in n["parents"] if p in depth), default=-1)
    rows: dict[int, int] = {}
    pos = {}
    for n in v["nodes"]:
        d = depth[n["id"]]
        pos[n["id"]] = (d, rows.get(d, 0))
        rows[d] = rows.get(d, 0) + 1
    for n in v["nodes"]:
        for p in n["parents"]:
            if p in pos:
                a1.plot([pos[p][0], pos[n["id"]][0]], [pos[p][1], pos[n["id"]][1]], color="#cbd5e1", lw=0.6, zorder=1)
    xs, ys = zip(*(pos[i] for i in nodes)) if nodes else ((), ())
    sc = a1.scatter(xs, ys, c=[nodes[i]["success"] or 0.0 for i in nodes], cmap="viridis", vmin=0, vmax=1, zorder=2)
    fig.colorbar(sc, ax=a1, label="EMA success")
    a1.set_xlabel("generation (0 = seed tasks)")
    a1.set_yticks([])
    a1.set_title(f"lineage: {len(nodes)} of {v['pool']} pool tasks", fontsize=10)
    funnel = (v.get("last_phase") or {}).get("funnel") or {}
    keys = ["generated", "invalid", "duplicate", "infeasible", "out_of_band", "unpredicted", "over_quota", "admitted"]
    a2.bar(range(len(keys)), [funnel.get(k, 0) for k in keys], color=["#2563eb"] + ["#f59e0b"] * 6 + ["#16a34a"])
    a2.set_xticks(range(len(keys)), [k.replace("_", " ") for k in keys], rotation=40, ha="right")
    a2.set_title(f"last generation phase ({v['phases']} phases so far)", fontsize=10)
    return fig


_VIEWS = {"gmm": _gmm, "regions": _regions, "scores": _scores, "partition": _partition, "lineage": _lineage}


# ------------------------------------------------------------------------ learning
def _learning(plt: Any, mon: RunMonitor) -> Any:
    data = mon.learning()
    m = data["metrics"]
    xs = np.asarray([np.nan if v is None else v for v in m.get("env_steps_total", [])], dtype=float)
    if not xs.size:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for ax, field, label, scale in zip(
        axes, ("mean_return", "success_rate", "mastered"), ("mean return", "success rate", "% mastered"), (1, 1, 100)
    ):
        ax.plot(xs, _arr(m.get(field)) * scale, label="all students", lw=2)
        if len(data["students"]) > 1:
            for s in data["students"]:
                ax.plot(xs, _arr(m.get(f"student.{s}.{field}")) * scale, label=_text(s), lw=1)
        if field == "mastered" and data["evaluations"]:
            ev = data["evaluations"]
            ax.plot(
                _arr([r["env_steps_total"] for r in ev]),
                _arr([r["mastered"] for r in ev]) * 100,
                "o-",
                label="held-out",
            )
        ax.set_xlabel("env steps")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if len(ax.get_lines()) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(_title(mon) + " · learning", fontsize=11)
    return fig


def _heldout(plt: Any, mon: RunMonitor) -> Any:
    g = mon.learning()["grid"]
    if not g or g.get("kind") != "grid":
        return None
    fig, ax = plt.subplots(figsize=(7, 6))
    z = np.asarray([[np.nan if v is None else v for v in row] for row in g["z"]], dtype=float)
    xs, ys = np.asarray(g["x"]), np.asarray(g["y"])
    im = ax.imshow(z, origin="lower", cmap="RdYlGn", aspect="auto", extent=_extent(xs, ys))
    fig.colorbar(im, ax=ax, label="return")
    for j, row in enumerate(g["success"]):
        for i, ok in enumerate(row):
            if ok:
                ax.text(xs[i], ys[j], "✓", ha="center", va="center", fontsize=9)
    mastered = g.get("mastered")
    ax.set_title(
        f"held-out tasks at {g['env_steps_total'] or 0:,.0f} env steps"
        + (f" · {100 * mastered:.0f}% mastered (✓)" if mastered is not None else ""),
        fontsize=10,
    )
    ax.set_xlabel("task parameter 0")
    ax.set_ylabel("task parameter 1")
    fig.suptitle(_title(mon), fontsize=11)
    return fig


def _extent(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float, float]:
    dx = (xs[-1] - xs[0]) / max(1, len(xs) - 1) / 2 if len(xs) > 1 else 0.5
    dy = (ys[-1] - ys[0]) / max(1, len(ys) - 1) / 2 if len(ys) > 1 else 0.5
    return (float(xs[0] - dx), float(xs[-1] + dx), float(ys[0] - dy), float(ys[-1] + dy))


def _arr(values: Any) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in (values or [])], dtype=float)


# ------------------------------------------------------------------------ comparison
def _label(mon: RunMonitor) -> str:
    s = mon.summary()
    return f"{s['teacher']}" + (f" ({s['preset']})" if s.get("preset") else "") + f" · {s['env']}"


def _compare(plt: Any, monitors: list[RunMonitor]) -> Any:
    groups: dict[str, list[tuple[np.ndarray, dict[str, np.ndarray]]]] = {}
    for mon in monitors:
        m = mon.learning()["metrics"]
        xs = _arr(m.get("env_steps_total"))
        if xs.size:
            ys = {f: _arr(m.get(f)) for f in ("mean_return", "success_rate", "mastered")}
            groups.setdefault(_label(mon), []).append((xs, ys))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    for ax, field, label, scale in zip(
        axes, ("mean_return", "success_rate", "mastered"), ("mean return", "success rate", "% mastered"), (1, 1, 100)
    ):
        for name, runs in groups.items():
            end = min(float(np.nanmax(xs)) for xs, _ in runs)
            grid = np.linspace(0, end, 200)
            curves = []
            for xs, ys in runs:
                y = ys[field]
                ok = ~(np.isnan(xs) | np.isnan(y))
                if ok.sum() >= 2:
                    curves.append(np.interp(grid, xs[ok], y[ok]) * scale)
            if not curves:
                continue
            c = np.vstack(curves)
            mean, std = c.mean(axis=0), c.std(axis=0)
            (line,) = ax.plot(grid, mean, lw=2, label=f"{_text(name, 50)} (n={len(curves)})")
            ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        ax.set_xlabel("env steps")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=8)
    fig.suptitle("runs compared: mean ± std over seeds", fontsize=11)
    return fig
