// Teachers' own views (openended/teachers/views.py): one renderer per view kind.
//   gmm       ALP-GMM / Covar-GMM components as 2-sigma ellipses, coloured by ALP / LP
//   regions   RIAC's leaf regions, coloured by ALP
//   scores    PLR (score, staleness, P(replay)) and LP (LP, EMA success, P) per task
//   partition OMNI's interesting / boring tasks with the judge's reasons
//   lineage   WebRL's pool as a lineage tree, its admissions and each phase's funnel
import { setParams } from "/static/api.js";
import { axis, clip, color, el, empty, esc, fmt, plot, table } from "/static/charts.js";

function card(title, ...content) {
  return el("div", { class: "card" }, el("h3", {}, title), ...content);
}

function once(container, state, build) {
  if (!state.built) {
    Object.assign(state, build());
    state.built = true;
  }
  return state;
}

export function renderView(container, state, data, ctx) {
  const v = data.view;
  const fn = RENDERERS[v.kind];
  if (!fn) {
    container.replaceChildren(el("p", { class: v.kind === "error" ? "error" : "muted" },
      v.kind === "error" ? `The teacher's view failed: ${v.error}` : `No drawing for view kind ${v.kind}.`));
    return;
  }
  fn(container, state, v, data, ctx);
}

function dimControls(v, ctx) {
  const x = Math.min(+(ctx.params.vx ?? 0), v.dims.length - 1);
  let y = Math.min(+(ctx.params.vy ?? 1), v.dims.length - 1);
  if (y === x) y = (x + 1) % v.dims.length;
  const pick = (value, key) => el("select", { onchange: (e) => setParams({ [key]: e.target.value }) },
    v.dims.map((d, i) => el("option", { value: i, selected: i === value }, d)));
  return { x, y, controls: v.dims.length > 2 ? [el("label", {}, "x ", pick(x, "vx")), el("label", {}, "y ", pick(y, "vy"))] : [] };
}

// ------------------------------------------------------------------------ gmm
function ellipse(mean, cov, x, y, k = 2) {
  const a = cov[x][x], b = cov[x][y], d = cov[y][y];
  const tr = (a + d) / 2, det = Math.sqrt(Math.max(0, ((a - d) / 2) ** 2 + b * b));
  const l1 = Math.max(0, tr + det), l2 = Math.max(0, tr - det);
  const theta = b === 0 && a >= d ? 0 : Math.atan2(l1 - a, b || 1e-12);
  const xs = [], ys = [];
  for (let i = 0; i <= 48; i++) {
    const t = (2 * Math.PI * i) / 48;
    const u = k * Math.sqrt(l1) * Math.cos(t), w = k * Math.sqrt(l2) * Math.sin(t);
    xs.push(mean[x] + u * Math.cos(theta) - w * Math.sin(theta));
    ys.push(mean[y] + u * Math.sin(theta) + w * Math.cos(theta));
  }
  return [xs, ys];
}

