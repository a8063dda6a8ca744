// The Teach page: name classes, draw examples of each, train a model on them in this app's server, test it.
//
// Everything goes through /api/teach (see docs/teach.md): a private session on the server holds the examples
// and the model. Class names are the user's text and are only ever shown with textContent, never as HTML.
"use strict";

(() => {
  const PREDICT_EVERY_MS = 150;   // at most one guess request per interval while drawing
  const STORAGE_KEY = "nn-teach-session";

  const $ = (id) => document.getElementById(id);
  const pad = $("pad");
  const classSelect = $("class");
  const classList = $("classes");
  const statusLine = $("status");
  const trainButton = $("train");
  const trainStatus = $("train-status");
  const progressFill = $("progress-fill");
  const predictions = $("predictions");
  const guessStatus = $("guess-status");
  const upload = $("upload");

  let session = null;
  let state = null;           // GET /api/teach/{session}: classes, trained, limits
  let named = [];             // classes named on this page that have no example on the server yet
  let added = [];             // ids of the examples added from this page, newest last (for "Undo last example")
  let guessTimer = null;
  let training = false;
  let guessTicket = 0;        // answers to older guess requests than the latest are dropped

  // -- the drawing board -------------------------------------------------------------------------------------
  const board = window.board.create(pad, $("hint"), { move: scheduleGuess, end: guessNow });

  function clearPad() {
    board.strokes = [];
    board.redraw();
    showGuess(null);
  }

  $("undo").addEventListener("click", () => { board.strokes.pop(); board.redraw(); guessNow(); });
  $("clear").addEventListener("click", clearPad);
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement) return;
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault(); board.strokes.pop(); board.redraw(); guessNow();
    }
    if (event.key === "Escape") clearPad();
    if (event.key === "Enter" && !(event.target instanceof HTMLButtonElement)) addExample({ strokes: board.strokes });
  });

  // -- the server ------------------------------------------------------------------------------------------
  async function call(method, path, body) {
    const options = { method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(`/api/teach${path}`, options);
    } catch (error) {
      throw new Error("The app's server cannot be reached. Is it still running?");
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({ error: `The server answered ${response.status}` }));
    if (!response.ok) {
      const error = new Error(data.error || `The server answered ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function setStatus(line, message, isError = false) {
    line.textContent = message;
    line.classList.toggle("error", isError);
  }

  async function start() {
    try { session = sessionStorage.getItem(STORAGE_KEY); } catch (error) { session = null; }
    if (session) {
      try { await refresh(); return; } catch (error) { session = null; }
    }
    try {
      session = (await call("POST", "", {})).session;
      try { sessionStorage.setItem(STORAGE_KEY, session); } catch (error) { /* private mode */ }
      await refresh();
    } catch (error) {
      setStatus(statusLine, error.message, true);
    }
  }

  async function refresh() {
    state = await call("GET", `/${encodeURIComponent(session)}`);
    named = named.filter((label) => !state.classes.some((entry) => entry.label === label));
    render();
    document.body.dataset.session = "ready";
  }

  // -- classes and examples ----------------------------------------------------------------------------------
  function allClasses() {
    const onServer = state ? state.classes : [];
    return [...onServer, ...named.map((label) => ({ label, count: 0, examples: [] }))];
  }

  function render() {
    const classes = allClasses();
    const chosen = classSelect.value;
    classSelect.replaceChildren(...classes.map((entry) => {
      const option = document.createElement("option");
      option.value = entry.label;
      option.textContent = entry.label;
      return option;
    }));
    if (classes.some((entry) => entry.label === chosen)) classSelect.value = chosen;
    classList.replaceChildren(...classes.map(classItem));
    $("undo-example").disabled = added.length === 0;
    const limits = state ? state.limits : { MIN_CLASSES: 2, MIN_EXAMPLES_PER_CLASS: 2 };
    const ready = state && state.classes.length >= limits.MIN_CLASSES &&
      state.classes.every((entry) => entry.count >= limits.MIN_EXAMPLES_PER_CLASS);
    trainButton.disabled = training || !ready;
    const trained = state && state.trained;
    $("downloads").hidden = !trained;
    if (trained) {
      $("download-model").href = `/api/teach/${encodeURIComponent(session)}/model`;
      $("download-web").href = `/api/teach/${encodeURIComponent(session)}/export`;
    }
    if (!training) {
      if (trained) {
        setStatus(trainStatus, `Trained on ${trained.examples} examples in ${trained.seconds.toFixed(1)} s: ` +
          `${(100 * trained.accuracy).toFixed(0)}% of them recognised.` +
          (trained.stale ? " Examples changed since: train again." : ""));
      } else {
        setStatus(trainStatus, ready ? "Ready to train." : `Training needs ${limits.MIN_CLASSES} classes with ` +
          `${limits.MIN_EXAMPLES_PER_CLASS} examples each.`);
      }
    }
  }

  function classItem(entry) {
    const item = document.createElement("li");
    const head = document.createElement("div");
    head.className = "class-head";
    const name = document.createElement("span");
    name.className = "class-name";
    name.textContent = entry.label;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = `${entry.count} example${entry.count === 1 ? "" : "s"}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "Delete";
    remove.title = "Delete this class and its examples";
    remove.addEventListener("click", () => deleteClass(entry));
    head.append(name, count, remove);
    const thumbs = document.createElement("div");
    thumbs.className = "thumbs";
    for (const example of entry.examples) {
      const image = document.createElement("img");
      image.src = example.thumbnail;
      image.width = 28;
      image.height = 28;
      image.alt = "An example";
      image.title = "Click to remove this example";
      image.addEventListener("click", () => deleteExample(example.id));
      thumbs.append(image);
    }
    item.append(head, thumbs);
    return item;
  }

  $("new-class").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("class-name");
    const label = input.value.trim();
    if (!label) return;
    const maxChars = state ? state.limits.MAX_LABEL_CHARS : 40;
    const maxClasses = state ? state.limits.MAX_CLASSES : 10;
    if (label.length > maxChars) { setStatus(statusLine, `A class name has at most ${maxChars} characters.`, true); return; }
    if (allClasses().some((entry) => entry.label === label)) { classSelect.value = label; input.value = ""; return; }
    if (allClasses().length >= maxClasses) { setStatus(statusLine, `At most ${maxClasses} classes.`, true); return; }
    named.push(label);
    input.value = "";
    render();
    classSelect.value = label;
    setStatus(statusLine, "Now draw an example of it and press Add example.");
  });

  async function addExample(drawing) {
    const label = classSelect.value;
    if (!session || !label) { setStatus(statusLine, "Add a class first, then draw examples of it.", true); return; }
    if (drawing.strokes && drawing.strokes.length === 0) { setStatus(statusLine, "Draw something first.", true); return; }
    try {
      const result = await call("POST", `/${encodeURIComponent(session)}/examples`, { label, ...drawing });
      added.push(result.id);
      if (drawing.strokes) clearPad();
      await refresh();
      setStatus(statusLine, `Added: ${result.count} example${result.count === 1 ? "" : "s"} of “${label}”.`);
    } catch (error) {
      setStatus(statusLine, error.message, true);
    }
  }

  async function deleteExample(id) {
    try {
      state = await call("DELETE", `/${encodeURIComponent(session)}/examples/${id}`);
      added = added.filter((other) => other !== id);
      render();
    } catch (error) {
      setStatus(statusLine, error.message, true);
    }
  }

  async function deleteClass(entry) {
    named = named.filter((label) => label !== entry.label);
    if (state && state.classes.some((other) => other.label === entry.label)) {
      try {
        state = await call("DELETE", `/${encodeURIComponent(session)}/classes/${encodeURIComponent(entry.label)}`);
      } catch (error) {
        setStatus(statusLine, error.message, true);
      }
    }
    render();
    guessNow();
  }

  $("add").addEventListener("click", () => addExample({ strokes: board.strokes }));
  $("undo-example").addEventListener("click", () => { if (added.length) deleteExample(added[added.length - 1]); });

  upload.addEventListener("change", () => {
    const file = upload.files && upload.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => { upload.value = ""; addExample({ image: reader.result }); };
    reader.readAsDataURL(file);
  });

  // -- training ----------------------------------------------------------------------------------------------
  function showProgress(data) {
    if (data.phase !== "training" || !data.epochs) return;
    progressFill.style.width = `${(100 * data.epoch) / data.epochs}%`;
    const parts = [`Epoch ${data.epoch} of ${data.epochs}`];
    if (typeof data.loss === "number") parts.push(`loss ${data.loss.toFixed(3)}`);
    if (typeof data.accuracy === "number") parts.push(`accuracy ${(100 * data.accuracy).toFixed(0)}%`);
    setStatus(trainStatus, parts.join(" · "));
  }

  trainButton.addEventListener("click", async () => {
    training = true;
    render();
    progressFill.style.width = "0%";
    setStatus(trainStatus, "Training…");
    const events = new EventSource(`/api/teach/${encodeURIComponent(session)}/events`);
    events.addEventListener("progress", (event) => showProgress(JSON.parse(event.data)));
    try {
      const result = await call("POST", `/${encodeURIComponent(session)}/train`);
      progressFill.style.width = "100%";
      training = false;
      await refresh();
      setStatus(trainStatus, `Trained in ${result.seconds.toFixed(1)} s: ${(100 * result.accuracy).toFixed(0)}% ` +
        "of the examples recognised. Draw to test it.");
      guessNow();
    } catch (error) {
      training = false;
      render();
      setStatus(trainStatus, error.message, true);
    } finally {
      events.close();
    }
  });

  // -- guesses -----------------------------------------------------------------------------------------------
  function scheduleGuess() {
    if (guessTimer === null) guessTimer = setTimeout(() => { guessTimer = null; guess(); }, PREDICT_EVERY_MS);
  }

  function guessNow() {
    if (guessTimer !== null) { clearTimeout(guessTimer); guessTimer = null; }
    guess();
  }

  async function guess() {
    const ticket = ++guessTicket;
    if (!state || !state.trained || board.strokes.length === 0) { showGuess(null); return; }
    try {
      const answer = await call("POST", `/${encodeURIComponent(session)}/predict`, { strokes: board.strokes });
      if (ticket === guessTicket) showGuess(answer);
    } catch (error) {
      if (ticket !== guessTicket) return;
      if (error.status === 422) showGuess(null); else setStatus(guessStatus, error.message, true);
    }
  }

  function showGuess(data) {
    if (!data) {
      predictions.replaceChildren();
      setStatus(guessStatus, state && state.trained ? "Draw to test your model." :
        "Once trained, the model guesses what you draw.");
      return;
    }
    predictions.replaceChildren(...window.board.scoreItems(data.scores));
    setStatus(guessStatus, `Your model says: ${data.label}`);
  }

  board.resize();
  start();
})();
