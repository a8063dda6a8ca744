// NeuralNetworks in the browser: the convolutions of the forward pass in nn.js, which needs this file loaded first
// (and nn-winograd.js before it).
//
// window.nn.convolution(layer, weights) picks, when a model loads, the way a Conv2D layer of the manifest runs,
// prepares its kernel for it and returns (x, step, out) -> out, the pre-activation output (Float32Array,
// channels-last; nn.js applies the activation): Winograd (nn-winograd.js) for stride-1 3x3 windows over 8
// channels or more, a zero-skipping sum for narrow first layers, blocked direct sums otherwise. Arithmetic in
// double precision, stored as float32. weights.tapShift, where nn.js folded an affine step into the layer, is
// what a constant input adds through each tap ([tap][filter]); it is added where the tap falls on a real pixel.
// window.nn.fold(layers, outputs, affineOf) is that folding, which nn.js does when a model loads.
"use strict";

(() => {
  const nn = (window.nn = window.nn || {});

  // Each filter's weights in one run, [filter][ky][kx][channel], so that one output value is a few contiguous dot
  // products: a window row of the input (kx, channel) is contiguous too. Made once, when the model loads.
  function filterMajor(kernel, filters) {
    const taps = kernel.length / filters;
    const out = new Float32Array(kernel.length);
    for (let t = 0; t < taps; t++) {
      for (let f = 0; f < filters; f++) out[f * taps + t] = kernel[t * filters + f];
    }
    return out;
  }

  // Eight filters at a time share every input read; the sums stay in registers (double precision). About 3x
  // faster than accumulating each tap into an array of per-filter sums.
  function conv2d(x, step, out, { kernel, bias }) {
    const [height, width, channels] = step.input_shape, [outHeight, outWidth, filters] = step.output_shape;
    const [windowHeight, windowWidth] = step.settings.window, [strideY, strideX] = step.settings.strides;
    const [top, left] = step.settings.pads;
    const rowLength = windowWidth * channels, filterLength = windowHeight * rowLength;
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideY - top;
      const kyBegin = Math.max(0, -y0), kyEnd = Math.min(windowHeight, height - y0);
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideX - left;
        const kxBegin = Math.max(0, -x0), kxEnd = Math.min(windowWidth, width - x0);
        const span = (kxEnd - kxBegin) * channels, outBase = (oy * outWidth + ox) * filters;
        let f = 0;
        for (; f + 8 <= filters; f += 8) {
          const b = outBase + f;
          let s0 = bias[b], s1 = bias[b + 1], s2 = bias[b + 2], s3 = bias[b + 3];
          let s4 = bias[b + 4], s5 = bias[b + 5], s6 = bias[b + 6], s7 = bias[b + 7];
          for (let ky = kyBegin; ky < kyEnd; ky++) {
            const xi = ((y0 + ky) * width + x0 + kxBegin) * channels;
            const k0 = f * filterLength + ky * rowLength + kxBegin * channels;
            const k1 = k0 + filterLength, k2 = k1 + filterLength, k3 = k2 + filterLength;
            const k4 = k3 + filterLength, k5 = k4 + filterLength, k6 = k5 + filterLength, k7 = k6 + filterLength;
            for (let i = 0; i < span; i++) {
              const value = x[xi + i];
              s0 += value * kernel[k0 + i];
              s1 += value * kernel[k1 + i];
              s2 += value * kernel[k2 + i];
              s3 += value * kernel[k3 + i];
              s4 += value * kernel[k4 + i];
              s5 += value * kernel[k5 + i];
              s6 += value * kernel[k6 + i];
              s7 += value * kernel[k7 + i];
            }
          }
          out[outBase + f] = s0; out[outBase + f + 1] = s1; out[outBase + f + 2] = s2; out[outBase + f + 3] = s3;
          out[outBase + f + 4] = s4; out[outBase + f + 5] = s5; out[outBase + f + 6] = s6; out[outBase + f + 7] = s7;
        }
        for (; f < filters; f++) {  // the last filters when their count is not a multiple of 8
          let sum = bias[outBase + f];
          for (let ky = kyBegin; ky < kyEnd; ky++) {
            const xi = ((y0 + ky) * width + x0 + kxBegin) * channels;
            const k = f * filterLength + ky * rowLength + kxBegin * channels;
            for (let i = 0; i < span; i++) sum += x[xi + i] * kernel[k + i];
          }
          out[outBase + f] = sum;
        }
      }
    }
    return out;
  }

  // A convolution over few channels (a first layer on grey images): a window row is too short for conv2d's
  // blocked sums. The window's nonzero input values are listed first (most of a drawing is zero), then eight
  // filters at a time sum them, in registers.
  const NARROW_SPAN = 8;  // window row values (width x channels) below which a layer counts as narrow

  function conv2dNarrow(x, step, out, { kernel, bias, values, rows }) {
    const [height, width, channels] = step.input_shape, [outHeight, outWidth, filters] = step.output_shape;
    const [windowHeight, windowWidth] = step.settings.window, [strideY, strideX] = step.settings.strides;
    const [top, left] = step.settings.pads;
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        let count = 0;
        for (let ky = 0; ky < windowHeight; ky++) {
          const iy = oy * strideY + ky - top;
          if (iy < 0 || iy >= height) continue;
          for (let kx = 0; kx < windowWidth; kx++) {
            const ix = ox * strideX + kx - left;
            if (ix < 0 || ix >= width) continue;
            for (let c = 0; c < channels; c++) {
              const value = x[(iy * width + ix) * channels + c];
              if (value === 0) continue;
              values[count] = value;
              rows[count++] = ((ky * windowWidth + kx) * channels + c) * filters;
            }
          }
        }
        const at = (oy * outWidth + ox) * filters;
        let f = 0;
        for (; f + 8 <= filters; f += 8) {
          const b = at + f;
          let s0 = bias[b], s1 = bias[b + 1], s2 = bias[b + 2], s3 = bias[b + 3];
          let s4 = bias[b + 4], s5 = bias[b + 5], s6 = bias[b + 6], s7 = bias[b + 7];
          for (let k = 0; k < count; k++) {
            const value = values[k], r = rows[k] + f;
            s0 += value * kernel[r]; s1 += value * kernel[r + 1]; s2 += value * kernel[r + 2];
            s3 += value * kernel[r + 3]; s4 += value * kernel[r + 4]; s5 += value * kernel[r + 5];
            s6 += value * kernel[r + 6]; s7 += value * kernel[r + 7];
          }
          out[b] = s0; out[b + 1] = s1; out[b + 2] = s2; out[b + 3] = s3;
          out[b + 4] = s4; out[b + 5] = s5; out[b + 6] = s6; out[b + 7] = s7;
        }
        for (; f < filters; f++) {  // the last filters when their count is not a multiple of 8
          let sum = bias[at + f];
          for (let k = 0; k < count; k++) sum += values[k] * kernel[rows[k] + f];
          out[at + f] = sum;
        }
      }
    }
    return out;
  }

  // -- folding ------------------------------------------------------------------------------------------------
  // An affine step (BatchNormalization, Rescaling: x * scale + shift per channel) whose output only one Conv2D
  // reads, or only one Dense (directly or through a Flatten or Reshape), runs inside that layer, one pass less:
  // conv(x * scale + shift, k) = conv(x, k * scale) + conv(shift, k), where conv(shift, k) sums the taps that fall
  // on real pixels only (nn-conv.js adds it per output position), so that zero padding stays exact; likewise
  // dense(x * scale + shift) = x (k * scale) + (bias + shift k). Made once, when the model loads: layers (the
  // manifest's, in order, with their weights) less the folded steps; affineOf(layer, weights) -> {scale, shift}.
  const AFFINE = new Set(["BatchNormalization", "Rescaling"]);
  const PASSING = new Set(["Flatten", "Reshape"]);

  nn.fold = (layers, outputs, affineOf) => {
    const readers = new Map();
    const reads = (name, layer) => readers.set(name, [...(readers.get(name) || []), layer]);
    layers.forEach((layer) => layer.inputs.forEach((name) => reads(name, layer)));
    outputs.forEach((output) => reads(output.name, null));
    const onlyReader = (name) => ((readers.get(name) || []).length === 1 ? readers.get(name)[0] : null);
    const folded = new Set();
    for (const layer of layers) {
      if (!AFFINE.has(layer.kind)) continue;
      const next = onlyReader(layer.output);
      const target = next && PASSING.has(next.kind) ? onlyReader(next.output) : next;
      if (!target || !(target.kind === "Dense" || (target.kind === "Conv2D" && target === next))) continue;
      const { scale, shift } = affineOf(layer, layer.weights);
      const { kernel, bias } = target.weights, units = target.output_shape[target.output_shape.length - 1];
      const rows = kernel.length / units, perTap = target.kind === "Dense" ? rows : target.input_shape[2];
      const scaled = new Float32Array(kernel.length), taps = new Float64Array((rows / perTap) * units);
      for (let row = 0; row < rows; row++) {  // a row: one input value's weights; taps[tap][unit]: the shift's share
        const channel = scale.length === 1 ? 0 : row % scale.length, tap = Math.floor(row / perTap) * units;
        for (let u = 0, at = row * units; u < units; u++, at++) {
          scaled[at] = kernel[at] * scale[channel];
          taps[tap + u] += shift[channel] * kernel[at];
        }
      }
      target.weights = { ...target.weights, kernel: scaled, tapShift: taps };
      if (target.kind === "Dense") target.weights.bias = taps.map((value, u) => value + (bias ? bias[u] : 0));
      next.inputs = layer.inputs.slice();
      folded.add(layer);
    }
    return layers.filter((layer) => !folded.has(layer));
  };

  // The bias of every output value ([y][x][filter]): the layer's bias, plus weights.tapShift's taps that fall on
  // real pixels of the input there.
  function positionBias(layer, bias, tapShift) {
    const [height, width] = layer.input_shape, [outHeight, outWidth, filters] = layer.output_shape;
    const [windowHeight, windowWidth] = layer.settings.window, [strideY, strideX] = layer.settings.strides;
    const [top, left] = layer.settings.pads;
    const out = new Float64Array(outHeight * outWidth * filters);
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const at = (oy * outWidth + ox) * filters;
        if (bias) for (let f = 0; f < filters; f++) out[at + f] = bias[f];
        for (let ky = 0; tapShift && ky < windowHeight; ky++) {
          const iy = oy * strideY + ky - top;
          for (let kx = 0; kx < windowWidth && iy >= 0 && iy < height; kx++) {
            const ix = ox * strideX + kx - left, tap = (ky * windowWidth + kx) * filters;
            if (ix >= 0 && ix < width) for (let f = 0; f < filters; f++) out[at + f] += tapShift[tap + f];
          }
        }
      }
    }
    return out;
  }

  nn.convolution = (layer, weights) => {
    const channels = layer.input_shape[2], filters = layer.output_shape[2];
    const bias = positionBias(layer, weights.bias, weights.tapShift);
    const winograd = nn.winograd && nn.winograd(layer, weights.kernel);
    if (winograd) return (x, step, out) => winograd(x, out, bias);
    if (layer.settings.window[1] * channels < NARROW_SPAN) {
      const taps = layer.settings.window[0] * layer.settings.window[1] * channels;  // kernel: [tap][filter]
      const state = { kernel: weights.kernel, bias, values: new Float64Array(taps), rows: new Int32Array(taps) };
      return (x, step, out) => conv2dNarrow(x, step, out, state);
    }
    const state = { kernel: filterMajor(weights.kernel, filters), bias };
    return (x, step, out) => conv2d(x, step, out, state);
  };
})();
