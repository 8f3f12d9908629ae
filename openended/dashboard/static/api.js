// Fetching the JSON API and moving between views (the route lives in location.hash).

export async function api(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const res = await fetch(`/api/${path}${q.toString() ? "?" + q : ""}`, { credentials: "same-origin" });
  const body = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

export function parseRoute() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  const params = Object.fromEntries(new URLSearchParams(query));
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "latest") return { page: "latest", params };
  if (parts[0] === "run" && parts[1]) {
    return { page: "run", run: decodeURIComponent(parts[1]), tab: parts[2] || "curriculum", params };
  }
  return { page: "runs", params };
}

export function runHref(run, tab, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ""));
  return `#/run/${encodeURIComponent(run)}/${tab}${q.toString() ? "?" + q : ""}`;
}

// Change the current run view's parameters (a picker, a slider) and redraw.
export function setParams(patch) {
  const r = parseRoute();
  if (r.page !== "run") return;
  history.replaceState(null, "", runHref(r.run, r.tab, { ...r.params, ...patch }));
  window.dispatchEvent(new Event("oe-refresh"));
}
