// The doodle page: predicts while the user draws on the board (board.js captures the strokes).
//
// Predictions run in the page (nn.js and strokes.js: the model's forward pass and the stroke preprocessing)
// once a model's weights are loaded: from model.js when the page was exported with the model bundled (a static
// page, no server at all), else from the app's /api/models/<name>/model.json and model.bin. The server's
// /api/predict is the fallback while weights load or where they cannot run, and it classifies uploads.
"use strict";

(() => {
  const PREDICT_EVERY_MS = 150;   // at most one server request per interval while drawing
  const LOCAL_PREDICT_EVERY_MS = 30;  // in the page a prediction takes milliseconds: follow the pen closely
  const TOP_K = 3;                // guesses shown
  const STORAGE_KEY = "nn-doodle-model";

  const pad = document.getElementById("pad");
  const hint = document.getElementById("hint");
  const modelSelect = document.getElementById("model");
  const list = document.getElementById("predictions");
  const statusLine = document.getElementById("status");
  const preview = document.getElementById("preview");
  const labelsLine = document.getElementById("labels");
  const upload = document.getElementById("upload");
  const ctxPreview = preview.getContext("2d");
  const nn = window.nn || {};
  // A page exported with its model(s) bundled has no server behind it: everything happens here.
  const bundled = Boolean(nn.models && Object.keys(nn.models).length);

  let models = [];
  let uploaded = null;       // {image: HTMLImageElement, dataUrl} when an uploaded file is shown instead
  let timer = null;
  let inFlight = false;
  let pending = false;

  // -- board ----------------------------------------------------------------------------------------------
  // An uploaded image is shown under the strokes; drawing on it drops it.
  const board = window.board.create(pad, hint, {
    background(ctx, box) {
      if (!uploaded) return false;
      const scale = Math.min(box.width / uploaded.image.width, box.height / uploaded.image.height);
      const w = uploaded.image.width * scale, h = uploaded.image.height * scale;
      ctx.drawImage(uploaded.image, (box.width - w) / 2, (box.height - h) / 2, w, h);
      return true;
    },
    start() { uploaded = null; schedulePrediction(); },
    move: schedulePrediction,
    end: predictNow,
  });

  function undo() {
    if (uploaded) uploaded = null; else board.strokes.pop();
    board.redraw();
    predictNow();
  }

  function clear() {
    board.strokes = [];
    uploaded = null;
    upload.value = "";
    board.redraw();
    predictNow();
  }

  document.getElementById("undo").addEventListener("click", undo);
  document.getElementById("clear").addEventListener("click", clear);
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") { event.preventDefault(); undo(); }
    if (event.key === "Escape") clear();
  });

  upload.addEventListener("change", () => {
    const file = upload.files && upload.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => {
      const image = new Image();
      image.onload = () => {
        board.strokes = [];
        uploaded = { image, dataUrl: reader.result };
        board.redraw();
        predictNow();
      };
      image.onerror = () => showError("That file is not an image this browser can read.");
      image.src = reader.result;
    };
    reader.readAsDataURL(file);
  });

  // -- predictions -----------------------------------------------------------------------------------------
  function schedulePrediction() {
    const delay = localNetwork() ? LOCAL_PREDICT_EVERY_MS : PREDICT_EVERY_MS;
    if (timer === null) timer = setTimeout(() => { timer = null; predict(); }, delay);
  }

  function predictNow() {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    predict();
  }

  function pointCount() {
    return board.strokes.reduce((total, stroke) => total + stroke.length, 0);
  }

  // The selected model's in-page network, or null while its weights load (or where they cannot).
  function localNetwork() {
    return (nn.models && nn.models[modelSelect.value]) || null;
  }

  function predictInPage(network) {
    let pixels;
    try {
      pixels = nn.preprocess(board.strokes, network.style);
    } catch (error) {
      if (error.name === "EmptyDrawingError") showEmpty(error.message); else showError(error.message);
      return;
    }
    const probabilities = network.predict(pixels);
    const order = Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a]);
    const scores = order.slice(0, TOP_K).map((i) => ({ label: network.labels[i], probability: probabilities[i] }));
    const preview = Array.from({ length: 28 }, (_, row) => Array.from(pixels.subarray(row * 28, row * 28 + 28)));
    showPrediction({ model: modelSelect.value, scores, preview }, "page");
  }

  async function predict() {
    if (inFlight) { pending = true; return; }   // one request at a time; the latest drawing goes next
    if (!uploaded && pointCount() < 2) { showEmpty(); return; }
    const network = uploaded ? null : localNetwork();
    if (network) { predictInPage(network); return; }
    if (bundled) { showError("This page cannot classify uploads: it has no server."); return; }
    const body = { model: modelSelect.value };
    if (uploaded) body.image = uploaded.dataUrl; else body.strokes = board.strokes;
    inFlight = true;
    try {
      const response = await fetch("/api/predict", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const data = await response.json().catch(() => ({ error: `The server answered ${response.status}` }));
      if (!pending) {
        if (response.ok) showPrediction(data, "server");
        else if (response.status === 422 && /draw something/i.test(data.error || "")) showEmpty(data.error);
        else showError(data.error || `The server answered ${response.status}`);
      }
    } catch (error) {
      if (!pending) showError("The app's server cannot be reached. Is it still running?");
    } finally {
      inFlight = false;
      if (pending) { pending = false; predict(); }
    }
  }

  function showPrediction(data, source) {
    list.dataset.source = source;
    list.replaceChildren(...window.board.scoreItems(data.scores, true));
    setStatus(`${data.model}: ${confidence(data.scores[0].probability)}`);
    showPreview(data.preview);
  }

  function confidence(p) {
    if (p > 0.9) return "quite sure.";
    if (p > 0.6) return "fairly sure.";
    return "not sure yet — keep drawing.";
  }

  function showPreview(rows) {
    const image = ctxPreview.createImageData(28, 28);
    rows.flat().forEach((value, index) => {
      image.data.set([value, value, value, 255], index * 4);
    });
    ctxPreview.putImageData(image, 0, 0);
    preview.dataset.shown = "true";
  }

  function showEmpty(message) {
    list.replaceChildren();
    delete list.dataset.source;
    ctxPreview.fillStyle = "#000";
    ctxPreview.fillRect(0, 0, 28, 28);
    delete preview.dataset.shown;
    setStatus(message ? "Draw something first: the canvas is empty." : "Draw something and the network will guess what it is.");
  }

  function showError(message) {
    setStatus(message, true);
  }

  function setStatus(message, isError = false) {
    statusLine.textContent = message;
    statusLine.classList.toggle("error", isError);
  }

  // -- models ----------------------------------------------------------------------------------------------
  function showLabels() {
    const model = models.find((m) => m.name === modelSelect.value);
    labelsLine.textContent = model ? model.labels.join(", ") : "…";
  }

  function selectModel() {
    if (localNetwork()) nn.use(modelSelect.value);  // window.nn.labels and predict follow the page's choice
    showLabels();
  }

  modelSelect.addEventListener("change", () => {
    try { localStorage.setItem(STORAGE_KEY, modelSelect.value); } catch (error) { /* private mode */ }
    selectModel();
    predictNow();
  });

  // The server's models' weights, for predicting in the page; a model that fails stays on the server.
  async function loadNetwork(name) {
    const base = `/api/models/${encodeURIComponent(name)}`;
    try {
      const [manifest, weights] = await Promise.all([
        fetch(`${base}/model.json`).then((r) => (r.ok ? r.json() : Promise.reject(new Error(r.statusText)))),
        fetch(`${base}/model.bin`).then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(r.statusText)))),
      ]);
      nn.register(manifest, weights);
      if (modelSelect.value === name) selectModel();
    } catch (error) {
      console.info(`${name}: predicting on the server (${error.message})`);
    }
  }

  async function loadModels() {
    if (bundled) {
      models = Object.values(nn.models).map((network) => ({ name: network.name, labels: network.labels }));
      document.getElementById("upload-button").hidden = true;  // uploads need the server
    } else {
      try {
        const response = await fetch("/api/models");
        models = await response.json();
      } catch (error) {
        showError("Could not load the list of models from the server.");
        return;
      }
      if (typeof nn.register === "function" && typeof nn.preprocess === "function") {
        models.forEach((model) => loadNetwork(model.name));
      }
    }
    let saved = null;
    try { saved = localStorage.getItem(STORAGE_KEY); } catch (error) { /* private mode */ }
    modelSelect.replaceChildren(...models.map((model) => {
      const option = document.createElement("option");
      option.value = model.name;
      option.textContent = model.name;
      return option;
    }));
    if (saved && models.some((m) => m.name === saved)) modelSelect.value = saved;
    selectModel();
  }

  board.resize();
  showEmpty();
  loadModels();
})();
