// The playground page: settings -> a session on the server (POST api/playground), Play/Step -> its steps
// (POST api/playground/ID/step), each answer drawn by playground-draw.js. All the training happens on the
// server, in NeuralNetworks.nn; this file only asks for it and keeps the history.
'use strict';

(() => {
  const STEPS_PER_FRAME = 10; // steps asked for per request while playing
  const MAX_HISTORY = 2000; // chart points kept; beyond, every other one is dropped
  const DEFAULT_HIDDEN = [4, 4];
  const MAX_LAYERS = 6;
  const MAX_UNITS = 16;
  const NOT_FOUND = 404;
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
    if (!response.ok) {
      const error = new Error(isJson && data.error ? data.error : `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
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
      window.playgroundDraw.draw(state);
      return true;
    } catch (error) {
      if (generation !== state.generation) return false;
      if (error.status === NOT_FOUND) { // the session expired (or the server restarted): start a new one
        reset().then(() => setStatus(`${error.message.split(':')[0]}: started again at step 0.`, true));
        return false;
      }
      state.failed = true;
      setStatus(error.message, true);
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
    else state.queue.then(() => showScript()).catch(() => {}); // after the step still in flight, if any
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
      const redraw = () => state.view && window.playgroundDraw.drawRegions(state);
      $(id).addEventListener('change', id === 'show-test' ? redraw : changed);
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
    $('network').addEventListener('mousemove', (event) => window.playgroundDraw.hover(state, event));
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
