"""The status page: one self-contained HTML document (inline CSS and JS, nothing from a CDN).

Role: ``GET /`` serves `page_html()`. Its script fetches ``/api/history`` every 2 s and draws, per
connector, a table row (type, state, events/s, lag, dead letters) and two SVG line charts over the
kept samples: lag in seconds and throughput in events/s. Everything is built with DOM calls and
``textContent``, never ``innerHTML`` with data, so a connector name cannot inject markup.

Failure story: when a fetch fails the page keeps its last picture and shows the error in a banner; the
next refresh retries. When the server requires a bearer token (401) the page shows a token field; the
token is kept in the tab's ``sessionStorage`` only. Opening ``/#token=...`` passes it too (a fragment is
never sent to a server, so it stays out of access logs) and the page removes it from the address bar.
The page's own elements carry ``data-*`` attributes the browser test reads.
"""

from __future__ import annotations

from typing import Final

__all__ = ["REFRESH_MS", "page_html"]

REFRESH_MS: Final = 2000

_CSS = """
:root { --fg: #1d2430; --muted: #6b7280; --line: #d8dde6; --ok: #16794c; --warn: #a15c00; --bad: #b42318;
        --lag: #2f6fdf; --rate: #0e9f6e; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0;
       background: #f6f7f9; }
header { display: flex; align-items: baseline; gap: 1rem; padding: .8rem 1.2rem; background: #fff;
         border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.1rem; margin: 0; }
#updated { color: var(--muted); font-size: .85rem; }
main { padding: 1rem 1.2rem; }
#banner { display: none; margin: 0 0 1rem; padding: .6rem .8rem; border-radius: 4px; background: #fde8e7;
          color: var(--bad); }
#banner.shown { display: block; }
#auth { display: none; margin: 0 0 1rem; }
#auth.shown { display: flex; gap: .5rem; align-items: center; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .4rem .7rem; border-bottom: 1px solid var(--line); }
th { font-weight: 600; color: var(--muted); font-size: .8rem; text-transform: uppercase; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.state { font-weight: 600; }
.state-RUNNING { color: var(--ok); } .state-PAUSED, .state-STOPPED, .state-UNASSIGNED { color: var(--warn); }
.state-FAILED { color: var(--bad); }
#charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 1rem; margin-top: 1rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 4px; padding: .6rem .8rem; }
.card h2 { font-size: .95rem; margin: 0 0 .4rem; }
.card h2 small { color: var(--muted); font-weight: normal; }
figure { margin: 0 0 .4rem; }
figcaption { font-size: .8rem; color: var(--muted); }
svg { width: 100%; height: auto; display: block; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg text { fill: var(--muted); font-size: 10px; }
svg path.line { fill: none; stroke-width: 1.8; stroke-linejoin: round; }
svg[data-series="lag_seconds"] path.line { stroke: var(--lag); }
svg[data-series="events_per_second"] path.line { stroke: var(--rate); }
.empty { color: var(--muted); font-style: italic; }
"""