function gmm(container, state, v, data, ctx) {
  const s = once(container, state, () => {
    const d = { controls: el("div", { class: "controls" }), plot: el("div", { class: "plot tall", id: "teacher-plot" }), list: el("div", { class: "scroll" }) };
    container.replaceChildren(el("div", { class: "cards" },
      card("Mixture components (2σ ellipses in task space)", d.controls, d.plot), card("Components", d.list)));
    return d;
  });
  const { x, y, controls } = dimControls(v, ctx);
  const sig = v.signal.toUpperCase();
  s.controls.replaceChildren(...controls, el("span", { class: "note" },
    `${v.components.length} components · ${fmt(v.fits)} fits · ${v.bootstrap ? "bootstrap (uniform sampling)" : "sampling by " + sig}`));
  if (!v.components.length || v.dims.length < 2) {
    empty(s.plot, v.dims.length < 2 ? "One-dimensional task space: see the components' table." : "No mixture fitted yet (bootstrap).");
  } else {
    const sigs = v.components.map((c) => c.signal ?? 0);
    const lo = Math.min(...sigs), hi = Math.max(...sigs);
    const norm = (q) => (hi > lo ? (q - lo) / (hi - lo) : 0.5);
    const traces = v.components.map((c, i) => {
      const [xs, ys] = ellipse(c.mean, c.cov, x, y);
      return {
        type: "scatter", mode: "lines", x: xs, y: ys, fill: "toself", showlegend: false, hoverinfo: "skip",
        line: { color: color(norm(c.signal ?? 0)), width: 2 }, fillcolor: color(norm(c.signal ?? 0), 0.12 + 0.5 * (c.p ?? 0)),
        name: `component ${i}`,
      };
    });
    traces.push({
      type: "scatter", mode: "markers", x: v.components.map((c) => c.mean[x]), y: v.components.map((c) => c.mean[y]),
      marker: { size: 10, color: sigs, colorscale: "Viridis", showscale: true, colorbar: { title: { text: sig } }, line: { color: "#fff", width: 1 } },
      text: v.components.map((c, i) => `component ${i}<br>${sig} ${fmt(c.signal)}<br>P(pick) ${fmt(c.p)}<br>weight ${fmt(c.weight)}`),
      hoverinfo: "text", showlegend: false,
    });
    plot(s.plot, traces, {
      xaxis: axis(v.dims[x], { range: [v.low[x], v.high[x]] }),
      yaxis: axis(v.dims[y], { range: [v.low[y], v.high[y]] }),
    }, v.components.length);
  }
  s.list.replaceChildren(table(
    [{ key: "i", title: "#", kind: "num" }, { key: "mean", title: "mean" }, { key: "signal", title: sig, kind: "num" },
     { key: "p", title: "P(pick)", kind: "num" }, { key: "weight", title: "weight", kind: "num" }],
    v.components.map((c, i) => ({ ...c, i, mean: c.mean.map((m) => fmt(m)).join(", ") })),
  ));
}

// ------------------------------------------------------------------------ regions
function regions(container, state, v, data, ctx) {
  const s = once(container, state, () => {
    const d = { controls: el("div", { class: "controls" }), plot: el("div", { class: "plot tall", id: "teacher-plot" }) };
    container.replaceChildren(card("Regions (leaves of the split tree), coloured by ALP", d.controls, d.plot));
    return d;
  });
  const { x, y, controls } = dimControls(v, ctx);
  s.controls.replaceChildren(...controls, el("span", { class: "note" },
    `${fmt(v.n_leaves)} leaf regions of ${fmt(v.n_regions)} (showing the ${v.regions.length} with the highest ALP)`));
  if (v.dims.length < 2) { empty(s.plot, "One-dimensional task space."); return; }
  const alps = v.regions.map((r) => r.alp ?? 0);
  const hi = Math.max(1e-12, ...alps);
  const shapes = v.regions.map((r) => ({
    type: "rect", x0: r.low[x], x1: r.high[x], y0: r.low[y], y1: r.high[y],
    line: { color: "rgba(17,24,39,0.5)", width: 1 }, fillcolor: color((r.alp ?? 0) / hi, 0.55), layer: "below",
  }));
  plot(s.plot, [{
    type: "scatter", mode: "markers",
    x: v.regions.map((r) => (r.low[x] + r.high[x]) / 2), y: v.regions.map((r) => (r.low[y] + r.high[y]) / 2),
    marker: { size: 6, color: alps, colorscale: "Viridis", cmin: 0, cmax: hi, showscale: true, colorbar: { title: { text: "ALP" } } },
    text: v.regions.map((r) => `ALP ${fmt(r.alp)}<br>${fmt(r.n_pairs)} pairs`), hoverinfo: "text", showlegend: false,
  }], {
    shapes,
    xaxis: axis(v.dims[x], { range: [v.low[x], v.high[x]] }),
    yaxis: axis(v.dims[y], { range: [v.low[y], v.high[y]] }),
  }, v.regions.length);
}

