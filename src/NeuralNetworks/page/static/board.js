// What the doodle page (app.js) and Teach (teach.js) share: the drawing board, a canvas that captures strokes as
// vectors with pointer events, keeps them when the board resizes and draws them; and the list of guesses.
//
// window.board.create(pad, hint, hooks) -> {strokes, redraw(), resize()}: `pad` the <canvas>, `hint` the element
// shown while the board is empty; `strokes` ([[[x, y], ...], ...] in board pixels, y down) may be read, changed
// or replaced. Hooks, each optional: background(ctx, box) draws under the strokes and answers whether it drew
// anything (then the hint hides); start() runs before a stroke begins, move() after it grows, end() after it ends.
// window.board.scoreItems(scores, animate) -> the <li> of each {label, probability}: label, percentage and bar
// (its width set on the next frame when `animate`, so that it slides); the label only ever as text.
"use strict";

window.board = (() => {
  const MIN_STEP_PX = 1.5;        // skip pointer samples closer than this to the previous point
  const PEN_FRACTION = 0.035;     // on-screen pen width, relative to the board; the model's input does not depend on it
  const MIN_PEN_PX = 4;
  const INK = "#1f2433";

  function create(pad, hint, hooks = {}) {
    const ctx = pad.getContext("2d");
    let strokes = [];
    let activePointer = null;
    let boardWidth = 0;        // CSS width the strokes were captured at, to rescale them when the board resizes

    function resize() {
      const ratio = window.devicePixelRatio || 1;
      const box = pad.getBoundingClientRect();
      if (boardWidth > 0 && box.width > 0 && box.width !== boardWidth) {
        const scale = box.width / boardWidth;
        strokes = strokes.map((stroke) => stroke.map(([x, y]) => [x * scale, y * scale]));
      }
      boardWidth = box.width;
      pad.width = Math.round(box.width * ratio);
      pad.height = Math.round(box.height * ratio);
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      redraw();
    }

    function redraw() {
      const box = pad.getBoundingClientRect();
      ctx.clearRect(0, 0, box.width, box.height);
      const drewBackground = hooks.background ? Boolean(hooks.background(ctx, box)) : false;
      Object.assign(ctx, { lineCap: "round", lineJoin: "round", strokeStyle: INK, fillStyle: INK,
        lineWidth: Math.max(MIN_PEN_PX, box.width * PEN_FRACTION) });
      for (const stroke of strokes) drawStroke(stroke);
      hint.classList.toggle("hidden", strokes.length > 0 || drewBackground);
    }

    function drawStroke(stroke) {
      ctx.beginPath();
      if (stroke.length === 1) {
        ctx.arc(stroke[0][0], stroke[0][1], ctx.lineWidth / 2, 0, 2 * Math.PI);
        ctx.fill();
        return;
      }
      ctx.moveTo(stroke[0][0], stroke[0][1]);
      for (const [x, y] of stroke.slice(1)) ctx.lineTo(x, y);
      ctx.stroke();
    }

    function pointOf(event) {
      const box = pad.getBoundingClientRect();
      return [Math.round((event.clientX - box.left) * 10) / 10, Math.round((event.clientY - box.top) * 10) / 10];
    }

    pad.addEventListener("pointerdown", (event) => {
      if (activePointer !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
      event.preventDefault();
      activePointer = event.pointerId;
      pad.setPointerCapture(event.pointerId);
      if (hooks.start) hooks.start();
      strokes.push([pointOf(event)]);
      redraw();
    });

    pad.addEventListener("pointermove", (event) => {
      if (event.pointerId !== activePointer) return;
      event.preventDefault();
      const stroke = strokes[strokes.length - 1];
      const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
      for (const sample of samples.length ? samples : [event]) {
        const point = pointOf(sample);
        const last = stroke[stroke.length - 1];
        if (Math.hypot(point[0] - last[0], point[1] - last[1]) < MIN_STEP_PX) continue;
        stroke.push(point);
        ctx.beginPath();
        ctx.moveTo(last[0], last[1]);
        ctx.lineTo(point[0], point[1]);
        ctx.stroke();
      }
      if (hooks.move) hooks.move();
    });

    function endStroke(event) {
      if (event.pointerId !== activePointer) return;
      activePointer = null;
      redraw();
      if (hooks.end) hooks.end();
    }
    pad.addEventListener("pointerup", endStroke);
    pad.addEventListener("pointercancel", endStroke);
    window.addEventListener("resize", resize);

    return {
      get strokes() { return strokes; },
      set strokes(value) { strokes = value; },
      redraw,
      resize,
    };
  }

  function scoreItems(scores, animate = false) {
    return scores.map((score) => {
      const item = document.createElement("li");
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = score.label;
      const pct = document.createElement("span");
      pct.className = "pct";
      pct.textContent = `${(100 * score.probability).toFixed(1)}%`;
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.className = "fill";
      const width = `${Math.max(1, 100 * score.probability)}%`;
      if (animate) requestAnimationFrame(() => { fill.style.width = width; }); else fill.style.width = width;
      bar.append(fill);
      item.append(label, pct, bar);
      return item;
    });
  }

  return { create, scoreItems };
})();
