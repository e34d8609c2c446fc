// A small SVG chart of our own: bars per period, one colour per series, stacked, with a
// text table beside it for screen readers (and anyone who prefers numbers). The SVG is drawn
// as wide as its figure shows, and drawn again when that width changes (a window resized, a
// phone turned): one ResizeObserver watches every chart on the page, and lets go of a chart
// once it has left the page, so moving between pages leaves nothing behind.

import { h, replace, svg } from "./dom.js";

/// The charts being watched, each figure → its `draw(width)`.
const charts = new Map();
let observer = null;

/// How many charts are watched now (the browser journey checks that leaving a page drops them).
export function watchedCharts() {
  return charts.size;
}

/// Forgets every figure no longer in the page.
function sweep() {
  for (const figure of charts.keys()) {
    if (!figure.isConnected) {
      observer.unobserve(figure);
      charts.delete(figure);
    }
  }
}

function watch(figure, draw) {
  if (!observer) {
    observer = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const draw = charts.get(entry.target);
        if (draw && entry.target.isConnected) draw(entry.contentRect.width);
      }
      sweep();
    });
  }
  sweep();
  charts.set(figure, draw);
  observer.observe(figure);
}

/// `barChart({labels: ["1 Dec", …], series: [{name: "SMS", values: [1, 2, …], className}],
/// title})` → a figure holding the SVG and a visually hidden table of the same numbers.
export function barChart({ labels, series, title }) {
  const holder = h("div", { class: "chart-holder" });
  let drawn = 0;
  const draw = (shown) => {
    // Drawn as wide as it shows, so that its 11 px labels stay 11 px on a phone.
    const width = Math.round(Math.max(240, Math.min(1600, shown)));
    if (width === drawn) return;
    drawn = width;
    replace(holder, drawBars({ labels, series, title, width }));
  };
  // Until the figure is in the page its width is a guess from the window's.
  draw((window.innerWidth || 960) - 64);
  const legend = h(
    "ul",
    { class: "legend" },
    series.map((s) => h("li", {}, h("span", { class: `swatch ${s.className}` }), s.name)),
  );
  const table = h(
    "table",
    { class: "visually-hidden" },
    h("caption", {}, title),
    h("tr", {}, h("th", {}, ""), series.map((s) => h("th", {}, s.name))),
    labels.map((label, i) => h("tr", {}, h("th", {}, label), series.map((s) => h("td", {}, String(s.values[i] || 0))))),
  );
  const figure = h("figure", { class: "chart-figure" }, holder, legend, table);
  watch(figure, (width) => width > 0 && draw(width));
  return figure;
}

/// The SVG of the bars, `width` user units wide (one per CSS pixel).
function drawBars({ labels, series, title, width }) {
  const height = 240;
  const left = 36;
  const bottom = 28;
  const top = 10;
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const max = Math.max(1, ...totals);
  const step = niceStep(max);
  const ceiling = Math.ceil(max / step) * step;
  const plotHeight = height - top - bottom;
  const slot = (width - left) / Math.max(1, labels.length);
  const barWidth = Math.max(2, slot * 0.65);
  const y = (value) => top + plotHeight - (value / ceiling) * plotHeight;

  const grid = [];
  for (let value = 0; value <= ceiling; value += step) {
    grid.push(svg("line", { x1: left, x2: width, y1: y(value), y2: y(value), class: "grid" }));
    grid.push(svg("text", { x: left - 6, y: y(value) + 4, class: "axis", "text-anchor": "end" }, String(value)));
  }
  const bars = [];
  labels.forEach((label, i) => {
    const x = left + i * slot + (slot - barWidth) / 2;
    let base = 0;
    for (const s of series) {
      const value = s.values[i] || 0;
      if (value > 0) {
        bars.push(
          svg(
            "rect",
            { x, y: y(base + value), width: barWidth, height: y(base) - y(base + value), class: s.className },
            svg("title", {}, `${label}: ${s.name} ${value}`),
          ),
        );
      }
      base += value;
    }
    // As many day labels as fit without touching (about 56 px each): 7 wide, 4 on a phone.
    const every = Math.ceil(labels.length / Math.max(2, Math.min(7, Math.floor((width - left) / 56))));
    if (i % every === 0) {
      bars.push(svg("text", { x: x + barWidth / 2, y: height - 8, class: "axis", "text-anchor": "middle" }, label));
    }
  });
  return svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title, "data-width": width },
    grid,
    bars,
  );
}

/// A round step for about four grid lines.
function niceStep(max) {
  const rough = max / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  for (const factor of [1, 2, 5, 10]) {
    if (factor * power >= rough) return Math.max(1, factor * power);
  }
  return Math.max(1, 10 * power);
}