// ------------------------------------------------------------------------ scores
function scores(container, state, v) {
  const plr = v.teacher === "plr";
  const s = once(container, state, () => {
    const d = { plot: el("div", { class: "plot tall", id: "teacher-plot" }), list: el("div", { class: "scroll" }) };
    container.replaceChildren(el("div", { class: "cards" },
      card(plr ? "Level buffer: score, coloured by staleness" : "Learning progress per task, coloured by EMA success", d.plot),
      card(plr ? "Buffered levels (most likely replayed first)" : "Known tasks (highest LP first)", d.list)));
    return d;
  });
  const rows = v.rows.slice(0, 40).reverse();
  const val = (r) => (plr ? r.score : r.lp);
  const shade = (r) => (plr ? r.staleness : r.ema_success);
  if (!rows.length) empty(s.plot, "no tasks yet");
  else {
    plot(s.plot, [{
      type: "bar", orientation: "h", x: rows.map(val), y: rows.map((r, i) => i),
      marker: { color: rows.map(shade), colorscale: "Viridis", showscale: true, colorbar: { title: { text: plr ? "staleness" : "EMA success" } } },
      text: rows.map((r) => `${esc(r.task)}<br>${plr ? "score" : "LP"} ${fmt(val(r))}<br>P ${fmt(plr ? r.p_replay : r.p)}`),
      hoverinfo: "text", textposition: "none",
    }], {
      margin: { l: 220 }, xaxis: axis(plr ? "score" : "learning progress"),
      yaxis: { tickmode: "array", tickvals: rows.map((r, i) => i), ticktext: rows.map((r) => esc(clip(r.task, 34))), automargin: true },
    }, rows.length);
  }
  const cols = plr
    ? [{ key: "task", title: "level" }, { key: "score", title: "score", kind: "num" }, { key: "staleness", title: "staleness", kind: "num" },
       { key: "p_replay", title: "P(replay)", kind: "num" }, { key: "episodes", title: "episodes", kind: "num" }]
    : [{ key: "task", title: "task" }, { key: "lp", title: "LP", kind: "num" }, { key: "ema_success", title: "EMA success", kind: "num" },
       { key: "p", title: "P(sample)", kind: "num" }];
  s.list.replaceChildren(table(cols, v.rows));
}

// ------------------------------------------------------------------------ partition
function partition(container, state, v) {
  const s = once(container, state, () => {
    const d = { plot: el("div", { class: "plot tall", id: "teacher-plot" }), list: el("div", { class: "scroll" }), note: el("p", { class: "note" }) };
    container.replaceChildren(el("div", { class: "cards" },
      card("Tasks by EMA success; colour = partition", d.note, d.plot), card("Partition and the judge's reasons", d.list)));
    return d;
  });
  const c = v.counts || {};
  s.note.replaceChildren(`partition v${fmt(v.version)}: ${fmt(c.interesting)} interesting, ${fmt(c.boring)} boring, ${fmt(c.unlabelled)} unlabelled`);
  const rows = v.rows.slice(0, 40).reverse();
  const palette = { interesting: "#16a34a", boring: "#9ca3af", unlabelled: "#60a5fa" };
  if (!rows.length) empty(s.plot, "no tasks yet");
  else {
    plot(s.plot, [{
      type: "bar", orientation: "h", x: rows.map((r) => r.success), y: rows.map((r, i) => i),
      marker: { color: rows.map((r) => palette[r.label] || "#999") },
      text: rows.map((r) => `${esc(r.task)}<br>${r.label}<br>success ${fmt(r.success)} · P ${fmt(r.p)}${r.reason ? "<br>" + esc(clip(r.reason, 120)) : ""}`),
      hoverinfo: "text", textposition: "none",
    }], {
      margin: { l: 220 }, xaxis: axis("EMA success", { range: [0, 1] }),
      yaxis: { tickmode: "array", tickvals: rows.map((r, i) => i), ticktext: rows.map((r) => esc(clip(r.task, 34))), automargin: true },
    }, rows.length);
  }
  s.list.replaceChildren(table(
    [{ key: "task", title: "task" }, { key: "label", title: "partition", kind: "badge" }, { key: "success", title: "EMA success", kind: "num" },
     { key: "p", title: "P(sample)", kind: "num" }, { key: "reason", title: "judge's reason (boring)" }],
    v.rows,
  ));
}

