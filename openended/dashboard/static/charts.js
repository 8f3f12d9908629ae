// DOM and Plotly helpers. Text from runs (task texts, judge reasons, names) is data: it
// reaches the page only as text nodes (el/text below) or, inside Plotly, through esc()
// (Plotly reads a few HTML-like tags and entities in labels and hover text).

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// Plotly-safe text: '&', '<', '>' become entities Plotly shows literally.
export function esc(s) {
  return String(s ?? "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export function clip(s, n = 60) {
  s = String(s ?? "");
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

export function fmt(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString("en-US");
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return v.toLocaleString("en-US", { maximumSignificantDigits: digits + 1 });
}

export function fmtPct(v) {
  return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%";
}

export function fmtDuration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
}

export function fmtAgo(t) {
  if (!t) return "–";
  const d = Date.now() / 1000 - t;
  if (d < 5) return "just now";
  return fmtDuration(d) + " ago";
}

// Plotly loads in parallel with the page's first API calls (async script); drawing waits for it.
export const plotlyReady = new Promise((resolve) => {
  if (window.Plotly) return resolve();
  const tag = document.getElementById("plotly-js");
  const check = () => (window.Plotly ? (performance.mark("oe-plotly-ready"), resolve()) : setTimeout(check, 20));
  if (tag) tag.addEventListener("load", check);
  check();
});

const CONFIG = { responsive: true, displaylogo: false, scrollZoom: false };
const BASE = {
  margin: { l: 60, r: 20, t: 30, b: 45 },
  font: { size: 12 },
  paper_bgcolor: "rgba(0,0,0,0)",
  plot_bgcolor: "#fff",
  hovermode: "closest",
  uirevision: "keep", // zoom and pan survive live updates
  legend: { orientation: "h", y: -0.18 },
};

export function plot(div, traces, layout = {}, points = null) {
  if (!window.Plotly) {
    div.replaceChildren(el("p", { class: "error" }, "plotly.min.js did not load"));
    return;
  }
  const merged = { ...BASE, ...layout, margin: { ...BASE.margin, ...(layout.margin || {}) } };
  window.Plotly.react(div, traces, merged, CONFIG);
  const n = points ?? traces.reduce((a, t) => a + countPoints(t), 0);
  div.dataset.points = String(n);
  performance.mark(`oe-plotted-${div.id}`);
}

function countPoints(t) {
  if (t.z) return t.z.flat().reduce((a, v) => a + (typeof v === "number" ? v : 0), 0);
  return (t.y || t.x || []).length;
}

export function axis(title, extra = {}) {
  return { title: { text: esc(title) }, zeroline: false, gridcolor: "#eef0f3", ...extra };
}

// Lines of {name, x, y}; nulls leave gaps.
export function lines(div, series, xTitle, yTitle, layout = {}) {
  const traces = series
    .filter((s) => s.y && s.y.some((v) => v !== null && v !== undefined))
    .map((s) => ({
      type: "scatter", mode: s.mode || "lines", name: esc(s.name), x: s.x, y: s.y,
      line: { width: 2, ...(s.line || {}) }, connectgaps: false, yaxis: s.yaxis,
    }));
  if (!traces.length) {
    empty(div, "no data yet");
    return;
  }
  plot(div, traces, { xaxis: axis(xTitle), yaxis: axis(yTitle), showlegend: traces.length > 1, ...layout });
}

export function empty(div, message) {
  if (window.Plotly && div.data) window.Plotly.purge(div);
  div.replaceChildren(el("p", { class: "muted" }, message));
  div.dataset.points = "0";
}

// Viridis-like colour for t in [0, 1] (shapes need explicit colours).
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
export function color(t, alpha = 1) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const c = STOPS[i].map((v, k) => Math.round(v + f * (STOPS[i + 1][k] - v)));
  return `rgba(${c[0]},${c[1]},${c[2]},${alpha})`;
}

export function table(columns, rows) {
  // columns: [{key, title, kind: "num"|"text"|"pct"|"badge", fmt?}]
  const head = el("tr", {}, columns.map((c) => el("th", {}, c.title)));
  const body = rows.map((r) =>
    el("tr", {}, columns.map((c) => {
      const v = r[c.key];
      if (c.kind === "badge") return el("td", {}, el("span", { class: "badge " + String(v).replace(/[^a-z_]/gi, "") }, v));
      if (c.kind === "num") return el("td", { class: "num" }, c.fmt ? c.fmt(v) : fmt(v));
      if (c.kind === "pct") return el("td", { class: "num" }, fmtPct(v));
      return el("td", { class: "text" }, v ?? "");
    })),
  );
  return el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, body));
}
