// The status page: polls /status.json once a second and redraws. Text goes in with
// textContent only (peer IDs and messages come from the network), plots are plain SVG.
"use strict";
const SVG = "http://www.w3.org/2000/svg";

function text(id, value) { document.getElementById(id).textContent = value; }
function fmt(x, digits) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
  return tr;
}

function plot(id, points, yMax, limit) {
  // points: [[round, value], ...]; limit: a horizontal line (the budget) or null
  const svg = document.getElementById(id);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const w = svg.width.baseVal.value, h = svg.height.baseVal.value, pad = 28;
  const rounds = points.map(p => p[0]);
  const x0 = Math.min(...rounds, 0), x1 = Math.max(...rounds, 1);
  const sx = r => pad + (w - 2 * pad) * (r - x0) / Math.max(x1 - x0, 1);
  const sy = v => h - pad - (h - 2 * pad) * v / yMax;
  const add = (tag, attrs) => { const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]); svg.appendChild(e); return e; };
  add("line", {x1: pad, y1: h - pad, x2: w - pad, y2: h - pad, stroke: "#999"});
  add("line", {x1: pad, y1: pad, x2: pad, y2: h - pad, stroke: "#999"});
  add("text", {x: 2, y: pad, "font-size": 10}).textContent = yMax.toFixed(2);
  add("text", {x: w - pad, y: h - 8, "font-size": 10}).textContent = "r" + x1;
  if (limit !== null) add("line", {x1: pad, y1: sy(limit), x2: w - pad, y2: sy(limit), stroke: "#c00",
                                    "stroke-dasharray": "4 3", "class": "limit"});
  if (points.length) {
    add("polyline", {points: points.map(p => sx(p[0]) + "," + sy(p[1])).join(" "), fill: "none",
                     stroke: "#06c", "stroke-width": 2, "class": "series"});
    for (const p of points) add("circle", {cx: sx(p[0]), cy: sy(p[1]), r: 3, fill: "#06c", "class": "point"});
  }
}

function render(s) {
  text("institution", s.identity.institution || "");
  text("address", s.identity.address || "–");
  text("peer_id", s.identity.peer_id || "–");
  text("membership", s.identity.membership || "–");
  text("round", s.round === null ? "–" : String(s.round));
  text("stage", s.stage);
  text("eps", fmt(s.epsilon.spent, 3));
  text("budget", fmt(s.epsilon.budget, 3));
  const alerts = document.getElementById("alerts");
  alerts.replaceChildren();
  for (const a of s.alerts) {
    const li = document.createElement("li"); li.className = "alert";
    li.textContent = "r" + a.round + " " + a.kind + ": " + a.message; alerts.appendChild(li);
  }
  if (!s.alerts.length) { const li = document.createElement("li"); li.className = "ok"; li.textContent = "none"; alerts.appendChild(li); }
  const rounds = document.getElementById("rounds");
  rounds.replaceChildren(...s.rounds.slice().reverse().slice(0, 20).map(r => row([
    r.round, r.finalized ? "yes" : "no", r.accepted, r.rejected, fmt(r.epsilon, 3), fmt(r.auc, 3),
    fmt(r.seconds, 2), r.alerts.join(", ")])));
  const now = s.now;
  document.getElementById("peers").replaceChildren(...s.peers.map(p => row([
    p.peer_id, p.connected ? "yes" : "no", Math.round(now - p.last_seen) + " s ago"])));
  const eps = s.rounds.filter(r => r.epsilon !== null).map(r => [r.round, r.epsilon]);
  const budget = s.epsilon.budget;
  plot("eps-plot", eps, Math.max(budget || 0, ...eps.map(p => p[1]), 1e-9) * 1.1, budget);
  plot("auc-plot", s.rounds.filter(r => r.auc !== null).map(r => [r.round, r.auc]), 1.0, null);
}

async function refresh() {
  try {
    const res = await fetch("/status.json", {cache: "no-store"});
    if (!res.ok) throw new Error("HTTP " + res.status);
    render(await res.json());
    text("error", "");
  } catch (e) {
    text("error", "node unreachable: " + e.message);
  }
}

refresh();
setInterval(refresh, 1000);