// ------------------------------------------------------------------------ lineage
const FUNNEL = ["generated", "invalid", "duplicate", "infeasible", "out_of_band", "unpredicted", "over_quota", "admitted"];

function lineage(container, state, v, data) {
  const s = once(container, state, () => {
    const d = {
      tree: el("div", { class: "scroll", id: "lineage-tree" }), funnel: el("div", { class: "plot", id: "teacher-plot" }),
      history: el("div", { class: "plot", id: "phases-plot" }), recent: el("div", { class: "scroll" }), note: el("p", { class: "note" }),
    };
    container.replaceChildren(el("div", { class: "cards" },
      card("Task lineage (generated from failures)", d.note, d.tree),
      card("Last generation phase: what each stage rejected", d.funnel),
      card("Phases: admitted vs rejected", d.history),
      card("Latest admissions (predicted success at admission)", d.recent)));
    return d;
  });
  const gen = v.nodes.filter((n) => n.origin === "generated").length;
  s.note.replaceChildren(`pool ${fmt(v.pool)} tasks · ${fmt(v.phases)} phases · ${fmt(gen)} generated tasks shown with their ancestors`);
  s.tree.replaceChildren(tree(v.nodes));
  const ph = v.last_phase || {};
  const f = ph.funnel || {};
  if (!ph.funnel) empty(s.funnel, "No generation phase yet.");
  else {
    const ex = ph.examples || {};
    plot(s.funnel, [{
      type: "bar", x: FUNNEL.map((k) => k.replace(/_/g, " ")), y: FUNNEL.map((k) => f[k] || 0),
      marker: { color: FUNNEL.map((k) => (k === "admitted" ? "#16a34a" : k === "generated" ? "#2563eb" : "#f59e0b")) },
      text: FUNNEL.map((k) => (ex[k] ? esc(clip(ex[k], 140)) : "")), hoverinfo: "x+y+text", textposition: "none",
    }], { yaxis: axis("candidates"), margin: { b: 70 } });
  }
  const phases = data.phases || [];
  if (!phases.length) empty(s.history, "No generation phase yet.");
  else {
    const xs = phases.map((p) => p.phase);
    const rejected = FUNNEL.filter((k) => k !== "generated" && k !== "admitted");
    plot(s.history, [
      { type: "bar", name: "admitted", x: xs, y: phases.map((p) => p.funnel.admitted || 0), marker: { color: "#16a34a" } },
      ...rejected.map((k) => ({ type: "bar", name: k.replace(/_/g, " "), x: xs, y: phases.map((p) => p.funnel[k] || 0) })),
    ], { barmode: "stack", xaxis: axis("phase"), yaxis: axis("candidates") });
  }
  s.recent.replaceChildren(table(
    [{ key: "task", title: "admitted task" }, { key: "predicted", title: "predicted success", kind: "num" }, { key: "parents", title: "from (parent ids)" }],
    (v.recent || []).slice().reverse().map((r) => ({ ...r, parents: (r.parents || []).join(", ") })),
  ));
}

function tree(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, { ...n, children: [] }]));
  const roots = [];
  for (const n of byId.values()) {
    const parent = (n.parents || []).map((p) => byId.get(p)).find(Boolean);
    (parent ? parent.children : roots).push(n);
  }
  const item = (n) => el("li", {},
    el("span", { class: "node" }, n.task),
    " ", el("span", { class: "badge " + (n.origin === "generated" ? "interesting" : "") }, n.origin),
    el("span", { class: "note" }, ` success ${fmt(n.success)} · ${fmt(n.attempts)} attempts`),
    n.children.length ? el("ul", { class: "tree" }, n.children.map(item)) : null);
  return el("ul", { class: "tree" }, roots.map(item));
}

const RENDERERS = { gmm, regions, scores, partition, lineage };
