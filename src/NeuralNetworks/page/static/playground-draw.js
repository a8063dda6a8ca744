// The playground's drawings: the output with the points, the network (neurons as heat maps, weights as lines),
// the loss and gradient-norm charts, the figures; and what the mouse points at. Everything is drawn from the
// state playground.js keeps (the server's last answer, the history of steps); nothing here talks to the server.
'use strict';

window.playgroundDraw = (() => {
  const NETWORK_MIN_HEIGHT = 330; // pixels
  const CHART_HEIGHT = 200;
  const REGION_STRENGTH = 0.6; // the output's colours are paler than the points drawn on them
  const COLORS = { pos: [37, 99, 235], neg: [234, 122, 18], zero: [247, 247, 250] };
  const LAYER_COLORS = ['#0f766e', '#7c3aed', '#db2777', '#ca8a04', '#2563eb', '#65a30d', '#1f2433'];
  const $ = (id) => document.getElementById(id);

  function color(t, strength = 1) { // t in [-1, 1]: orange, white, blue (paler with a smaller strength)
    const c = Math.max(-1, Math.min(1, Number.isFinite(t) ? t : 0));
    const end = c > 0 ? COLORS.pos : COLORS.neg;
    const a = Math.abs(c) * strength;
    return COLORS.zero.map((z, i) => Math.round(z + (end[i] - z) * a));
  }

  function outputValue(state, v) { // the output as [-1, 1]: a probability becomes 2p - 1
    return state.info && state.info.task === 'classification' ? 2 * v - 1 : v;
  }

  function heatmap(rows, toValue, strength = 1) {
    const side = rows.length;
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = side;
    const ctx = canvas.getContext('2d');
    const image = ctx.createImageData(side, side);
    rows.forEach((row, r) => row.forEach((v, c) => {
      const [red, green, blue] = color(toValue(v), strength);
      image.data.set([red, green, blue, 255], 4 * (r * side + c));
    }));
    ctx.putImageData(image, 0, 0);
    return canvas;
  }

  function drawRegions(state) {
    const canvas = $('regions');
    const ctx = canvas.getContext('2d');
    const { width, height } = canvas;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(heatmap(state.view.grid, (v) => outputValue(state, v), REGION_STRENGTH), 0, 0, width, height);
    const extent = state.info.extent;
    const sets = [[state.info.train, '#ffffff']];
    if ($('show-test').checked) sets.push([state.info.test, '#1f2433']);
    for (const [points, stroke] of sets) {
      points.x.forEach(([x, y], i) => {
        const value = state.info.task === 'classification' ? 2 * points.y[i] - 1 : points.y[i];
        ctx.beginPath();
        ctx.arc((x + extent) / (2 * extent) * width, (extent - y) / (2 * extent) * height, 3.2, 0, 2 * Math.PI);
        ctx.fillStyle = `rgb(${color(value === 0 ? 0 : Math.sign(value) * Math.max(0.6, Math.abs(value)))})`;
        ctx.fill();
        ctx.lineWidth = 1;
        ctx.strokeStyle = stroke;
        ctx.stroke();
      });
    }
  }

  function drawNetwork(state) {
    const canvas = $('network');
    const sizes = [2, ...state.info.settings.hidden, 1];
    const box = Math.max(14, Math.min(40, Math.floor(360 / Math.max(...sizes)) - 6));
    const gap = Math.max(4, Math.round(box / 4));
    const height = Math.max(NETWORK_MIN_HEIGHT, Math.max(...sizes) * (box + gap) + 24);
    fit(canvas, height);
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const columnX = (l) => 20 + l * (canvas.width - 40 - box) / (sizes.length - 1);
    const layout = sizes.map((units, l) => Array.from({ length: units }, (_, u) => ({
      x: columnX(l), y: (height - units * (box + gap) + gap) / 2 + u * (box + gap), layer: l, unit: u,
    })));
    state.layout = { nodes: layout, box, lines: [] };
    const weights = state.view.weights;
    const largest = Math.max(1e-6, ...weights.flat(2).map((w) => Math.abs(w || 0)));
    weights.forEach((kernel, l) => kernel.forEach((row, i) => row.forEach((w, j) => {
      const from = layout[l][i];
      const to = layout[l + 1][j];
      const line = { x1: from.x + box, y1: from.y + box / 2, x2: to.x, y2: to.y + box / 2, w, layer: l + 1, i, j };
      state.layout.lines.push(line);
      ctx.beginPath();
      ctx.moveTo(line.x1, line.y1);
      ctx.lineTo(line.x2, line.y2);
      ctx.lineWidth = 0.4 + 5 * Math.abs(w || 0) / largest;
      ctx.strokeStyle = `rgba(${w >= 0 ? COLORS.pos : COLORS.neg}, 0.7)`;
      ctx.stroke();
    })));
    ctx.imageSmoothingEnabled = true;
    const side = state.info.neuron_side;
    const inputs = [0, 1].map((axis) => Array.from({ length: side }, (_, r) => Array.from({ length: side },
      (_, c) => (axis === 0 ? (c + 0.5) / side * 2 - 1 : 1 - (r + 0.5) / side * 2))));
    layout.forEach((nodes, l) => nodes.forEach((node) => {
      const last = l === sizes.length - 1;
      const rows = l === 0 ? inputs[node.unit] : state.view.neurons[l - 1][node.unit];
      ctx.drawImage(heatmap(rows, last ? (v) => outputValue(state, v) : (v) => v), node.x, node.y, box, box);
      ctx.lineWidth = 1;
      ctx.strokeStyle = '#c9ccd8';
      ctx.strokeRect(node.x + 0.5, node.y + 0.5, box - 1, box - 1);
    }));
    ctx.fillStyle = '#6b7086';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'center';
    sizes.forEach((_, l) => ctx.fillText(l === 0 ? 'x₁, x₂' : l === sizes.length - 1 ? 'output' : `layer ${l}`,
      columnX(l) + box / 2, height - 4));
  }

  // Give `canvas` as many pixels as it shows (text stays its size) and `height` pixels of height.
  function fit(canvas, height) {
    const width = Math.round(canvas.clientWidth) || canvas.width;
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
  }

  function chart(canvas, history, series, { log = false } = {}) {
    fit(canvas, CHART_HEIGHT);
    const ctx = canvas.getContext('2d');
    const { width, height } = canvas;
    const pad = { left: 44, right: 8, top: 8, bottom: 20 };
    ctx.clearRect(0, 0, width, height);
    const transform = (v) => (log ? Math.log10(Math.max(v, 1e-12)) : v);
    const values = series.flatMap((s) => history.map(s.value)).filter((v) => v !== null && Number.isFinite(v))
      .map(transform);
    if (!values.length) return;
    let low = log ? Math.min(...values) : 0;
    let high = Math.max(...values);
    if (high - low < 1e-9) { high += 0.5; low -= log ? 0.5 : 0; }
    const lastStep = Math.max(1, history[history.length - 1].step);
    const px = (step) => pad.left + step / lastStep * (width - pad.left - pad.right);
    const py = (v) => pad.top + (high - transform(v)) / (high - low) * (height - pad.top - pad.bottom);
    ctx.strokeStyle = '#e3e5ef';
    ctx.fillStyle = '#6b7086';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'right';
    for (const v of [low, (low + high) / 2, high]) {
      const y = pad.top + (high - v) / (high - low) * (height - pad.top - pad.bottom);
      ctx.beginPath();
      ctx.moveTo(pad.left, y);
      ctx.lineTo(width - pad.right, y);
      ctx.stroke();
      const shown = log ? 10 ** v : v;
      ctx.fillText(shown !== 0 && Math.abs(shown) < 0.01 ? shown.toExponential(0) : shown.toPrecision(2),
        pad.left - 4, y + 4);
    }
    ctx.textAlign = 'center';
    ctx.fillText(`step ${history[history.length - 1].step}`, width / 2, height - 4);
    for (const s of series) {
      ctx.beginPath();
      let started = false;
      for (const point of history) {
        const v = s.value(point);
        if (v === null || !Number.isFinite(v)) continue;
        if (started) ctx.lineTo(px(point.step), py(v));
        else ctx.moveTo(px(point.step), py(v));
        started = true;
      }
      ctx.lineWidth = 2;
      ctx.strokeStyle = s.color;
      ctx.stroke();
    }
  }

  function drawCharts(state) {
    chart($('loss-chart'), state.history, [
      { value: (p) => p.test, color: '#a5a1f7' }, { value: (p) => p.loss, color: '#1f2433' }]);
    const layers = state.info.settings.hidden.length + 1;
    chart($('gradients'), state.history, Array.from({ length: layers }, (_, l) => ({
      value: (p) => (p.norms ? p.norms[l] : null), color: LAYER_COLORS[l % LAYER_COLORS.length] })), { log: true });
    const legend = $('gradient-legend');
    if (legend.childElementCount !== layers) {
      legend.replaceChildren(...Array.from({ length: layers }, (_, l) => {
        const item = document.createElement('span');
        const key = document.createElement('span');
        key.className = `key layer-${l % LAYER_COLORS.length}`;
        item.append(key, l === layers - 1 ? ' output' : ` layer ${l + 1}`);
        return item;
      }));
    }
  }

  function figure(value, percent) {
    if (value === null || value === undefined) return '–';
    return percent ? `${(100 * value).toFixed(1)}%` : value.toFixed(4);
  }

  function draw(state) {
    const view = state.view;
    $('step-count').textContent = String(view.step);
    $('loss').textContent = figure(view.loss);
    $('test-loss').textContent = figure(view.test_loss);
    $('accuracy').textContent = figure(view.accuracy, true);
    $('test-accuracy').textContent = figure(view.test_accuracy, true);
    drawRegions(state);
    drawNetwork(state);
    drawCharts(state);
  }

  function hover(state, event) {
    if (!state.view || !state.layout.nodes) return;
    const canvas = $('network');
    const rect = canvas.getBoundingClientRect();
    const x = (event.clientX - rect.left) * canvas.width / rect.width;
    const y = (event.clientY - rect.top) * canvas.height / rect.height;
    const { nodes, box, lines } = state.layout;
    for (const node of nodes.flat()) {
      if (x >= node.x && x <= node.x + box && y >= node.y && y <= node.y + box) {
        const bias = node.layer > 0 ? state.view.biases[node.layer - 1][node.unit] : null;
        const name = node.layer === 0 ? `input x${'₁₂'[node.unit]}` : `layer ${node.layer}, unit ${node.unit + 1}`;
        $('hover').textContent = bias === null ? name : `${name}: bias b = ${bias}`;
        return;
      }
    }
    let best = null;
    for (const line of lines) {
      const dx = line.x2 - line.x1;
      const dy = line.y2 - line.y1;
      const t = Math.max(0, Math.min(1, ((x - line.x1) * dx + (y - line.y1) * dy) / (dx * dx + dy * dy)));
      const distance = Math.hypot(x - line.x1 - t * dx, y - line.y1 - t * dy);
      if (distance < 4 && (!best || distance < best.distance)) best = { line, distance };
    }
    $('hover').textContent = best ? `W${best.line.layer}[${best.line.i + 1}, ${best.line.j + 1}] = ${best.line.w}` : '';
  }

  return { draw, drawRegions, hover };
})();
