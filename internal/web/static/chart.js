// tokenledger dashboard: number formatting and the two SVG charts (the
// daily stacked bars with the cost line, and the per-model bars). No
// dependencies; every chart also has a table beside it on the page.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

  // el makes an SVG element with attributes.
  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  // int formats a count with thousands separators.
  function int(n) { return intFmt.format(n); }

  // usdExact writes a dollar amount with up to 9 decimals and no trailing
  // zeros: the API's nano-dollar value as text.
  function usdExact(v) {
    let s = Math.abs(v).toFixed(9).replace(/0+$/, "").replace(/\.$/, "");
    const [i, f] = s.split(".");
    s = intFmt.format(Number(i)) + (f ? "." + f : "");
    return (v < 0 ? "-$" : "$") + s;
  }

  // usd rounds a dollar amount for reading: cents from $1, 4 decimals
  // from 1 cent, 6 below.
  function usd(v) {
    if (v === 0) return "$0.00";
    const a = Math.abs(v);
    const d = a >= 1 ? 2 : a >= 0.01 ? 4 : 6;
    const s = new Intl.NumberFormat("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }).format(a);
    return (v < 0 ? "-$" : "$") + s;
  }

  // short writes an axis value: 950, 12k, 3.4M, 1.2B.
  function short(v) {
    const a = Math.abs(v);
    for (const [n, s] of [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "k"]]) {
      if (a >= n) return (+(v / n).toFixed(a >= 10 * n ? 0 : 1)) + s;
    }
    return String(+v.toFixed(v !== 0 && a < 1 ? 4 : 0));
  }

  // nice rounds a maximum up to 1, 2 or 5 times a power of ten.
  function nice(max) {
    if (!(max > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(max)));
    for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
    return 10 * p;
  }

  // width is the chart's width in CSS pixels, so that its text keeps
  // its size on a phone.
  function width(host) { return Math.max(300, Math.round(host.clientWidth || 800)); }

  // daily draws one group per day (class "day", data-date): prompt
  // (uncached), cache read and completion stacked, and the cost as a
  // line with one point per day on its own axis. onFocus(i, x, y) is
  // called when a day is hovered or picked with the arrow keys (i = -1
  // when none is).
  function daily(host, days, onFocus) {
    const W = width(host), H = W < 500 ? 220 : 260, L = 44, R = 50, T = 10, B = 26;
    const pw = W - L - R, ph = H - T - B, n = days.length, band = pw / n;
    const stack = days.map(d => [Math.max(0, d.promptTokens - d.cacheReadTokens), d.cacheReadTokens, d.completionTokens]);
    const tmax = nice(Math.max(...stack.map(s => s[0] + s[1] + s[2])));
    const cmax = nice(Math.max(...days.map(d => d.costUsd)));
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", tabindex: "0",
      "aria-label": `Tokens and cost per day over ${n} days; the table below has the numbers` });
    for (let k = 0; k <= 4; k++) {
      const y = T + ph - (ph * k) / 4;
      el("line", { class: "grid", x1: L, x2: W - R, y1: y, y2: y }, svg);
      el("text", { x: L - 6, y: y + 4, "text-anchor": "end" }, svg).textContent = short((tmax * k) / 4);
      el("text", { x: W - R + 6, y: y + 4 }, svg).textContent = "$" + short((cmax * k) / 4);
    }
    const every = Math.max(1, Math.ceil(n / Math.max(3, Math.floor(pw / 80))));
    const pts = [];
    days.forEach((d, i) => {
      const g = el("g", { class: "day", "data-date": d.date }, svg);
      const x = L + i * band;
      el("rect", { class: "hit", x: x, y: T, width: band, height: ph }, g);
      let y = T + ph;
      ["bar-prompt", "bar-cache", "bar-completion"].forEach((cls, j) => {
        const h = (stack[i][j] / tmax) * ph;
        y -= h;
        if (h > 0) el("rect", { class: cls, x: x + band * 0.15, y: y, width: band * 0.7, height: h }, g);
      });
      const cy = T + ph - (d.costUsd / cmax) * ph;
      pts.push(`${(x + band / 2).toFixed(1)},${cy.toFixed(1)}`);
      if (n <= 31) el("circle", { class: "costdot", cx: x + band / 2, cy: cy, r: 2.5 }, g);
      if (i % every === 0) {
        el("text", { x: x + band / 2, y: H - 8, "text-anchor": "middle" }, svg).textContent = d.date.slice(5);
      }
    });
    el("polyline", { class: "costline", points: pts.join(" "), "data-points": String(pts.length) }, svg);
    host.replaceChildren(svg);

    let cur = -1;
    const groups = svg.querySelectorAll("g.day");
    const pick = (i, cx, cy) => {
      if (cur >= 0) groups[cur].classList.remove("on");
      cur = i;
      if (i >= 0) groups[i].classList.add("on");
      onFocus(i, cx, cy);
    };
    svg.addEventListener("mousemove", ev => {
      const r = svg.getBoundingClientRect();
      const i = Math.floor(((ev.clientX - r.left) * (W / r.width) - L) / band);
      pick(i >= 0 && i < n ? i : -1, ev.clientX, ev.clientY);
    });
    svg.addEventListener("mouseleave", () => pick(-1));
    svg.addEventListener("blur", () => pick(-1));
    svg.addEventListener("keydown", ev => {
      if (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight") return;
      ev.preventDefault();
      const i = cur < 0 ? n - 1 : Math.min(n - 1, Math.max(0, cur + (ev.key === "ArrowRight" ? 1 : -1)));
      const r = groups[i].querySelector(".hit").getBoundingClientRect();
      pick(i, r.left + r.width / 2, r.top + r.height / 3);
    });
  }

  // bars draws one horizontal bar per row: {label, value, text, flag}.
  function bars(host, rows) {
    const W = width(host), rowH = 22, L = Math.min(190, Math.round(W * 0.34)), R = W < 500 ? 72 : 110;
    const max = Math.max(...rows.map(r => r.value), 0) || 1;
    const svg = el("svg", { viewBox: `0 0 ${W} ${rows.length * rowH + 4}`, role: "img",
      "aria-label": "Bar chart of the models; the table below has the numbers" });
    rows.forEach((r, i) => {
      const y = i * rowH + 2;
      const chars = Math.floor(L / 7);
      const label = r.label.length > chars ? r.label.slice(0, chars - 1) + "…" : r.label;
      el("text", { x: L - 8, y: y + 14, "text-anchor": "end" }, svg).textContent = label;
      el("rect", { class: r.flag ? "hbar unpriced" : "hbar", x: L, y: y + 3, height: rowH - 8,
        width: Math.max(r.value > 0 ? 1 : 0, ((W - L - R) * r.value) / max) }, svg);
      el("text", { x: W - R + 8, y: y + 14 }, svg).textContent = r.text;
    });
    host.replaceChildren(svg);
  }

  window.TL = { int, usd, usdExact, short, daily, bars };
})();
