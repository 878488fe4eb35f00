// corvid admin dashboard: polls api/stats once a second and draws its
// history as SVG line charts, and its tables as HTML tables.
"use strict";

const colors = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2"];
const svgNS = "http://www.w3.org/2000/svg";
const W = 600, H = 150, PAD = 34;

function el(name, attrs, text) {
  const e = name.startsWith("svg:") ? document.createElementNS(svgNS, name.slice(4)) : document.createElement(name);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

// human formats a value with an SI suffix.
function human(v) {
  if (v === null || v === undefined) return "–";
  const a = Math.abs(v);
  const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [d, s] of units) if (a >= d) return (v / d).toFixed(a / d >= 100 ? 0 : 1) + s;
  return a >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(a >= 10 ? 1 : 2);
}

// niceMax rounds the top of the y axis up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function drawChart(c, times) {
  let box = document.getElementById("chart-" + c.id);
  if (!box) {
    box = el("div", {class: "chart", id: "chart-" + c.id});
    box.append(el("h2"), el("svg:svg", {viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none"}), el("div", {class: "legend"}));
    document.getElementById("charts").append(box);
  }
  const h2 = box.querySelector("h2");
  h2.textContent = c.title;
  h2.append(el("small", {}, c.unit));
  const svg = box.querySelector("svg");
  svg.replaceChildren();
  const n = times.length;
  const t1 = n ? times[n - 1] : 0;
  const span = Math.max(60000, n ? t1 - times[0] : 0);
  const t0 = t1 - span;
  let top = 0, points = 0;
  for (const l of c.lines) for (const v of l.values) if (v !== null) { top = Math.max(top, v); points++; }
  top = niceMax(top);
  for (let i = 0; i <= 4; i++) {
    const y = 8 + (H - 24) * i / 4;
    svg.append(el("svg:line", {class: "grid", x1: PAD, x2: W, y1: y, y2: y}));
    svg.append(el("svg:text", {class: "axis", x: PAD - 4, y: y + 3, "text-anchor": "end"}, human(top * (4 - i) / 4)));
  }
  svg.append(el("svg:text", {class: "axis", x: PAD, y: H - 2}, "-" + Math.round(span / 1000) + "s"));
  svg.append(el("svg:text", {class: "axis", x: W, y: H - 2, "text-anchor": "end"}, "now"));
  const legend = box.querySelector(".legend");
  legend.replaceChildren();
  c.lines.forEach((l, i) => {
    let d = "", pen = false;
    l.values.forEach((v, j) => {
      if (v === null) { pen = false; return; }
      const x = PAD + (W - PAD) * (times[j] - t0) / span;
      const y = 8 + (H - 24) * (1 - v / top);
      d += (pen ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
      pen = true;
    });
    const color = colors[i % colors.length];
    svg.append(el("svg:path", {d: d, stroke: color, "data-line": l.label}));
    const last = l.values.length ? l.values[l.values.length - 1] : null;
    const item = el("span");
    item.append(el("i", {style: "background:" + color}), l.label + " " + human(last));
    legend.append(item);
  });
  box.dataset.points = points;
}

function drawTable(t) {
  let sec = document.getElementById("table-" + t.id);
  if (!sec) {
    sec = el("section", {id: "table-" + t.id});
    document.getElementById("tables").append(sec);
  }
  const table = el("table");
  const isText = v => !/^-?[0-9.]+[a-z%]*$/i.test(v) && v !== "";
  const head = el("tr");
  t.columns.forEach((c, i) => head.append(el("th", t.rows.length && isText(t.rows[0][i]) ? {class: "text"} : {}, c)));
  table.append(head);
  for (const r of t.rows) {
    const tr = el("tr");
    for (const v of r) {
      const cls = v === "ejected" ? "bad" : v === "up" ? "good" : isText(v) ? "text" : "";
      tr.append(el("td", cls ? {class: cls} : {}, v));
    }
    table.append(tr);
  }
  sec.replaceChildren(el("h2", {}, t.title));
  sec.append(t.rows.length ? table : el("p", {class: "empty"}, "none yet"));
  sec.dataset.rows = t.rows.length;
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const r = await fetch("api/stats", {cache: "no-store"});
    if (!r.ok) throw new Error(r.status + " " + r.statusText);
    const s = await r.json();
    document.title = s.title;
    document.getElementById("title").textContent = s.title;
    for (const c of s.charts) drawChart(c, s.times);
    for (const t of s.tables) drawTable(t);
    status.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    status.textContent = "cannot read api/stats: " + e.message;
  }
}

poll();
setInterval(poll, 1000);
