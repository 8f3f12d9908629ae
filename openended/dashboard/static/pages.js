// The run page's tabs: curriculum (where tasks are sampled), teacher (its own view),
// learning (curves, held-out heatmap) and system (throughput, queues, latencies).
// Each tab builds its cards once and then only refreshes their data, so zoom survives updates.
import { api, setParams } from "/static/api.js";
import { axis, clip, el, empty, esc, fmt, fmtDuration, lines, plot, plotlyReady, table } from "/static/charts.js";
import { renderView } from "/static/views.js";

function ui(body, build) {
  if (!body._ui) body._ui = build(body);
  return body._ui;
}

function card(title, ...content) {
  return el("div", { class: "card" }, el("h3", {}, title), ...content);
}

function plotDiv(id, cls = "plot") {
  return el("div", { class: cls, id });
}

function select(options, value, onchange) {
  return el("select", { onchange: (e) => onchange(e.target.value) },
    options.map(([v, label]) => el("option", { value: v, selected: String(v) === String(value) }, label)));
}

// A slider over positions 0..n-1 that "follows" the newest position unless moved back.
function slider(n, pos, follow, onmove) {
  const input = el("input", { type: "range", min: 0, max: Math.max(0, n - 1), step: 1, value: follow ? Math.max(0, n - 1) : pos });
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => onmove(+input.value, +input.value >= n - 1), 120);
  });
  return input;
}

// ------------------------------------------------------------------ curriculum
async function curriculum(body, ctx) {
  const p = ctx.params;
  const follow = p.follow !== "0";
  const win = p.win || "all";
  const pos = follow ? undefined : +p.pos;
  const x = +(p.x ?? 0);
  const y = +(p.y ?? 1);
  const data = await api("sampling", {
    run: ctx.run, cur: ctx.cur, x, y, hi: pos, lo: win === "chunk" ? pos : undefined,
  });
  await plotlyReady;
  const u = ui(body, () => {
    body.replaceChildren();
    return { controls: el("div", { class: "controls" }), cards: el("div", { class: "cards" }), extra: el("div") };
  });
  if (!u.controls.isConnected) body.append(u.controls, u.cards, u.extra);
  const n = data.chunks.length;
  if (!n) {
    u.controls.replaceChildren(el("p", { class: "muted" }, data.kind === "none"
      ? "No tasks logged for this curriculum yet." : `No tasks sampled yet (${data.kind} space).`));
    u.cards.replaceChildren();
    u.extra.replaceChildren();
    return;
  }
  const at = follow ? n - 1 : Math.min(pos, n - 1);
  const chunk = data.chunks[at];
  const first = win === "chunk" ? chunk.start : 0;
  const t0 = data.chunks[0].t0;
  const when = chunk.t1 && t0 ? ` · ${fmtDuration(chunk.t1 - t0)} after the first` : "";
  const controls = [
    el("label", {}, "window ", select([["all", "from the start"], ["chunk", "this slice only"]], win, (v) => setParams({ win: v }))),
    el("label", {}, "time ", slider(n, at, follow, (v, last) => setParams({ pos: v, follow: last ? "1" : "0" }))),
    el("span", { class: "note", id: "sampling-window" },
      `tasks ${fmt(first)}–${fmt(chunk.start + chunk.n)} of ${fmt(data.total)}${when}${follow ? " (following live)" : ""}`),
  ];
  if (data.kind === "box") {
    const dims = data.dims.map((d, i) => [i, d]);
    const mode = p.mode || "density";
    controls.unshift(
      el("label", {}, "x ", select(dims, data.x, (v) => setParams({ x: v }))),
      data.y !== undefined ? el("label", {}, "y ", select(dims, data.y, (v) => setParams({ y: v }))) : "",
      data.y !== undefined ? el("label", {}, "show ", select([["density", "density"], ["scatter", "scatter"]], mode, (v) => setParams({ mode: v }))) : "",
    );
    u.controls.replaceChildren(...controls);
    boxCards(u, data, mode);
  } else {
    u.controls.replaceChildren(...controls);
    tableCards(u, data);
  }
}

