// NeuralNetworks in the browser: the forward pass of an exported model, in plain JavaScript.
//
// A model is a manifest (JSON: labels, input shape, layers with their settings) plus its weights, float32
// little-endian, in one buffer; each weight is a slice of it named by the manifest. Activations are stored
// channels-last and row-major, the layout of the NumPy library, so Flatten and Reshape move no data.
// Arithmetic is in double precision, stored as float32 between layers.
//
// The manifest's layers are the model's layer calls in an order where each comes after what it reads: each names
// the tensors it reads ("inputs") and the one it writes ("output"), and the manifest names the model's "inputs"
// and "outputs"; a small executor runs them over named tensors. Files written before these names existed are
// chains: each layer reads the previous one's output.
//
// API: window.nn.load(manifest, buffer) -> network; window.nn.register(manifest, buffer or base64) adds a
// network to window.nn.models and makes the first one current; window.nn.labels and window.nn.predict(pixels)
// use the current network (window.nn.use(name) changes it). predict takes 784 values 0..255, row-major, white
// ink on black as the model sees them, and returns the probabilities in label order. network.run(inputs) takes
// one array per model input and returns one Float32Array per model output. window.nn.kinds lists the layer
// kinds this file runs.
"use strict";

(() => {
  const nn = (window.nn = window.nn || {});
  const MANIFEST_FORMAT = "NeuralNetworks.web";
  const MANIFEST_VERSION = 1;

  // -- activations (in place, over the last axis for softmax) -------------------------------------------------
  const ACTIVATIONS = {
    linear: () => {},
    relu: (x) => { for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] = 0; },
    leaky_relu: (x, settings) => {
      for (let i = 0; i < x.length; i++) if (!(x[i] > 0)) x[i] *= settings.alpha;
    },
    sigmoid: (x) => { for (let i = 0; i < x.length; i++) x[i] = 0.5 * (1 + Math.tanh(0.5 * x[i])); },
    tanh: (x) => { for (let i = 0; i < x.length; i++) x[i] = Math.tanh(x[i]); },
    softmax: (x, settings, shape) => {
      const width = shape[shape.length - 1];
      for (let start = 0; start < x.length; start += width) {
        let max = -Infinity, sum = 0;
        for (let i = start; i < start + width; i++) max = Math.max(max, x[i]);
        const e = new Float64Array(width);
        for (let i = 0; i < width; i++) { e[i] = Math.exp(x[start + i] - max); sum += e[i]; }
        for (let i = 0; i < width; i++) x[start + i] = e[i] / sum;
      }
    },
  };

  function activate(x, settings, shape) {
    const rule = ACTIVATIONS[settings.name];
    if (!rule) throw new Error(`unknown activation ${settings.name}`);
    rule(x, settings, shape);
    return x;
  }

  // -- layers: (input Float32Array, step) -> output Float32Array -----------------------------------------------
  function dense(x, step) {
    const kernel = step.weights.kernel, bias = step.weights.bias;
    const inputs = x.length, units = step.output_shape[0];
    const sum = new Float64Array(units);
    if (bias) sum.set(bias);
    for (let i = 0; i < inputs; i++) {
      const value = x[i];
      if (value === 0) continue;  // after ReLU most inputs are zero
      const row = i * units;
      for (let u = 0; u < units; u++) sum[u] += value * kernel[row + u];
    }
    return activate(Float32Array.from(sum), step.settings.activation, step.output_shape);
  }

  const sizeOf = (shape) => shape.reduce((a, b) => a * b, 1);

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
  function conv2d(x, step) {
    const [height, width, channels] = step.input_shape, [outHeight, outWidth, filters] = step.output_shape;
    const [windowHeight, windowWidth] = step.settings.window, [strideY, strideX] = step.settings.strides;
    const [top, left] = step.settings.pads;
    const { kernel, bias } = step.conv;
    const rowLength = windowWidth * channels, filterLength = windowHeight * rowLength;
    const out = new Float32Array(outHeight * outWidth * filters);
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideY - top;
      const kyBegin = Math.max(0, -y0), kyEnd = Math.min(windowHeight, height - y0);
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideX - left;
        const kxBegin = Math.max(0, -x0), kxEnd = Math.min(windowWidth, width - x0);
        const span = (kxEnd - kxBegin) * channels, outBase = (oy * outWidth + ox) * filters;
        let f = 0;
        for (; f + 8 <= filters; f += 8) {
          let s0 = bias[f], s1 = bias[f + 1], s2 = bias[f + 2], s3 = bias[f + 3];
          let s4 = bias[f + 4], s5 = bias[f + 5], s6 = bias[f + 6], s7 = bias[f + 7];
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
          let sum = bias[f];
          for (let ky = kyBegin; ky < kyEnd; ky++) {
            const xi = ((y0 + ky) * width + x0 + kxBegin) * channels;
            const k = f * filterLength + ky * rowLength + kxBegin * channels;
            for (let i = 0; i < span; i++) sum += x[xi + i] * kernel[k + i];
          }
          out[outBase + f] = sum;
        }
      }
    }
    return activate(out, step.settings.activation, step.output_shape);
  }

  // -- Winograd F(4x4, 3x3) for stride-1 3x3 convolutions (Lavin & Gray 2015) ---------------------------------
  // The output is cut into 4x4 tiles, each read from a 6x6 input tile d: Y = A^T [(G g G^T) * (B^T d B)] A. For
  // the 36 positions xi of the transformed tile, M[xi] = V[xi] U[xi] is a (tiles x channels) (channels x filters)
  // product: 36 multiply-adds per channel and filter for 16 output pixels, 4x fewer than the direct form's 144
  // (F(2x2, 3x3) saves 2.25x; on 14x14 and 7x7 maps, whose tiles stick out, 4x4 tiles still save 1.5x more).
  // Transforms run in double precision; the products read float32 and sum in double.
  const WINOGRAD_MIN_CHANNELS = 8;  // a first layer on grey images has too few channels for the transforms to pay
  const WINOGRAD = {
    tile: 4,
    span: 6,
    // B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
    //        [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]] and
    // A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]] are written out in
    // inputTransform and outputTransform.
    G: [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
  };

  const usesWinograd = (layer) => layer.kind === "Conv2D" && layer.settings.window[0] === 3 &&
    layer.settings.window[1] === 3 && layer.settings.strides[0] === 1 && layer.settings.strides[1] === 1 &&
    layer.input_shape[2] >= WINOGRAD_MIN_CHANNELS;

  // B^T (6 x 6) and A^T (4 x 6) applied to the 6 values src[at + k * stride], written to dst[to + k * step]: the
  // matrices above, written out (a loop over their entries is 3x slower).
  function inputTransform(src, at, stride, dst, to, step) {
    const d0 = src[at], d1 = src[at + stride], d2 = src[at + 2 * stride], d3 = src[at + 3 * stride];
    const d4 = src[at + 4 * stride], d5 = src[at + 5 * stride];
    dst[to] = 4 * d0 - 5 * d2 + d4;
    dst[to + step] = d3 + d4 - 4 * (d1 + d2);
    dst[to + 2 * step] = 4 * (d1 - d2) + d4 - d3;
    dst[to + 3 * step] = 2 * (d3 - d1) + d4 - d2;
    dst[to + 4 * step] = 2 * (d1 - d3) + d4 - d2;
    dst[to + 5 * step] = 4 * d1 - 5 * d3 + d5;
  }

  function outputTransform(src, at, stride, dst, to, step) {
    const m0 = src[at], m1 = src[at + stride], m2 = src[at + 2 * stride], m3 = src[at + 3 * stride];
    const m4 = src[at + 4 * stride], m5 = src[at + 5 * stride];
    const sum12 = m1 + m2, difference12 = m1 - m2, sum34 = m3 + m4, difference34 = m3 - m4;
    dst[to] = m0 + sum12 + sum34;
    dst[to + step] = difference12 + 2 * difference34;
    dst[to + 2 * step] = sum12 + 4 * sum34;
    dst[to + 3 * step] = difference12 + 8 * difference34 + m5;
  }

  // U = G g G^T per (channel, filter), laid out [xi][filter][channel]: made once, when the model loads.
  function winogradKernel(kernel, channels, filters) {
    const { span, G } = WINOGRAD, positions = span * span;
    const u = new Float32Array(positions * filters * channels);
    const g = new Float64Array(9), half = new Float64Array(3 * span);
    for (let c = 0; c < channels; c++) {
      for (let f = 0; f < filters; f++) {
        for (let k = 0; k < 9; k++) g[k] = kernel[(k * channels + c) * filters + f];
        for (let a = 0; a < span; a++) {  // G g: (span x 3)
          for (let j = 0; j < 3; j++) half[a * 3 + j] = G[a][0] * g[j] + G[a][1] * g[3 + j] + G[a][2] * g[6 + j];
        }
        for (let a = 0; a < span; a++) {  // (G g) G^T
          for (let b = 0; b < span; b++) {
            const value = half[a * 3] * G[b][0] + half[a * 3 + 1] * G[b][1] + half[a * 3 + 2] * G[b][2];
            u[((a * span + b) * filters + f) * channels + c] = value;
          }
        }
      }
    }
    return u;
  }

  function conv2dWinograd(x, step) {
    const [height, width, channels] = step.input_shape, [outHeight, outWidth, filters] = step.output_shape;
    const [top, left] = step.settings.pads;
    const { u, bias } = step.winograd, { tile: size, span } = WINOGRAD, positions = span * span;
    const rows = Math.ceil(outHeight / size), columns = Math.ceil(outWidth / size), tiles = rows * columns;
    const plane = tiles * channels;
    const v = new Float32Array(positions * plane);
    const at = new Int32Array(positions);  // where each value of the input tile starts, -1 in the padding
    const d = new Float64Array(positions), half = new Float64Array(positions);  // one channel of one tile
    for (let ty = 0; ty < rows; ty++) {
      for (let tx = 0; tx < columns; tx++) {
        const tile = ty * columns + tx;
        for (let a = 0; a < span; a++) {
          const iy = size * ty + a - top;
          for (let b = 0; b < span; b++) {
            const ix = size * tx + b - left;
            at[a * span + b] = iy >= 0 && iy < height && ix >= 0 && ix < width ? (iy * width + ix) * channels : -1;
          }
        }
        for (let c = 0; c < channels; c++) {
          for (let k = 0; k < positions; k++) d[k] = at[k] < 0 ? 0 : x[at[k] + c];
          for (let j = 0; j < span; j++) inputTransform(d, j, span, half, j, span);  // B^T d, column by column
          for (let a = 0; a < span; a++) inputTransform(half, a * span, 1, d, a * span, 1);  // (B^T d) B, by rows
          const out = tile * channels + c;
          for (let k = 0; k < positions; k++) v[k * plane + out] = d[k];
        }
      }
    }
    const m = new Float64Array(positions * tiles * filters);  // [xi][tile][filter]
    for (let xi = 0; xi < positions; xi++) {
      winogradProduct(v, xi * plane, u, xi * filters * channels, m, xi * tiles * filters, tiles, channels, filters);
    }
    const y = new Float32Array(outHeight * outWidth * filters);
    const mPlane = tiles * filters, p = new Float64Array(positions), rowsOut = new Float64Array(size * span);
    for (let ty = 0; ty < rows; ty++) {
      for (let tx = 0; tx < columns; tx++) {
        const base = (ty * columns + tx) * filters;
        const yEnd = Math.min(size, outHeight - size * ty), xEnd = Math.min(size, outWidth - size * tx);
        for (let f = 0; f < filters; f++) {
          for (let j = 0; j < span; j++) outputTransform(m, base + f + j * mPlane, span * mPlane, rowsOut, j, span);
          for (let a = 0; a < yEnd; a++) {  // (A^T M) A, row by row
            outputTransform(rowsOut, a * span, 1, p, 0, 1);
            const first = ((size * ty + a) * outWidth + size * tx) * filters + f;
            for (let b = 0; b < xEnd; b++) y[first + b * filters] = bias[f] + p[b];
          }
        }
      }
    }
    return activate(y, step.settings.activation, step.output_shape);
  }

  // m[tile][filter] = sum over channels of v[tile][channel] u[filter][channel]: 4 tiles x 4 filters at a time,
  // 16 sums in registers for 8 reads (measured: 1.1x the speed of 2 x 4, 3x that of one tile at a time).
  function winogradProduct(v, vAt, u, uAt, m, mAt, tiles, channels, filters) {
    let t = 0;
    for (; t + 4 <= tiles; t += 4) {
      const v0 = vAt + t * channels, v1 = v0 + channels, v2 = v1 + channels, v3 = v2 + channels;
      const out = mAt + t * filters;
      let f = 0;
      for (; f + 4 <= filters; f += 4) {
        const u0 = uAt + f * channels, u1 = u0 + channels, u2 = u1 + channels, u3 = u2 + channels;
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
        let c0 = 0, c1 = 0, c2 = 0, c3 = 0, d0 = 0, d1 = 0, d2 = 0, d3 = 0;
        for (let c = 0; c < channels; c++) {
          const w0 = u[u0 + c], w1 = u[u1 + c], w2 = u[u2 + c], w3 = u[u3 + c];
          let x = v[v0 + c];
          a0 += x * w0; a1 += x * w1; a2 += x * w2; a3 += x * w3;
          x = v[v1 + c];
          b0 += x * w0; b1 += x * w1; b2 += x * w2; b3 += x * w3;
          x = v[v2 + c];
          c0 += x * w0; c1 += x * w1; c2 += x * w2; c3 += x * w3;
          x = v[v3 + c];
          d0 += x * w0; d1 += x * w1; d2 += x * w2; d3 += x * w3;
        }
        let o = out + f;
        m[o] = a0; m[o + 1] = a1; m[o + 2] = a2; m[o + 3] = a3;
        o += filters;
        m[o] = b0; m[o + 1] = b1; m[o + 2] = b2; m[o + 3] = b3;
        o += filters;
        m[o] = c0; m[o + 1] = c1; m[o + 2] = c2; m[o + 3] = c3;
        o += filters;
        m[o] = d0; m[o + 1] = d1; m[o + 2] = d2; m[o + 3] = d3;
      }
      for (; f < filters; f++) {  // the last filters when their count is not a multiple of 4
        const w = uAt + f * channels;
        for (let k = 0; k < 4; k++) {
          let sum = 0;
          for (let c = 0; c < channels; c++) sum += v[v0 + k * channels + c] * u[w + c];
          m[out + k * filters + f] = sum;
        }
      }
    }
    for (; t < tiles; t++) {  // the last tiles when their count is not a multiple of 4
      const v0 = vAt + t * channels, out = mAt + t * filters;
      for (let f = 0; f < filters; f++) {
        const w = uAt + f * channels;
        let sum = 0;
        for (let c = 0; c < channels; c++) sum += v[v0 + c] * u[w + c];
        m[out + f] = sum;
      }
    }
  }

  // A convolution over few channels (a first layer on grey images): a window row is too short for conv2d's
  // blocked sums. Each input value of the window adds its kernel row to the output pixel's sums, and the zeros
  // of a drawing (most of its pixels) are skipped.
  const NARROW_SPAN = 8;  // window row values (width x channels) below which a layer counts as narrow

  function conv2dNarrow(x, step) {
    const [height, width, channels] = step.input_shape, [outHeight, outWidth, filters] = step.output_shape;
    const [windowHeight, windowWidth] = step.settings.window, [strideY, strideX] = step.settings.strides;
    const [top, left] = step.settings.pads;
    const kernel = step.weights.kernel, bias = step.narrow.bias;  // kernel [ky][kx][channel][filter]
    const out = new Float32Array(outHeight * outWidth * filters);
    const sum = new Float64Array(filters);
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        sum.set(bias);
        for (let ky = 0; ky < windowHeight; ky++) {
          const iy = oy * strideY + ky - top;
          if (iy < 0 || iy >= height) continue;
          for (let kx = 0; kx < windowWidth; kx++) {
            const ix = ox * strideX + kx - left;
            if (ix < 0 || ix >= width) continue;
            for (let c = 0; c < channels; c++) {
              const value = x[(iy * width + ix) * channels + c];
              if (value === 0) continue;
              const row = ((ky * windowWidth + kx) * channels + c) * filters;
              for (let f = 0; f < filters; f++) sum[f] += value * kernel[row + f];
            }
          }
        }
        out.set(sum, (oy * outWidth + ox) * filters);
      }
    }
    return activate(out, step.settings.activation, step.output_shape);
  }

  // Max or average over each window, channels innermost; the average counts the window's real pixels only, as
  // the NumPy layer does with "same" padding.
  function pool(maximum) {
    return (x, step) => {
      const [height, width, channels] = step.input_shape, [outHeight, outWidth] = step.output_shape;
      const [windowHeight, windowWidth] = step.settings.window, [strideY, strideX] = step.settings.strides;
      const [top, left] = step.settings.pads;
      const out = new Float32Array(outHeight * outWidth * channels);
      const value = new Float64Array(channels);
      for (let oy = 0; oy < outHeight; oy++) {
        const yBegin = Math.max(0, oy * strideY - top), yEnd = Math.min(height, oy * strideY - top + windowHeight);
        for (let ox = 0; ox < outWidth; ox++) {
          const xBegin = Math.max(0, ox * strideX - left), xEnd = Math.min(width, ox * strideX - left + windowWidth);
          value.fill(maximum ? -Infinity : 0);
          for (let iy = yBegin; iy < yEnd; iy++) {
            for (let ix = xBegin; ix < xEnd; ix++) {
              const at = (iy * width + ix) * channels;
              if (maximum) {
                for (let c = 0; c < channels; c++) if (x[at + c] > value[c]) value[c] = x[at + c];
              } else {
                for (let c = 0; c < channels; c++) value[c] += x[at + c];
              }
            }
          }
          const count = maximum ? 1 : (yEnd - yBegin) * (xEnd - xBegin), at = (oy * outWidth + ox) * channels;
          for (let c = 0; c < channels; c++) out[at + c] = value[c] / count;
        }
      }
      return out;
    };
  }

  const maxPooling = pool(true);
  const averagePooling = pool(false);

  function globalAveragePooling(x, step) {
    const channels = step.output_shape[0], pixels = x.length / channels;
    const sum = new Float64Array(channels);
    for (let i = 0; i < x.length; i++) sum[i % channels] += x[i];
    return Float32Array.from(sum, (value) => value / pixels);
  }

  function batchNormalization(x, step) {
    const { gamma, beta, moving_mean: mean, moving_variance: variance } = step.weights;
    const channels = gamma.length, epsilon = Math.fround(step.settings.epsilon);
    const factor = Float64Array.from(gamma, (g, c) => g / Math.sqrt(variance[c] + epsilon));
    const out = new Float32Array(x.length);
    for (let start = 0; start < x.length; start += channels) {  // pixel by pixel, channels innermost
      for (let c = 0; c < channels; c++) out[start + c] = (x[start + c] - mean[c]) * factor[c] + beta[c];
    }
    return out;
  }

  function rescaling(x, step) {
    const { scale, offset } = step.settings;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = x[i] * scale + offset;
    return out;
  }

  // -- merge layers: (inputs, an array of Float32Array, step) -> output Float32Array ----------------------------
  function elementwise(combine, finish = (value) => value) {
    return (xs, step) => {
      const out = new Float32Array(xs[0].length);
      for (let i = 0; i < out.length; i++) {
        let value = xs[0][i];
        for (let k = 1; k < xs.length; k++) value = combine(value, xs[k][i]);
        out[i] = finish(value, xs.length);
      }
      return out;
    };
  }

  // Joined along the sample axis settings.axis (0 is the first after the batch): each input contributes a block
  // of its size from that axis on, for every index of the axes before it.
  function concatenate(xs, step) {
    const axis = step.settings.axis, shapes = step.input_shape;
    const blocks = shapes.map((shape) => sizeOf(shape.slice(axis)));
    const outer = sizeOf(shapes[0].slice(0, axis)), width = blocks.reduce((a, b) => a + b, 0);
    const out = new Float32Array(outer * width);
    for (let o = 0; o < outer; o++) {
      let at = o * width;
      xs.forEach((x, k) => {
        out.set(x.subarray(o * blocks[k], (o + 1) * blocks[k]), at);
        at += blocks[k];
      });
    }
    return out;
  }

  const MERGES = {
    Add: elementwise((a, b) => a + b),
    Subtract: elementwise((a, b) => a - b),
    Multiply: elementwise((a, b) => a * b),
    Average: elementwise((a, b) => a + b, (sum, count) => sum / count),
    Concatenate: concatenate,
  };

  const LAYERS = {
    Dense: dense,
    Conv2D: conv2d,
    MaxPooling2D: maxPooling,
    AveragePooling2D: averagePooling,
    GlobalAveragePooling2D: globalAveragePooling,
    BatchNormalization: batchNormalization,
    Rescaling: rescaling,
    Activation: (x, step) => activate(Float32Array.from(x), step.settings.activation, step.output_shape),
    Flatten: (x) => x,
    Reshape: (x) => x,
    ...MERGES,
  };

  // -- loading -------------------------------------------------------------------------------------------------
  function weightsOf(layer, buffer) {
    const weights = {};
    for (const [key, entry] of Object.entries(layer.weights || {})) {
      const count = sizeOf(entry.shape);
      if (entry.offset % 4 || entry.offset + 4 * count > buffer.byteLength) {
        throw new Error(`weight ${layer.name}/${key} lies outside the weights file`);
      }
      weights[key] = new Float32Array(buffer, entry.offset, count);
    }
    return weights;
  }

  // The model's inputs and outputs and each step's tensors; a manifest without them is a chain.
  function wiring(manifest) {
    const inputs = manifest.inputs || [{ name: "input", shape: manifest.input_shape }];
    let previous = inputs[0].name;
    const layers = manifest.layers.map((layer, index) => {
      const wired = { ...layer, inputs: layer.inputs || [previous], output: layer.output || `layer_${index}` };
      previous = wired.output;
      return wired;
    });
    const outputs = manifest.outputs || [{ name: previous, shape: manifest.output_shape }];
    return { inputs, layers, outputs };
  }

  function load(manifest, buffer) {
    if (!manifest || manifest.format !== MANIFEST_FORMAT || manifest.version !== MANIFEST_VERSION) {
      throw new Error(`not a ${MANIFEST_FORMAT} version ${MANIFEST_VERSION} manifest`);
    }
    const graph = wiring(manifest);
    const known = new Set(graph.inputs.map((input) => input.name));
    const steps = graph.layers.map((layer) => {
      if (!LAYERS[layer.kind]) throw new Error(`layer ${layer.name}: unknown kind ${layer.kind}`);
      for (const name of layer.inputs) {
        if (!known.has(name)) throw new Error(`layer ${layer.name} reads ${name}, which no earlier layer writes`);
      }
      known.add(layer.output);
      const weights = weightsOf(layer, buffer);
      const step = { ...layer, run: LAYERS[layer.kind], merge: layer.kind in MERGES, weights };
      if (layer.kind === "Conv2D") {
        const filters = layer.output_shape[2], bias = weights.bias || new Float32Array(filters);
        if (usesWinograd(layer)) {
          step.run = conv2dWinograd;
          step.winograd = { u: winogradKernel(weights.kernel, layer.input_shape[2], filters), bias };
        } else if (layer.settings.window[1] * layer.input_shape[2] < NARROW_SPAN) {
          step.run = conv2dNarrow;
          step.narrow = { bias };
        } else {
          step.conv = { kernel: filterMajor(weights.kernel, filters), bias };
        }
      }
      return step;
    });
    for (const output of graph.outputs) {
      if (!known.has(output.name)) throw new Error(`the model's output ${output.name} is written by no layer`);
    }
    // after step i, the tensors nobody reads any more (freed as the pass goes)
    const lastUse = new Map();
    steps.forEach((step, index) => step.inputs.forEach((name) => lastUse.set(name, index)));
    const kept = new Set(graph.outputs.map((output) => output.name));
    const freed = steps.map((step, index) => step.inputs.filter((name) => lastUse.get(name) === index && !kept.has(name)));
    const sizes = graph.inputs.map((input) => sizeOf(input.shape));
    function run(inputs) {
      if (!inputs || inputs.length !== sizes.length) {
        throw new Error(`run expects ${sizes.length} inputs; received ${inputs ? inputs.length : inputs}`);
      }
      const tensors = new Map();
      graph.inputs.forEach((input, k) => {
        if (!inputs[k] || inputs[k].length !== sizes[k]) {
          throw new Error(`input ${input.name} takes ${sizes[k]} values; received ${inputs[k] ? inputs[k].length : inputs[k]}`);
        }
        tensors.set(input.name, Float32Array.from(inputs[k]));
      });
      steps.forEach((step, index) => {
        const xs = step.inputs.map((name) => tensors.get(name));
        tensors.set(step.output, step.run(step.merge ? xs : xs[0], step));
        for (const name of freed[index]) tensors.delete(name);
      });
      return graph.outputs.map((output) => tensors.get(output.name));
    }
    const size = sizes[0];
    return {
      name: manifest.name,
      labels: manifest.labels.slice(),
      style: manifest.preprocessing,
      inputShape: manifest.input_shape.slice(),
      run,
      predict(pixels) {
        if (!pixels || pixels.length !== size) {
          throw new Error(`predict expects ${size} values; received ${pixels ? pixels.length : pixels}`);
        }
        return run([pixels])[0];
      },
    };
  }

  function decodeBase64(text) {
    const bytes = Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
    return bytes.buffer;
  }

  nn.models = nn.models || {};
  nn.kinds = Object.keys(LAYERS);
  nn.load = load;
  nn.register = (manifest, weights) => {
    const network = load(manifest, typeof weights === "string" ? decodeBase64(weights) : weights);
    nn.models[network.name] = network;
    if (!nn.current) nn.current = network;
    return network;
  };
  nn.use = (name) => {
    if (!nn.models[name]) throw new Error(`no model named ${name}`);
    nn.current = nn.models[name];
    return nn.current;
  };
  Object.defineProperty(nn, "labels", { get: () => (nn.current ? nn.current.labels : []), configurable: true });
  nn.predict = (pixels) => {
    if (!nn.current) throw new Error("no model is loaded");
    return nn.current.predict(pixels);
  };
})();
