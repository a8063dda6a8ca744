// Strokes -> the 28x28 image a model sees, in the browser: a line-for-line port of preprocess_strokes in
// NeuralNetworks/data/images.py (the reference; keep the two in step). Same constants, same float geometry,
// same order of operations, so that both give the same pixels (the tests measure how close).
//
// API: window.nn.preprocess(strokes, style) with strokes [[[x, y], ...], ...] (y down, any unit) and style
// "quickdraw" or "mnist" returns a Uint8Array of 784 values, white ink on black (an image spec {kind: "image",
// height, width, channels}: height x width x channels values, see imageSample); window.nn.renderStrokes
// (strokes, lineWidth) is the QuickDraw renderer with a line width in its 256-unit space. Both throw an
// Error whose name is "EmptyDrawingError" for fewer than two points.
"use strict";

(() => {
  const nn = (window.nn = window.nn || {});

  const SIZE = 28;
  const SUPERSAMPLING = 8;
  const INK = 255;
  const SIDE = SIZE * SUPERSAMPLING;
  const MAX_POINTS = 10000;

  const QUICKDRAW_EXTENT = 255.0;
  const QUICKDRAW_SPACE = 256.0;
  const QUICKDRAW_PADDING = 16.0;
  const QUICKDRAW_LINE_WIDTH = 16.0;
  const QUICKDRAW_FRAME = QUICKDRAW_SPACE + 2 * QUICKDRAW_PADDING + QUICKDRAW_LINE_WIDTH;
  const QUICKDRAW_SIMPLIFY_EPSILON = 2.0;

  const MNIST_BOX = 20.0;
  const MNIST_PEN_WIDTH = 3.0;
  const MNIST_CENTER = 14.0;
  const MNIST_SIMPLIFY_EPSILON = 0.1;

  function emptyDrawing(count) {
    const error = new Error(`The drawing is empty: draw something (received ${count} point${count === 1 ? "" : "s"}, ` +
      "at least 2 are needed)");
    error.name = "EmptyDrawingError";
    return error;
  }

  // hypot as NumPy's (C's) computes it: correctly rounded. Math.hypot is off by one ulp for about a third of
  // inputs, enough to break a tie differently in simplify. Squares and sums are exact in double-double.
  const SPLIT = 134217729;  // 2^27 + 1: Dekker's split of a double into two 26-bit halves
  function twoProduct(a, b) {
    const product = a * b, ca = SPLIT * a, cb = SPLIT * b;
    const aHigh = ca - (ca - a), aLow = a - aHigh, bHigh = cb - (cb - b), bLow = b - bHigh;
    return [product, ((aHigh * bHigh - product) + aHigh * bLow + aLow * bHigh) + aLow * bLow];
  }

  function hypot(x, y) {
    const big = Math.max(Math.abs(x), Math.abs(y));
    if (big === 0 || !Number.isFinite(big)) return Math.hypot(x, y);
    const scale = 2 ** Math.round(Math.log2(big));  // a power of two: exact, and no overflow in the squares
    const [xx, xxError] = twoProduct(x / scale, x / scale), [yy, yyError] = twoProduct(y / scale, y / scale);
    const sum = xx + yy;
    const sumError = (Math.abs(xx) >= Math.abs(yy) ? (xx - sum) + yy : (yy - sum) + xx) + xxError + yyError;
    const root = Math.sqrt(sum + sumError);
    const [square, squareError] = twoProduct(root, root);
    const residual = ((square - sum) + squareError) - sumError;  // root^2 - (x^2 + y^2), nearly exact
    return (root - residual / (2 * root)) * scale;
  }

  // numpy.rint and Python's round: halves go to the even neighbour.
  function roundHalfEven(value) {
    const floor = Math.floor(value), fraction = value - floor;
    if (fraction !== 0.5) return Math.round(value);
    return floor % 2 === 0 ? floor : floor + 1;
  }

  // _as_strokes: finite (x, y) pairs; empty strokes dropped; at least 2 and at most MAX_POINTS points.
  function asStrokes(strokes) {
    if (!Array.isArray(strokes)) throw new TypeError("strokes must be a list of strokes, each a list of (x, y) points");
    const arrays = [];
    let total = 0;
    strokes.forEach((stroke, index) => {
      if (!Array.isArray(stroke)) throw new TypeError(`stroke ${index} must be a list of (x, y) number pairs`);
      if (stroke.length === 0) return;
      const points = stroke.map((point) => {
        if (!Array.isArray(point) || point.length !== 2) throw new TypeError(`stroke ${index} must hold (x, y) pairs`);
        const [x, y] = point.map(Number);
        if (!Number.isFinite(x) || !Number.isFinite(y)) throw new RangeError(`stroke ${index} contains NaN or infinite coordinates`);
        return [x, y];
      });
      total += points.length;
      if (total > MAX_POINTS) throw new RangeError(`The drawing has more than ${MAX_POINTS} points; simplify it`);
      arrays.push(points);
    });
    if (total < 2) throw emptyDrawing(total);
    return arrays;
  }

  // Ramer-Douglas-Peucker: keep the fewest points whose polyline stays within epsilon of the points.
  function simplify(points, epsilon) {
    if (points.length < 3) return points;
    const keep = new Uint8Array(points.length);
    keep[0] = keep[points.length - 1] = 1;
    const spans = [[0, points.length - 1]];
    while (spans.length) {
      const [first, last] = spans.pop();
      if (last - first < 2) continue;
      const [fx, fy] = points[first];
      const chordX = points[last][0] - fx, chordY = points[last][1] - fy;
      const length = hypot(chordX, chordY);
      let farthest = -1, largest = -Infinity;
      for (let i = first + 1; i < last; i++) {
        const ix = points[i][0] - fx, iy = points[i][1] - fy;
        const distance = length === 0 ? hypot(ix, iy) : Math.abs(ix * chordY - iy * chordX) / length;
        if (distance > largest) { largest = distance; farthest = i; }
      }
      if (largest > epsilon) {
        keep[farthest] = 1;
        spans.push([first, farthest], [farthest, last]);
      }
    }
    return points.filter((_, i) => keep[i]);
  }

  // Ink coverage in [0, 1] of round-capped polylines on a side x side grid (pixel i spans [i, i+1]).
  function coverage(strokes, radius, side) {
    const canvas = new Float32Array(side * side);
    for (const points of strokes) {
      const segments = points.length === 1 ? [[points[0], points[0]]] : points.slice(1).map((end, i) => [points[i], end]);
      for (const [[ax, ay], [bx, by]] of segments) {
        const reach = radius + 1;
        const x0 = Math.max(Math.trunc(Math.min(ax, bx) - reach), 0), x1 = Math.min(Math.trunc(Math.max(ax, bx) + reach) + 1, side);
        const y0 = Math.max(Math.trunc(Math.min(ay, by) - reach), 0), y1 = Math.min(Math.trunc(Math.max(ay, by) + reach) + 1, side);
        if (x0 >= x1 || y0 >= y1) continue;
        const dx = bx - ax, dy = by - ay;
        const length2 = dx * dx + dy * dy;
        for (let row = y0; row < y1; row++) {
          const py = row + 0.5 - ay;
          for (let column = x0; column < x1; column++) {
            const px = column + 0.5 - ax;
            const t = length2 > 0 ? Math.min(Math.max((px * dx + py * dy) / length2, 0), 1) : 0;
            const distance = hypot(px - t * dx, py - t * dy);
            const ink = Math.fround(Math.min(Math.max(radius + 0.5 - distance, 0), 1));
            const at = row * side + column;
            if (ink > canvas[at]) canvas[at] = ink;
          }
        }
      }
    }
    return canvas;
  }

  // Area-average SUPERSAMPLING x SUPERSAMPLING blocks and quantize to uint8 ink.
  function reduce(canvas) {
    const pixels = new Uint8Array(SIZE * SIZE);
    const area = SUPERSAMPLING * SUPERSAMPLING;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        let sum = 0;
        for (let dy = 0; dy < SUPERSAMPLING; dy++) {
          const row = (y * SUPERSAMPLING + dy) * SIDE + x * SUPERSAMPLING;
          for (let dx = 0; dx < SUPERSAMPLING; dx++) sum += canvas[row + dx];
        }
        const mean = Math.min(Math.max(Math.fround(sum / area), 0), 1);
        pixels[y * SIZE + x] = roundHalfEven(Math.fround(mean * INK));
      }
    }
    return pixels;
  }

  function bounds(strokes) {
    const low = [Infinity, Infinity], high = [-Infinity, -Infinity];
    for (const points of strokes) {
      for (const [x, y] of points) {
        low[0] = Math.min(low[0], x); low[1] = Math.min(low[1], y);
        high[0] = Math.max(high[0], x); high[1] = Math.max(high[1], y);
      }
    }
    return { low, high, extent: Math.max(high[0] - low[0], high[1] - low[1]) };
  }

  const mapPoints = (points, f) => points.map(([x, y]) => [f(x, 0), f(y, 1)]);

  // QuickDraw's numpy_bitmap: aligned to 0, longer side 255, simplified, centred in a 304-unit frame.
  function renderStrokes(strokes, lineWidth = QUICKDRAW_LINE_WIDTH) {
    if (typeof lineWidth !== "number" || !Number.isFinite(lineWidth) || lineWidth <= 0) {
      throw new RangeError("lineWidth must be a positive number of 256-space units");
    }
    const arrays = asStrokes(strokes);
    const { low, extent } = bounds(arrays);
    const scale = extent > 0 ? QUICKDRAW_EXTENT / extent : 1.0;
    const aligned = arrays.map((points) => simplify(mapPoints(points, (v, axis) => (v - low[axis]) * scale),
                                                    QUICKDRAW_SIMPLIFY_EPSILON));
    const box = bounds(aligned).high;
    const offset = box.map((edge) => (QUICKDRAW_SPACE - edge) / 2 + (QUICKDRAW_FRAME - QUICKDRAW_SPACE) / 2);
    const pixelsPerUnit = SIZE * SUPERSAMPLING / QUICKDRAW_FRAME;
    const placed = aligned.map((points) => mapPoints(points, (v, axis) => (v + offset[axis]) * pixelsPerUnit));
    return reduce(coverage(placed, lineWidth / 2 * pixelsPerUnit, SIDE));
  }

  // Shift supersampled coverage so its centre of mass falls on output pixel MNIST_CENTER.
  function centerByMass(canvas) {
    let mass = 0, rows = 0, columns = 0;
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        const value = canvas[y * SIDE + x];
        mass += value; rows += value * y; columns += value * x;
      }
    }
    const target = (MNIST_CENTER + 0.5) * SUPERSAMPLING - 0.5;
    const shiftY = roundHalfEven(target - rows / Math.fround(mass)), shiftX = roundHalfEven(target - columns / Math.fround(mass));
    const shifted = new Float32Array(SIDE * SIDE);
    for (let y = Math.max(shiftY, 0); y < Math.min(SIDE + shiftY, SIDE); y++) {
      const from = (y - shiftY) * SIDE - shiftX;
      for (let x = Math.max(shiftX, 0); x < Math.min(SIDE + shiftX, SIDE); x++) shifted[y * SIDE + x] = canvas[from + x];
    }
    return shifted;
  }

  // An MNIST digit: the ink box fitted to 20x20 with a 3 px pen, centred by mass.
  function renderStrokesMnist(strokes) {
    const arrays = asStrokes(strokes);
    const { low, extent } = bounds(arrays);
    const centerlineBox = (MNIST_BOX - MNIST_PEN_WIDTH) * SUPERSAMPLING;
    const scale = extent > 0 ? centerlineBox / extent : 1.0;
    const radius = MNIST_PEN_WIDTH * SUPERSAMPLING / 2;
    const epsilon = MNIST_SIMPLIFY_EPSILON * SUPERSAMPLING;
    const placed = arrays.map((points) => simplify(mapPoints(points, (v, axis) => (v - low[axis]) * scale + radius + 1),
                                                   epsilon));
    return reduce(centerByMass(coverage(placed, radius, SIDE)));
  }

  // data/folder.py's resample: bilinear between pixel centres, edges clamped, rounded half to even.
  function taps(size, target) {
    const low = new Int32Array(target), high = new Int32Array(target), weight = new Float64Array(target);
    for (let i = 0; i < target; i++) {
      const position = Math.min(Math.max((i + 0.5) * (size / target) - 0.5, 0), size - 1);
      low[i] = Math.floor(position);
      high[i] = Math.min(low[i] + 1, size - 1);
      weight[i] = position - low[i];
    }
    return { low, high, weight };
  }

  function resample(bitmap, size, height, width) {
    const rows = taps(size, height), cols = taps(size, width);
    const across = new Float64Array(size * width);
    for (let r = 0; r < size; r++) {
      for (let j = 0; j < width; j++) {
        across[r * width + j] = bitmap[r * size + cols.low[j]] * (1 - cols.weight[j]) +
          bitmap[r * size + cols.high[j]] * cols.weight[j];
      }
    }
    const out = new Uint8Array(height * width);
    for (let i = 0; i < height; i++) {
      for (let j = 0; j < width; j++) {
        out[i * width + j] = roundHalfEven(across[rows.low[i] * width + j] * (1 - rows.weight[i]) +
          across[rows.high[i] * width + j] * rows.weight[i]);
      }
    }
    return out;
  }

  // data/folder.py's strokes_sample: a model trained on an image folder takes (height, width, channels); the
  // drawing is rendered as QuickDraw's 28x28 white ink on black, resized, grey repeated in every channel.
  function imageSample(strokes, spec) {
    const grey = resample(renderStrokes(strokes), SIZE, spec.height, spec.width);
    if (spec.channels === 1) return grey;
    const out = new Uint8Array(grey.length * spec.channels);
    for (let i = 0; i < grey.length; i++) out.fill(grey[i], i * spec.channels, (i + 1) * spec.channels);
    return out;
  }

  nn.renderStrokes = renderStrokes;
  nn.resample = resample;
  nn.preprocess = (strokes, style = "quickdraw") => {
    if (style === "mnist") return renderStrokesMnist(strokes);
    if (style === "quickdraw") return renderStrokes(strokes);
    if (style && style.kind === "image") return imageSample(strokes, style);
    throw new RangeError(`Unknown preprocessing style ${style}. Expected one of: quickdraw, mnist, an image spec`);
  };
})();
