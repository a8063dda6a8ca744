// The playground page: settings -> a session on the server (POST api/playground), Play/Step -> its steps
// (POST api/playground/ID/step), and every view drawn from the answers. All the training happens on the server,
// in NeuralNetworks.nn; this file only draws.
'use strict';

(() => {
  const STEPS_PER_FRAME = 10; // steps asked for per request while playing
  const MAX_HISTORY = 2000; // chart points kept; beyond, every other one is dropped
  const DEFAULT_HIDDEN = [4, 4];
  const MAX_LAYERS = 6;
  const MAX_UNITS = 16;
  const NETWORK_MIN_HEIGHT = 330; // pixels
  const CHART_HEIGHT = 200;
  const REGION_STRENGTH = 0.6; // the output's colours are paler than the points drawn on them
  const COLORS = { pos: [37, 99, 235], neg: [234, 122, 18], zero: [247, 247, 250] };
  const LAYER_COLORS = ['#0f766e', '#7c3aed', '#db2777', '#ca8a04', '#2563eb', '#65a30d', '#1f2433'];
  const $ = (id) => document.getElementById(id);

  const state = {
    hidden: DEFAULT_HIDDEN.slice(), session: null, info: null, view: null, history: [],
    playing: false, queue: Promise.resolve(true), generation: 0, layout: {}, failed: false,
  };
  window.playgroundState = state; // for the curious (and the browser test)

  // -- talking to the server -------------------------------------------------------------------------------
  async function api(method, url, body) {
    const response = await fetch(url, {
      method, headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const isJson = (response.headers.get('content-type') || '').includes('json');
    const data = isJson ? await response.json() : await response.text();
    if (!response.ok) throw new Error(isJson && data.error ? data.error : `${response.status} ${response.statusText}`);
    return data;
  }

  function readSettings() {
    return {
      dataset: $('dataset').value, hidden: state.hidden.slice(), activation: $('activation').value,
      optimizer: $('optimizer').value, learning_rate: Number($('learning-rate').value),
      batch_size: Number($('batch-size').value), noise: Number($('noise').value),
      train_fraction: Number($('train-fraction').value), seed: Math.trunc(Number($('seed').value) || 0),
    };
  }

  function setStatus(text, isError) {
    $('status').textContent = text;
    $('status').classList.toggle('error', Boolean(isError));
  }

  async function reset() {
    const generation = ++state.generation;
    const old = state.session;
    state.session = null;
    state.failed = false;
    if (old) fetch(`api/playground/${old}`, { method: 'DELETE' }).catch(() => {});
    try {
      const created = await api('POST', 'api/playground', readSettings());
      if (generation !== state.generation) return;
      Object.assign(state, { session: created.session, info: created, history: [], view: null });
      $('download-python').href = `api/playground/${created.session}/code`;
      $('download-python').download = `playground_${created.settings.dataset}.py`;
      window.playgroundMath.render($('math'), created.settings, created.task);
      const points = created.train.y.length;
      setStatus(`${$('dataset').selectedOptions[0].text}: ${points} training and ${created.test.y.length} test ` +
        'points. Press Play.');
      await advance(0, generation);
      if (!state.playing) showScript();
    } catch (error) {
      if (generation === state.generation) setStatus(error.message, true);
    }
  }

  // Ask for `steps` more steps and draw the answer; false if the session failed. Requests go one at a time.
  function advance(steps, generation = state.generation) {
    state.queue = state.queue.then(() => request(steps, generation));
    return state.queue;
  }

  async function request(steps, generation) {
    if (!state.session || generation !== state.generation) return !state.failed;
    try {
      const view = await api('POST', `api/playground/${state.session}/step`, { steps });
      if (generation !== state.generation) return true; // a reset happened meanwhile: drop the old answer
      state.view = view;
      record(view);
      draw();
      return true;
    } catch (error) {
      if (generation === state.generation) {
        state.failed = true;
        setStatus(error.message, true);
      }
      return false;
    }
  }

  function record(view) {
    const last = state.history[state.history.length - 1];
    if (last && last.step === view.step) return;
    state.history.push({ step: view.step, loss: view.loss, test: view.test_loss, norms: view.gradient_norms });
    if (state.history.length > MAX_HISTORY) state.history = state.history.filter((_, i) => i % 2 === 0);
  }

  async function showScript() {
    if (!state.session) return '';
    const text = await api('GET', `api/playground/${state.session}/code`);
    $('python').textContent = text;
    return text;
  }

  // -- play, pause, step -----------------------------------------------------------------------------------
  function setPlaying(playing) {
    state.playing = playing;
    $('play').textContent = playing ? 'Pause' : 'Play';
    $('play').setAttribute('aria-pressed', String(playing));
    if (!state.failed) setStatus(playing ? 'Training: Pause or Step to stop and read the script below.' : 'Paused.');
    if (playing) loop();
    else showScript().catch(() => {});
  }

  async function loop() {
    while (state.playing) {
      const ok = await advance(STEPS_PER_FRAME);
      if (!ok) {
        setPlaying(false);
        return;
      }
      await new Promise((resolve) => requestAnimationFrame(resolve));
    }
  }

  async function stepOnce() {
    if (state.playing) setPlaying(false);
    if (await advance(1)) showScript().catch(() => {});
  }

  async function copyPython() {
    try {
      const text = await showScript();
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        const range = document.createRange();
        range.selectNodeContents($('python'));
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        document.execCommand('copy');
      }
      $('copy-status').textContent = `Copied: ${text.split('\n').length} lines, ${state.view ? state.view.step : 0} steps.`;
    } catch (error) {
      $('copy-status').textContent = error.message;
    }
  }

  // -- drawing ---------------------------------------------------------------------------------------------
  function color(t, strength = 1) { // t in [-1, 1]: orange, white, blue (paler with a smaller strength)
    const c = Math.max(-1, Math.min(1, Number.isFinite(t) ? t : 0));
    const end = c > 0 ? COLORS.pos : COLORS.neg;
    const a = Math.abs(c) * strength;
    return COLORS.zero.map((z, i) => Math.round(z + (end[i] - z) * a));
  }

  function outputValue(v) { // the output as [-1, 1]: a probability becomes 2p - 1
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

  function drawRegions() {
    const canvas = $('regions');
    const ctx = canvas.getContext('2d');
    const { width, height } = canvas;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(heatmap(state.view.grid, outputValue, REGION_STRENGTH), 0, 0, width, height);
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

  function drawNetwork() {
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
      ctx.drawImage(heatmap(rows, last ? outputValue : (v) => v), node.x, node.y, box, box);
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

  function chart(canvas, series, { log = false } = {}) {
    fit(canvas, CHART_HEIGHT);
    const ctx = canvas.getContext('2d');
    const { width, height } = canvas;
    const pad = { left: 44, right: 8, top: 8, bottom: 20 };
    ctx.clearRect(0, 0, width, height);
    const history = state.history;
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

  function drawCharts() {
    chart($('loss-chart'), [
      { value: (p) => p.test, color: '#a5a1f7' }, { value: (p) => p.loss, color: '#1f2433' }]);
    const layers = state.info.settings.hidden.length + 1;
    chart($('gradients'), Array.from({ length: layers }, (_, l) => ({
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

  function draw() {
    const view = state.view;
    $('step-count').textContent = String(view.step);
    $('loss').textContent = figure(view.loss);
    $('test-loss').textContent = figure(view.test_loss);
    $('accuracy').textContent = figure(view.accuracy, true);
    $('test-accuracy').textContent = figure(view.test_accuracy, true);
    drawRegions();
    drawNetwork();
    drawCharts();
  }

  function hover(event) {
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

  // -- the settings ----------------------------------------------------------------------------------------
  function drawWidths() {
    $('layer-count').textContent = String(state.hidden.length);
    $('add-layer').disabled = state.hidden.length >= MAX_LAYERS;
    $('remove-layer').disabled = state.hidden.length === 0;
    $('widths').replaceChildren(...state.hidden.map((units, l) => {
      const row = document.createElement('div');
      row.className = 'width';
      const label = document.createElement('span');
      label.textContent = `layer ${l + 1}`;
      const value = document.createElement('b');
      value.textContent = String(units);
      const buttons = [['−', -1], ['+', 1]].map(([text, change]) => {
        const button = document.createElement('button');
        button.type = 'button';
        button.textContent = text;
        button.setAttribute('aria-label', `${change > 0 ? 'More' : 'Fewer'} units in layer ${l + 1}`);
        button.disabled = units + change < 1 || units + change > MAX_UNITS;
        button.addEventListener('click', () => { state.hidden[l] = units + change; changed(); });
        return button;
      });
      row.append(label, buttons[0], value, buttons[1]);
      return row;
    }));
  }

  function showValues() {
    $('noise-value').textContent = $('noise').value;
    $('train-fraction-value').textContent = `${Math.round(100 * Number($('train-fraction').value))}%`;
    $('batch-size-value').textContent = $('batch-size').value;
  }

  function changed() {
    drawWidths();
    showValues();
    reset();
  }

  function start() {
    for (const id of ['dataset', 'activation', 'optimizer', 'learning-rate', 'seed', 'show-test']) {
      $(id).addEventListener('change', id === 'show-test' ? () => state.view && drawRegions() : changed);
    }
    for (const id of ['noise', 'train-fraction', 'batch-size']) {
      $(id).addEventListener('input', showValues);
      $(id).addEventListener('change', changed);
    }
    $('add-layer').addEventListener('click', () => { state.hidden.push(state.hidden.at(-1) || 4); changed(); });
    $('remove-layer').addEventListener('click', () => { state.hidden.pop(); changed(); });
    $('play').addEventListener('click', () => setPlaying(!state.playing));
    $('step').addEventListener('click', stepOnce);
    $('reset').addEventListener('click', reset);
    $('copy-python').addEventListener('click', copyPython);
    $('network').addEventListener('mousemove', hover);
    document.addEventListener('keydown', (event) => {
      if (event.target.closest('input, select, textarea') || event.ctrlKey || event.metaKey || event.altKey) return;
      const action = { ' ': () => setPlaying(!state.playing), s: stepOnce, r: reset }[event.key];
      if (action && !(event.key === ' ' && event.target.closest('button'))) {
        event.preventDefault();
        action();
      }
    });
    drawWidths();
    showValues();
    reset();
  }

  start();
})();
