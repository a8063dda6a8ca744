// NeuralNetworks in the browser: the convolutions of the forward pass in nn.js, which needs this file loaded first.
//
// window.nn.convolution(layer, weights) picks, when a model loads, the way a Conv2D layer of the manifest runs,
// prepares its kernel for it and returns (x, step) -> the pre-activation output (Float32Array, channels-last;
// nn.js applies the activation): Winograd F(4x4, 3x3) for stride-1 3x3 windows over 8 channels or more, a
// zero-skipping sum for narrow first layers, blocked direct sums otherwise. Arithmetic in double precision,
// stored as float32.
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
  function conv2d(x, step, { kernel, bias }) {
    const [height, width, channels] = step.input_shape, [outHeight, outWidth, filters] = step.output_shape;
    const [windowHeight, windowWidth] = step.settings.window, [strideY, strideX] = step.settings.strides;
    const [top, left] = step.settings.pads;
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
    return out;
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

  function conv2dWinograd(x, step, { u, bias }) {
    const [height, width, channels] = step.input_shape, [outHeight, outWidth, filters] = step.output_shape;
    const [top, left] = step.settings.pads;
    const { tile: size, span } = WINOGRAD, positions = span * span;
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
    return y;
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

  function conv2dNarrow(x, step, { bias }) {
    const [height, width, channels] = step.input_shape, [outHeight, outWidth, filters] = step.output_shape;
    const [windowHeight, windowWidth] = step.settings.window, [strideY, strideX] = step.settings.strides;
    const [top, left] = step.settings.pads;
    const kernel = step.weights.kernel;  // [ky][kx][channel][filter]
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
    return out;
  }

  nn.convolution = (layer, weights) => {
    const channels = layer.input_shape[2], filters = layer.output_shape[2];
    const bias = weights.bias || new Float32Array(filters);
    if (usesWinograd(layer)) {
      const state = { u: winogradKernel(weights.kernel, channels, filters), bias };
      return (x, step) => conv2dWinograd(x, step, state);
    }
    if (layer.settings.window[1] * channels < NARROW_SPAN) return (x, step) => conv2dNarrow(x, step, { bias });
    const state = { kernel: filterMajor(weights.kernel, filters), bias };
    return (x, step) => conv2d(x, step, state);
  };
})();