function boxCards(u, data, mode) {
  if (!u.box) {
    u.box = { density: plotDiv("sampling-plot", "plot tall"), marginal: plotDiv("marginal-plot", "plot tall"), note: el("p", { class: "note" }) };
    u.cards.replaceChildren(
      card("Where tasks were sampled", u.box.density, u.box.note),
      card("One dimension over time", u.box.marginal),
    );
    u.extra.replaceChildren();
  }
  const xName = data.dims[data.x];
  const origins = Object.entries(data.origins || {}).sort((a, b) => b[1] - a[1]);
  const total = origins.reduce((a, [, c]) => a + c, 0) || 1;
  u.box.note.replaceChildren(`${fmt(data.window_total)} tasks in this window; by origin: `,
    origins.map(([o, c]) => `${o} ${(100 * c / total).toFixed(1)}%`).join(", ") || "–");
  if (data.y !== undefined) {
    const yName = data.dims[data.y];
    const cx = centers(data.edges_x);
    const cy = centers(data.edges_y);
    const range = { xaxis: axis(xName, { range: [data.low[data.x], data.high[data.x]] }),
                    yaxis: axis(yName, { range: [data.low[data.y], data.high[data.y]] }) };
    if (mode === "scatter") {
      plot(u.box.density, [{
        type: "scattergl", mode: "markers", x: data.points.map((q) => q[0]), y: data.points.map((q) => q[1]),
        marker: { size: 4, opacity: 0.5, color: "#2563eb" }, hoverinfo: "x+y", name: "tasks",
      }], range, data.window_total);
    } else {
      plot(u.box.density, [{
        type: "heatmap", x: cx, y: cy, z: data.hist, colorscale: "Viridis", colorbar: { title: { text: "tasks" } },
        hovertemplate: `${esc(xName)} %{x:.3g}<br>${esc(yName)} %{y:.3g}<br>%{z} tasks<extra></extra>`,
      }], range, data.window_total);
    }
  } else {
    empty(u.box.density, "One-dimensional task space: see the dimension over time.");
  }
  const ends = data.chunks.map((c) => c.start + c.n);
  plot(u.box.marginal, [{
    type: "heatmap", x: ends, y: centers(data.edges_x), z: transpose(data.marginal), colorscale: "Viridis",
    colorbar: { title: { text: "tasks" } },
    hovertemplate: `up to task %{x}<br>${esc(xName)} %{y:.3g}<br>%{z} tasks<extra></extra>`,
  }], { xaxis: axis("tasks sampled"), yaxis: axis(xName) });
}

function tableCards(u, data) {
  if (!u.table) {
    u.table = { bars: plotDiv("sampling-plot", "plot tall"), time: plotDiv("marginal-plot", "plot tall"), list: el("div", { class: "scroll" }) };
    u.cards.replaceChildren(card("Most sampled tasks in this window", u.table.bars), card("Top tasks over time", u.table.time));
    u.extra.replaceChildren(el("h2", {}, "Counts per task"), u.table.list);
  }
  const top = data.top.slice(0, 30).reverse();
  plot(u.table.bars, [{
    type: "bar", orientation: "h", x: top.map((r) => r.count), y: top.map((r, i) => i),
    text: top.map((r) => esc(r.label)), hoverinfo: "text+x", textposition: "none", marker: { color: "#2563eb" },
  }], {
    margin: { l: 220 }, xaxis: axis("times sampled"),
    yaxis: { tickmode: "array", tickvals: top.map((r, i) => i), ticktext: top.map((r) => esc(clip(r.label, 34))), automargin: true },
  }, data.window_total);
  const ends = data.chunks.map((c) => c.start + c.n);
  const ot = data.over_time;
  if (ot.labels.length) {
    plot(u.table.time, [{
      type: "heatmap", x: ends, y: ot.labels.map((_, i) => i), z: ot.z, colorscale: "Viridis",
      text: ot.z.map((row, i) => row.map(() => esc(ot.labels[i]))), hoverinfo: "text+x+z",
    }], {
      margin: { l: 220 }, xaxis: axis("tasks sampled"),
      yaxis: { tickmode: "array", tickvals: ot.labels.map((_, i) => i), ticktext: ot.labels.map((l) => esc(clip(l, 34))), automargin: true },
    });
  } else {
    empty(u.table.time, "no tasks yet");
  }
  u.table.list.replaceChildren(table(
    [{ key: "label", title: "task" }, { key: "count", title: "times sampled", kind: "num" }, { key: "id", title: "id" }],
    data.top,
  ), el("p", { class: "note" }, `${fmt(data.distinct)} distinct tasks in this window; ${fmt(data.other)} draws of tasks not listed.`));
}

function centers(edges) {
  return edges.slice(0, -1).map((e, i) => (e + edges[i + 1]) / 2);
}

