// The dashboard's single-page app: routes (#/, #/latest, #/run/<id>/<tab>?cur=&student=),
// the runs table, the run page's header and tabs, and live updates over server-sent events.
import { el, fmt, fmtAgo, fmtDuration, fmtPct, table } from "/static/charts.js";
import { api, parseRoute, runHref, setParams } from "/static/api.js";
import { TABS } from "/static/pages.js";

const app = document.getElementById("app");
const crumbs = document.getElementById("crumbs");
const live = document.getElementById("live");
let stream = null;
let streamUrl = null;
let busy = false;
let again = false;
let renderSeq = 0;
let shownVersion = null; // the run's data version last drawn (from /api/summary)

function listen(url) {
  if (streamUrl === url) return;
  if (stream) stream.close();
  streamUrl = url;
  stream = new EventSource(url);
  stream.addEventListener("open", () => { live.textContent = "live"; live.classList.add("on"); });
  stream.addEventListener("error", () => { live.textContent = "reconnecting"; live.classList.remove("on"); });
  stream.addEventListener("update", (e) => {
    // The stream's first event describes what the page just drew: skip it.
    const v = JSON.parse(e.data || "{}").version;
    if (v === undefined || v !== shownVersion) refresh();
  });
}

// One render at a time; an update arriving meanwhile triggers one more afterwards.
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    do {
      again = false;
      await render(++renderSeq);
    } while (again);
  } finally {
    busy = false;
  }
}

async function render(seq) {
  const r = parseRoute();
  try {
    if (r.page === "latest") {
      const { id } = await api("latest");
      location.replace(id ? runHref(id, "curriculum") : "#/");
      return;
    }
    if (r.page === "runs") {
      shownVersion = null;
      listen("/api/stream");
      await renderRuns();
    } else {
      listen(`/api/stream?run=${encodeURIComponent(r.run)}`);
      await renderRun(r);
    }
    document.body.dataset.rendered = String(seq);
  } catch (err) {
    app.replaceChildren(el("p", { class: "error" }, `Could not load: ${err.message}`));
  }
}

async function renderRuns() {
  const data = await api("runs");
  crumbs.replaceChildren(el("span", {}, `runs in ${data.root}`));
  const rows = data.runs.map((r) => ({ ...r, state: r.stale ? "stale" : r.state }));
  const t = table(
    [
      { key: "link", title: "run" },
      { key: "state", title: "status", kind: "badge" },
      { key: "teacher", title: "teacher" },
      { key: "env", title: "env family" },
      { key: "progress", title: "iteration" },
      { key: "env_steps", title: "env steps", kind: "num" },
      { key: "episodes", title: "episodes", kind: "num" },
      { key: "wall_s", title: "wall time", kind: "num", fmt: fmtDuration },
      { key: "mastered", title: "mastered", kind: "pct" },
      { key: "ago", title: "last update" },
    ],
    rows.map((r) => ({
      ...r,
      progress: `${fmt(r.iteration)} / ${fmt(r.iterations)}`,
      ago: fmtAgo(r.last_update),
    })),
  );
  // Links are built here (the table helper writes text only).
  const links = t.querySelectorAll("tbody tr");
  rows.forEach((r, i) => {
    const cell = links[i].firstChild;
    cell.replaceChildren(el("a", { href: runHref(r.id, "curriculum") }, r.id));
  });
  app.replaceChildren(
    el("h1", {}, "Runs"),
    data.runs.length ? t : el("p", { class: "muted" }, "No run directories here yet (a run directory holds config.yaml)."),
  );
}

async function renderRun(r) {
  const sum = await api("summary", { run: r.run });
  shownVersion = sum.version;
  const curs = sum.curricula.map((c) => c.name);
  const cur = r.params.cur && curs.includes(r.params.cur) ? r.params.cur : curs[0];
  crumbs.replaceChildren(el("a", { href: "#/" }, "runs"), " / ", el("span", {}, sum.dir));
  const state = sum.stale ? "stale" : sum.state;
  const facts = el(
    "div", { class: "facts" },
    fact("status", el("span", { class: `badge ${state}` }, state)),
    fact("teacher", (sum.teacher ?? "–") + (sum.preset ? ` (${sum.preset})` : "")),
    fact("env family", sum.env),
    fact("algo", sum.algo),
    fact("seed", sum.seed),
    fact("students", (sum.students || []).join(", ")),
    fact("iteration", `${fmt(sum.iteration)} / ${fmt(sum.iterations)}`),
    fact("env steps", fmt(sum.env_steps)),
    fact("episodes", fmt(sum.episodes)),
    fact("wall time", fmtDuration(sum.wall_s)),
    fact("mastered", fmtPct(sum.mastered)),
    fact("last update", fmtAgo(sum.last_update)),
  );
  const tabs = el("nav", { class: "tabs" }, Object.entries(TABS).map(([key, t]) =>
    el("a", { href: runHref(r.run, key, r.params), class: key === r.tab ? "active" : "" }, t.title)));
  const curPick = curs.length > 1
    ? el("label", {}, "curriculum ", el("select", { onchange: (e) => setParams({ cur: e.target.value }) },
        curs.map((c) => el("option", { value: c, selected: c === cur }, c))))
    : null;
  const tab = TABS[r.tab] || TABS.curriculum;
  // Keep the tab's container (and its charts) across live updates: only its data changes.
  const key = JSON.stringify([r.run, r.tab, cur]);
  let body = app.querySelector("section[data-key]");
  if (!body || body.dataset.key !== key) {
    body = el("section", { dataset: { key } });
    app.replaceChildren(el("h1", {}, sum.name || sum.dir), el("div", { id: "facts" }), el("div", { id: "tabbar" }), body);
  }
  app.querySelector("#facts").replaceChildren(facts);
  app.querySelector("#tabbar").replaceChildren(tabs, curPick || "");
  await tab.render(body, { run: r.run, cur, params: r.params, summary: sum });
}

function fact(name, value) {
  return el("span", {}, `${name}: `, el("b", {}, value ?? "–"));
}

window.addEventListener("hashchange", () => refresh());
window.addEventListener("oe-refresh", () => refresh());
refresh();
