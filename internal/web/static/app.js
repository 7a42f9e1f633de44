// tokenledger dashboard: reads GET /api/test and GET
// /api/tokens?action=range&days=N, and draws the page. The range lives in
// the URL (?days=30); a read key, when the server wants one, lives in this
// tab's sessionStorage and goes out as Authorization: Bearer.
"use strict";
(function () {
  const $ = id => document.getElementById(id);
  const RANGES = [7, 30, 90];
  const KEY = "tokenledger.readKey";
  const REFRESH_MS = 30000;
  let data = null, status = null, loading = false, lastLoad = 0;

  function rangeDays() {
    const d = Number(new URLSearchParams(location.search).get("days"));
    return RANGES.includes(d) ? d : 7;
  }

  // api fetches a JSON answer; a 401/403 from the read key is {auth}.
  async function api(path, opts) {
    const headers = Object.assign({ Accept: "application/json" }, (opts && opts.headers) || {});
    const key = sessionStorage.getItem(KEY);
    if (key && !headers.Authorization) headers.Authorization = "Bearer " + key;
    const res = await fetch(path, Object.assign({}, opts, { headers, cache: "no-store" }));
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    return { status: res.status, body };
  }

  function text(node, s) { node.textContent = s; return node; }
  function cell(tr, s, cls, title) {
    const td = text(document.createElement("td"), s);
    if (cls) td.className = cls;
    if (title) td.title = title;
    tr.appendChild(td);
    return td;
  }

  // load reads both answers and redraws; overlapping calls are dropped.
  async function load() {
    if (loading) return;
    loading = true;
    try {
      const [t, r] = await Promise.all([api("/api/test"), api("/api/tokens?action=range&days=" + rangeDays())]);
      status = t.body;
      renderStatus();
      if (r.status === 401 || r.status === 403) {
        const had = sessionStorage.getItem(KEY);
        sessionStorage.removeItem(KEY);
        showKeyForm(had ? (r.body && r.body.error) || "That key was refused." : "");
        return;
      }
      if (r.status !== 200 || !r.body) {
        showError((r.body && r.body.error) || "The usage request failed with HTTP " + r.status + ".");
        return;
      }
      $("error").hidden = true;
      $("keyform").hidden = true;
      data = r.body;
      lastLoad = Date.now();
      render();
    } catch (e) {
      showError("Cannot reach the server: " + e.message);
    } finally {
      loading = false;
    }
  }

  function showError(msg) { const e = $("error"); e.hidden = false; text(e, msg); }

  function showKeyForm(err) {
    $("main").hidden = true;
    $("empty").hidden = true;
    $("keyform").hidden = false;
    const e = $("keyerror");
    e.hidden = !err;
    text(e, err || "");
    $("readkey").focus();
  }

  const KINDS = { file: "Local file", memory: "Memory", redis: "Redis", "kv-rest": "Vercel KV / Upstash REST" };

  function renderStatus() {
    const s = status, box = $("status");
    box.replaceChildren();
    if (!s || !s.database) { text(box, "Status unavailable."); return; }
    const item = (label, value, dot) => {
      const span = document.createElement("span");
      if (dot !== undefined) { const d = document.createElement("i"); d.className = "dot " + dot; span.appendChild(d); }
      span.append(label + ": ");
      span.appendChild(text(document.createElement("b"), value));
      box.appendChild(span);
    };
    const db = s.database;
    let kind = KINDS[db.kind] || db.kind;
    if (db.kind === "redis" && db.cluster) kind = "Redis Cluster";
    item("Storage", kind);
    const ok = db.connected;
    const what = db.configured ? "Database" : "Storage check";
    item(what, ok ? (db.configured ? "reachable" : "ok") + " (" + db.latencyMs + " ms)" : "failing: " + (db.error || "unknown"), ok ? "" : "bad");
    const fb = s.fallback || {};
    item("Fallback", fb.active ? "active, " + TL.int(fb.pendingEvents) + " events waiting" : fb.pendingEvents ? TL.int(fb.pendingEvents) + " events waiting" : "off", fb.active ? "warn" : undefined);
    const env = s.environment || {};
    item("Environment", env.isVercel ? "Vercel" + (env.vercelEnv ? " (" + env.vercelEnv + (env.region ? ", " + env.region : "") + ")" : "") : "local");
    item("Version", s.version || "?");
    $("reset").hidden = !s.resetEnabled;
  }

  function render() {
    const d = data, n = d.history.length;
    const empty = d.stats.totalRequests === 0;
    $("empty").hidden = !empty;
    $("main").hidden = empty;
    text($("curl"), "curl -X POST " + location.origin + "/api/tokens \\\n  -H 'Content-Type: application/json' \\\n" +
      "  -d '{\"model\":\"gpt-4o\",\"promptTokens\":1200,\"completionTokens\":300,\"userId\":\"alice\"}'");
    text($("updated"), "Updated " + d.timestamp.slice(11, 19) + " UTC.");
    document.querySelectorAll(".range a").forEach(a => {
      if (Number(a.dataset.days) === n) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
    if (empty) { performance.mark("tokenledger-rendered"); return; }
    renderToday(d.history[n - 1], n > 1 ? d.history[n - 2] : null);
    text($("daily-range"), d.history[0].date + " to " + d.history[n - 1].date + " (UTC)");
    TL.daily($("daily-chart"), d.history, showTip);
    renderDailyTable(d.history);
    renderModels(d.models);
    renderUsers();
    renderStats(d.stats);
    performance.mark("tokenledger-rendered");
  }

  // delta says how today compares with yesterday.
  function delta(now, before) {
    if (before === null) return ["", ""];
    if (before === 0) return now === 0 ? ["same as yesterday", ""] : ["new today", "up"];
    const p = ((now - before) / before) * 100;
    if (p === 0) return ["same as yesterday", ""];
    return [(p > 0 ? "▲ " : "▼ ") + Math.abs(p).toFixed(Math.abs(p) < 10 ? 1 : 0) + " % vs yesterday", p > 0 ? "up" : "down"];
  }

  function renderToday(t, y) {
    text($("today-date"), t.date + " (UTC)");
    const box = $("today");
    box.replaceChildren();
    for (const [id, label, key, fmt] of [
      ["tokens", "Tokens", "totalTokens", TL.int], ["requests", "Requests", "requestCount", TL.int],
      ["users", "Users", "uniqueUsers", TL.int], ["sessions", "Sessions", "uniqueSessions", TL.int],
      ["cost", "Cost", "costUsd", TL.usd]]) {
      const m = document.createElement("div");
      m.className = "metric";
      m.id = "today-" + id;
      text(m.appendChild(document.createElement("div")), label).className = "label";
      const v = text(m.appendChild(document.createElement("div")), fmt(t[key]));
      v.className = "value";
      if (key === "costUsd") v.title = TL.usdExact(t[key]);
      const [s, cls] = delta(t[key], y ? y[key] : null);
      text(m.appendChild(document.createElement("div")), s).className = "delta " + cls;
      box.appendChild(m);
    }
  }

  function renderDailyTable(days) {
    const body = $("daily-table").tBodies[0];
    body.replaceChildren();
    for (let i = days.length - 1; i >= 0; i--) {
      const d = days[i], tr = body.insertRow();
      tr.dataset.date = d.date;
      cell(tr, d.date);
      cell(tr, TL.int(Math.max(0, d.promptTokens - d.cacheReadTokens)));
      cell(tr, TL.int(d.cacheReadTokens));
      cell(tr, TL.int(d.completionTokens));
      cell(tr, TL.int(d.totalTokens));
      cell(tr, TL.int(d.requestCount));
      cell(tr, TL.int(d.uniqueUsers));
      cell(tr, TL.usd(d.costUsd), "", TL.usdExact(d.costUsd));
    }
  }

  // byCost orders rows by cost, then tokens, then name.
  function byCost(a, b) {
    const ka = a.model !== undefined ? a.model : a.userId, kb = b.model !== undefined ? b.model : b.userId;
    return b.costUsd - a.costUsd || b.totalTokens - a.totalTokens || (ka < kb ? -1 : ka > kb ? 1 : 0);
  }

  function share(m, total) { return total > 0 ? (100 * m.costUsd) / total : 0; }

  TL.byCost = byCost;

  function renderModels(models) {
    const rows = models.slice().sort(byCost);
    const total = rows.reduce((s, m) => s + m.costUsd, 0);
    const byTokens = total === 0;
    TL.bars($("models-chart"), rows.slice(0, 20).map(m => ({
      label: m.model, value: byTokens ? m.totalTokens : m.costUsd, flag: m.pricing && m.pricing.unpriced > 0,
      text: byTokens ? TL.short(m.totalTokens) + " tokens" : TL.usd(m.costUsd) })));
    const body = $("models-table").tBodies[0];
    body.replaceChildren();
    for (const m of rows) {
      const tr = body.insertRow();
      tr.dataset.model = m.model;
      cell(tr, m.model);
      cell(tr, TL.int(m.requestCount));
      cell(tr, TL.int(m.totalTokens));
      cell(tr, TL.usd(m.costUsd), "", TL.usdExact(m.costUsd));
      cell(tr, share(m, total).toFixed(1) + " %");
      const un = m.pricing ? m.pricing.unpriced : 0;
      cell(tr, un ? "⚠ " + TL.int(un) + " unpriced" : "", un ? "flag" : "", un ? "No price for these requests: their cost counts as 0" : "");
    }
  }

  function renderUsers() {
    const q = $("usersearch").value.trim().toLowerCase();
    const all = data.users.slice().sort(byCost);
    const match = q ? all.filter(u => u.userId.toLowerCase().includes(q)) : all;
    const shown = match.slice(0, 50);
    const body = $("users-table").tBodies[0];
    body.replaceChildren();
    for (const u of shown) {
      const tr = body.insertRow();
      tr.dataset.user = u.userId;
      cell(tr, u.userId);
      cell(tr, TL.int(u.requestCount));
      cell(tr, TL.int(u.totalTokens));
      cell(tr, TL.usd(u.costUsd), "", TL.usdExact(u.costUsd));
    }
    text($("users-note"), all.length === 0 ? "No event in this range has a userId." :
      "Showing " + TL.int(shown.length) + " of " + TL.int(match.length) + (q ? " matching" : "") + " users (" + TL.int(all.length) + " in the range; the CSV has all).");
  }

  function renderStats(s) {
    text($("stats-window"), s.firstDate ? "(" + s.firstDate + " to " + s.lastDate + ", the retained window)" : "");
    const box = $("stats");
    box.replaceChildren();
    for (const [id, label, v] of [
      ["total-tokens", "Total tokens", TL.int(s.totalTokensAllTime)], ["total-requests", "Requests", TL.int(s.totalRequests)],
      ["avg", "Average tokens per request", TL.int(s.avgTokensPerRequest)], ["days", "Days tracked", TL.int(s.daysTracked)],
      ["most-active", "Most active day", s.mostActiveDate || "—"], ["total-cost", "Total cost", TL.usd(s.totalCostUsd)],
      ["top-model", "Top model", s.topModel || "—"]]) {
      const div = box.appendChild(document.createElement("div"));
      div.id = "stat-" + id;
      text(div.appendChild(document.createElement("dt")), label);
      text(div.appendChild(document.createElement("dd")), v);
    }
  }

  function showTip(i, x, y) {
    const tip = $("tip");
    if (i < 0) { tip.hidden = true; return; }
    const d = data.history[i];
    tip.replaceChildren(text(document.createElement("b"), d.date + " (UTC)"));
    const t = tip.appendChild(document.createElement("table"));
    for (const [k, v] of [["Prompt, uncached", TL.int(Math.max(0, d.promptTokens - d.cacheReadTokens))], ["Cache read", TL.int(d.cacheReadTokens)],
      ["Completion", TL.int(d.completionTokens)], ["Total tokens", TL.int(d.totalTokens)], ["Requests", TL.int(d.requestCount)],
      ["Cost", TL.usdExact(d.costUsd)]]) {
      const tr = t.insertRow();
      text(tr.insertCell(), k);
      text(tr.insertCell(), v);
    }
    tip.hidden = false;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.max(4, Math.min(innerWidth - w - 4, x + 12)) + "px";
    tip.style.top = Math.max(4, Math.min(innerHeight - h - 4, y - h - 12)) + "px";
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".range a").forEach(a => a.addEventListener("click", ev => {
      ev.preventDefault();
      history.pushState(null, "", "?days=" + a.dataset.days);
      load();
    }));
    addEventListener("popstate", load);
    let resizing = 0;
    addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => {
        if (!data || $("main").hidden) return;
        TL.daily($("daily-chart"), data.history, showTip);
        renderModels(data.models);
      }, 150);
    });
    $("refresh").addEventListener("click", load);
    $("usersearch").addEventListener("input", () => data && renderUsers());
    $("keyformform").addEventListener("submit", ev => {
      ev.preventDefault();
      sessionStorage.setItem(KEY, $("readkey").value);
      $("readkey").value = "";
      load();
    });
    document.querySelectorAll("button.csv").forEach(b => b.addEventListener("click", () => data && TL.csv(b.dataset.csv, data)));
    TL.wireReset(load);
    setInterval(() => { if (!document.hidden && $("auto").checked) load(); }, REFRESH_MS);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && $("auto").checked && Date.now() - lastLoad >= REFRESH_MS) load();
    });
    load();
  });
})();