function transpose(m) {
  return m.length ? m[0].map((_, j) => m.map((row) => row[j])) : [];
}

// ------------------------------------------------------------------ teacher
async function teacher(body, ctx) {
  const p = ctx.params;
  const follow = p.vfollow !== "0";
  const data = await api("teacher", { run: ctx.run, cur: ctx.cur, student: p.student, index: follow ? undefined : p.vi });
  await plotlyReady;
  const u = ui(body, () => {
    body.replaceChildren();
    return { controls: el("div", { class: "controls" }), view: el("div"), stats: el("div") };
  });
  if (!u.controls.isConnected) body.append(u.controls, u.view, u.stats);
  const controls = [];
  if (data.students.length > 1) {
    controls.push(el("label", {}, "student ", select(data.students.map((s) => [s, s]), data.student, (v) => setParams({ student: v }))));
  }
  if (data.count) {
    controls.push(
      el("label", {}, "recorded view ", slider(data.count, data.index, follow, (v, last) => setParams({ vi: v, vfollow: last ? "1" : "0" }))),
      el("span", { class: "note" }, `iteration ${fmt(data.iteration)} · ${fmt(data.env_steps_total)} env steps · view ${data.index + 1} of ${data.count}${follow ? " (following live)" : ""}`),
    );
  }
  u.controls.replaceChildren(...controls);
  if (!data.count) {
    u.view.replaceChildren(el("p", { class: "muted" },
      ctx.summary.teacher === "random"
        ? "The random teacher has no internal state to show."
        : "No teacher view recorded in this run yet (runs write views.jsonl as they go; older runs have none)."));
    u.viewKind = null;
  } else {
    if (u.viewKind !== data.view.kind) {
      u.view.replaceChildren();
      u.viewState = {};
      u.viewKind = data.view.kind;
    }
    renderView(u.view, u.viewState, data, ctx);
  }
  const stats = Object.entries(data.stats || {}).filter(([, v]) => v !== null && typeof v !== "object");
  u.stats.replaceChildren(
    el("h2", {}, "Latest teacher stats (metrics.jsonl)"),
    stats.length ? table([{ key: "k", title: "stat" }, { key: "v", title: "value", kind: "num" }], stats.map(([k, v]) => ({ k, v })))
      : el("p", { class: "muted" }, "none yet"),
  );
}

// ------------------------------------------------------------------ learning
async function learning(body, ctx) {
  const data = await api("learning", { run: ctx.run, grid: ctx.params.gfollow === "0" ? ctx.params.grid : undefined });
  await plotlyReady;
  const u = ui(body, () => {
    const d = {
      ret: plotDiv("return-plot"), succ: plotDiv("success-plot"), mastered: plotDiv("mastered-plot"),
      heat: plotDiv("heldout-plot", "plot tall"), heatControls: el("div", { class: "controls" }), events: plotDiv("outcomes-plot"),
    };
    body.replaceChildren(el("div", { class: "cards" },
      card("Training return", d.ret), card("Success rate", d.succ), card("Mastered", d.mastered),
      card("Held-out test set (per task)", d.heatControls, d.heat), card("Outcomes in the event log", d.events)));
    return d;
  });
  const m = data.metrics;
  const xs = m.env_steps_total || [];
  const per = (field) => data.students.length > 1
    ? data.students.map((s) => ({ name: s, x: xs, y: m[`student.${s}.${field}`] || [] })) : [];
  lines(u.ret, [{ name: "all students", x: xs, y: m.mean_return || [] }, ...per("mean_return")], "env steps", "mean return");
  lines(u.succ, [{ name: "all students", x: xs, y: m.success_rate || [] }, ...per("success_rate")], "env steps", "success rate");
  const ev = data.evaluations || [];
  lines(u.mastered, [
    { name: "training (env's own measure)", x: xs, y: (m.mastered || []).map((v) => (v === null ? null : 100 * v)) },
    ...per("mastered").map((s) => ({ ...s, y: s.y.map((v) => (v === null ? null : 100 * v)) })),
    { name: "held-out test set", x: ev.map((r) => r.env_steps_total), y: ev.map((r) => (r.mastered === null ? null : 100 * r.mastered)), mode: "lines+markers" },
  ], "env steps", "% mastered", { yaxis: axis("% mastered", { rangemode: "tozero" }) });
  heldOut(u, data);
  const series = Object.entries(data.outcomes || {}).map(([cur, s]) => ({ name: `${cur}: mean return`, x: s.rows.map((r) => r.outcomes), y: s.rows.map((r) => r.mean_return) }));
  lines(u.events, series, "outcomes accepted", "mean return per slice");
}