_JS = """
(function () {
  "use strict";
  const REFRESH_MS = __REFRESH_MS__;
  const SVG = "http://www.w3.org/2000/svg";
  const W = 440, H = 130, PAD_L = 44, PAD_R = 8, PAD_T = 8, PAD_B = 18;
  const KEY = "cdc-admin-token";
  let refreshes = 0;

  // A token in the fragment (#token=...) is stored for this tab and removed from the address bar.
  (function takeToken() {
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
  })();

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmtNum(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return "\\u2013";
    if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + "k";
    return v.toFixed(digits);
  }
  function fmtSeconds(v) {
    if (v === null || v === undefined || !isFinite(v)) return "\\u2013";
    if (v < 120) return v.toFixed(1) + " s";
    if (v < 7200) return (v / 60).toFixed(1) + " min";
    return (v / 3600).toFixed(1) + " h";
  }
  function fmtBytes(v) {
    if (v == null) return "\u2014";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : String(v)) + " " + units[i];
  }
  // A round upper bound for the y axis (1, 2 or 5 times a power of ten).
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function chart(name, series, label, ts, values, fmt) {
    const fig = el("figure", {"data-connector": name, "data-series": series});
    const svg = svgEl("svg", {viewBox: "0 0 " + W + " " + H, role: "img", "data-series": series,
                              "aria-label": label + " of " + name});
    const known = values.filter(v => v !== null && isFinite(v));
    const ymax = niceMax(Math.max(0, ...known));
    const t0 = ts.length ? ts[0] : 0, t1 = ts.length ? ts[ts.length - 1] : 1;
    const span = Math.max(t1 - t0, 1e-9);
    const x = t => PAD_L + (ts.length > 1 ? (t - t0) / span : 1) * (W - PAD_L - PAD_R);
    const y = v => PAD_T + (1 - v / ymax) * (H - PAD_T - PAD_B);
    for (const f of [0, 0.5, 1]) {
      const gy = y(ymax * f);
      svg.appendChild(svgEl("line", {class: "grid", x1: PAD_L, x2: W - PAD_R, y1: gy, y2: gy}));
      svg.appendChild(svgEl("text", {x: PAD_L - 4, y: gy + 3, "text-anchor": "end"}, fmt(ymax * f)));
    }
    if (ts.length > 1) {
      const mins = (t1 - t0) / 60;
      svg.appendChild(svgEl("text", {x: PAD_L, y: H - 4}, "-" + (mins >= 1 ? mins.toFixed(0) + " min" :
                                                                 (t1 - t0).toFixed(0) + " s")));
      svg.appendChild(svgEl("text", {x: W - PAD_R, y: H - 4, "text-anchor": "end"}, "now"));
    }
    // Unknown values (null lag before the first event) break the line instead of drawing a zero.
    let d = "", pen = false, last = null;
    for (let i = 0; i < ts.length; i++) {
      const v = values[i];
      if (v === null || !isFinite(v)) { pen = false; continue; }
      d += (pen ? "L" : "M") + x(ts[i]).toFixed(1) + "," + y(v).toFixed(1);
      pen = true; last = [x(ts[i]), y(v)];
    }
    if (d) {
      svg.appendChild(svgEl("path", {class: "line", d: d}));
      svg.appendChild(svgEl("circle", {cx: last[0].toFixed(1), cy: last[1].toFixed(1), r: 2.5,
                                       fill: series === "lag_seconds" ? "#2f6fdf" : "#0e9f6e"}));
    } else {
      svg.appendChild(svgEl("text", {x: W / 2, y: H / 2, "text-anchor": "middle"}, "no data yet"));
    }
    fig.appendChild(svg);
    const now = known.length ? known[known.length - 1] : null;
    fig.appendChild(el("figcaption", {}, label + ": " + fmt(now)));
    return fig;
  }

  function render(data) {
    const rows = [], cards = [];
    for (const c of data.connectors) {
      const tr = el("tr", {"data-name": c.name, "data-state": c.state});
      tr.appendChild(el("td", {}, c.name));
      tr.appendChild(el("td", {}, c.type));
      // A failure's text is a tooltip on the state: the table stays one line per connector.
      tr.appendChild(el("td", Object.assign({class: "state state-" + c.state},
                                            c.trace ? {title: c.trace} : {}), c.state));
      tr.appendChild(el("td", {class: "num", "data-field": "events_per_second"}, fmtNum(c.events_per_second, 1)));
      tr.appendChild(el("td", {class: "num", "data-field": "lag_seconds"}, fmtSeconds(c.lag_seconds)));
      tr.appendChild(el("td", {class: "num", "data-field": "dead_letters"}, String(c.dead_letters)));
      // Behind: a source's change log not yet confirmed, a sink's journal records not yet delivered.
      const behind = c.type === "source" ? fmtBytes(c.lag_bytes)
                   : (c.journal_depth == null ? "\u2014" : c.journal_depth + " records");
      tr.appendChild(el("td", {class: "num", "data-field": "behind"}, behind));
      rows.push(tr);
      const card = el("section", {class: "card", "data-connector": c.name});
      const h = el("h2", {}, c.name + " ");
      h.appendChild(el("small", {}, c.type + " \\u00b7 " + c.state));
      card.appendChild(h);
      const s = c.series;
      card.appendChild(chart(c.name, "lag_seconds", "Lag", s.t, s.lag_seconds, fmtSeconds));
      card.appendChild(chart(c.name, "events_per_second", "Throughput (events/s)", s.t, s.events_per_second,
                             v => fmtNum(v, 1)));
      cards.push(card);
    }
    document.querySelector("#connectors tbody").replaceChildren(...rows);
    document.getElementById("none").hidden = rows.length > 0;
    document.getElementById("charts").replaceChildren(...cards);
    document.getElementById("updated").textContent =
      "worker " + data.worker_id + " \\u00b7 updated " + new Date(data.now * 1000).toLocaleTimeString();
  }

  function banner(text) {
    const b = document.getElementById("banner");
    b.textContent = text || "";
    b.classList.toggle("shown", !!text);
  }

  async function refresh() {
    try {
      const headers = {"Accept": "application/json"};
      const token = sessionStorage.getItem(KEY);
      if (token) headers["Authorization"] = "Bearer " + token;
      const r = await fetch("api/history", {headers: headers, cache: "no-store"});
      document.getElementById("auth").classList.toggle("shown", r.status === 401);
      if (!r.ok) {
        let msg = "HTTP " + r.status;
        try { msg = (await r.json()).message || msg; } catch (e) { /* not JSON: keep the status */ }
        banner(msg);
        return;
      }
      render(await r.json());
      banner("");
      refreshes += 1;
      document.body.dataset.refreshes = String(refreshes);
    } catch (e) {
      banner("Cannot reach the bridge: " + e);
    } finally {
      // The next refresh is scheduled after this one finished: a slow server never gets a pile-up.
      setTimeout(refresh, REFRESH_MS);
    }
  }

  document.getElementById("auth").addEventListener("submit", ev => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, document.getElementById("token").value);
    document.getElementById("token").value = "";
  });
  refresh();
})();
"""

_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>erp-cdc-bridge status</title>
<style>__CSS__</style>
</head>
<body data-refreshes="0">
<header><h1>erp-cdc-bridge</h1><span id="updated">loading\u2026</span></header>
<main>
<div id="banner" role="alert"></div>
<form id="auth"><label for="token">This server requires a token:</label>
<input id="token" type="password" autocomplete="off"><button type="submit">Use</button></form>
<table id="connectors">
<thead><tr><th>Connector</th><th>Type</th><th>State</th><th>Events/s</th><th>Lag</th><th>Dead letters</th>
<th>Behind</th></tr></thead>
<tbody></tbody>
</table>
<p id="none" class="empty" hidden>No connectors.</p>
<div id="charts"></div>
</main>
<script>__JS__</script>
</body>
</html>
"""

_PAGE: Final = (_HTML.replace("__CSS__", _CSS)
                .replace("__JS__", _JS.replace("__REFRESH_MS__", str(REFRESH_MS))))


def page_html() -> str:
    """The status page (the same text every time: it holds no data, its script fetches it)."""
    return _PAGE