// Low returns red, high green (Plotly.js has no built-in RdYlGn).
const RETURNS = [[0, "#d73027"], [0.5, "#fee08b"], [1, "#1a9850"]];

function heldOut(u, data) {
  const g = data.grid;
  if (!g) {
    u.heatControls.replaceChildren();
    empty(u.heat, "No held-out evaluation with per-task results (evaluation.every > 0 writes them).");
    return;
  }
  const follow = data.grid_index === data.grids.length - 1;
  u.heatControls.replaceChildren(
    el("label", {}, "evaluation ", slider(data.grids.length, data.grid_index, follow, (v, last) => setParams({ grid: v, gfollow: last ? "1" : "0" }))),
    el("span", { class: "note" }, `iteration ${fmt(g.iteration)} · ${fmt(g.env_steps_total)} env steps · mastered ${g.mastered === null ? "–" : (100 * g.mastered).toFixed(0) + "%"}`),
  );
  if (g.kind === "grid") {
    const marks = g.success.map((row) => row.map((s) => (s ? "✓" : "")));
    plot(u.heat, [{
      type: "heatmap", x: g.x, y: g.y, z: g.z, colorscale: RETURNS, colorbar: { title: { text: "return" } },
      text: marks, texttemplate: "%{text}", hovertemplate: "x %{x:.3g}<br>y %{y:.3g}<br>return %{z:.3g}<extra></extra>",
    }], { xaxis: axis("task parameter 0"), yaxis: axis("task parameter 1") });
  } else {
    const pts = g.params;
    plot(u.heat, [{
      type: "scatter", mode: "markers", x: pts.map((q) => q[0]), y: pts.map((q) => (q.length > 1 ? q[1] : 0)),
      marker: { size: 9, color: g.returns, colorscale: RETURNS, showscale: true, symbol: g.success.map((s) => (s ? "circle" : "x")) },
      hoverinfo: "x+y",
    }], { xaxis: axis("task parameter 0"), yaxis: axis("task parameter 1") });
  }
}

// ------------------------------------------------------------------ system
async function system(body, ctx) {
  const data = await api("system", { run: ctx.run });
  await plotlyReady;
  const u = ui(body, () => {
    const d = { rate: plotDiv("rates-plot"), queue: plotDiv("queues-plot"), lat: plotDiv("latency-plot"), it: plotDiv("iteration-plot"), ev: plotDiv("event-rate-plot") };
    body.replaceChildren(el("div", { class: "cards" },
      card("Throughput", d.rate), card("Queue depths", d.queue), card("Teacher latencies", d.lat),
      card("Iteration time", d.it), card("Outcomes/s in the event log", d.ev)));
    return d;
  });
  const m = data.metrics;
  const xs = m.wall_s || [];
  lines(u.rate, [
    { name: "tasks/s", x: xs, y: m.tasks_per_s || [] },
    { name: "outcomes/s", x: xs, y: m.outcomes_per_s || [] },
    { name: "env steps/s", x: xs, y: m.env_steps_per_s || [] },
  ], "wall time (s)", "per second");
  const teacherKeys = Object.keys(m).filter((k) => k.startsWith("teacher."));
  const pick = (re) => teacherKeys.filter((k) => re.test(k)).map((k) => ({ name: k.replace(/^teacher\./, ""), x: xs, y: m[k] }));
  lines(u.queue, [{ name: "in flight (sampled − accepted)", x: xs, y: m.in_flight || [] }, ...pick(/pending|queue|busy/)], "wall time (s)", "count");
  lines(u.lat, pick(/(refit_ms_(last|p99)|(sample|update)_ms_p99)$/), "wall time (s)", "ms", { yaxis: axis("ms", { type: "log" }) });
  lines(u.it, [{ name: "iteration time", x: xs, y: m.iteration_s || [] }], "wall time (s)", "seconds");
  const evs = Object.entries(data.outcomes || {}).map(([cur, rows]) => ({ name: cur, x: rows.map((r) => r.outcomes), y: rows.map((r) => r.outcomes_per_s) }));
  lines(u.ev, evs, "outcomes accepted", "outcomes/s");
}

export const TABS = {
  curriculum: { title: "Curriculum", render: curriculum },
  teacher: { title: "Teacher", render: teacher },
  learning: { title: "Learning", render: learning },
  system: { title: "System", render: system },
};
