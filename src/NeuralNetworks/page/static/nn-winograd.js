// NeuralNetworks in the browser: Winograd convolutions for nn-conv.js (which needs this file loaded first).
//
// window.nn.winograd(layer, kernel) -> (x, out, bias) => out, or null where a stride-1 3x3 convolution's
// transforms would not pay: the output is cut into m x m tiles, each read from an n x n input tile d (n = m + 2):
// Y = A^T [(G g G^T) * (B^T d B)] A (Lavin & Gray 2015). For the n * n positions xi of a transformed tile,
// M[xi] = V[xi] U[xi] is a (tiles x channels) (channels x filters) product: n * n multiply-adds per channel and
// filter for m * m output pixels instead of 9 * m * m. Two tile sizes, whichever costs fewer multiply-adds:
// F(4x4, 3x3) (n = 6, 4x fewer) and F(7x7, 3x3) (n = 9, 5.4x fewer, and 14x14 or 7x7 maps split into whole tiles).
// The transforms and the sums are in double precision; U and V are stored as float32, as the weights are (half
// the memory to stream, 2x faster products than float64 measured). bias[i] is added at output value i.
"use strict";

(() => {
  const nn = (window.nn = window.nn || {});
  const MIN_CHANNELS = 8;  // a first layer on grey images has too few channels for the transforms to pay
  // What reading U once per call costs, in tiles' products: a map of one tile reads U (2.6 MB for 64 x 128
  // channels in F(7x7)) for a single use, at 8 multiply-adds per 9 reads. On the shipped models' 7x7 maps
  // F(7x7)'s one tile measured 1.1x faster overall than F(4x4)'s four (2.4 against 2.6 ms per drawing).
  const U_READ_COST = 1;

  // -- F(4x4, 3x3): points 0, 1, -1, 2, -2 and infinity; the matrices written out -------------------------------
  // B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
  //        [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]] and
  // A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], applied to the n
  // vectors src[s + l * sStride + i] (i < length) and written to dst[t + j * tStride + i] (+ bias there, for A^T,
  // the first `count` of its m rows): one output row (or column) of a tile over all its channels or filters.
  const G4 = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]];

  function input4(src, s, sStride, dst, t, tStride, length) {
    for (let i = 0; i < length; i++) {
      const a = s + i, d0 = src[a], d1 = src[a + sStride], d2 = src[a + 2 * sStride], d3 = src[a + 3 * sStride];
      const d4 = src[a + 4 * sStride], d5 = src[a + 5 * sStride], b = t + i;
      dst[b] = 4 * d0 - 5 * d2 + d4;
      dst[b + tStride] = d3 + d4 - 4 * (d1 + d2);
      dst[b + 2 * tStride] = 4 * (d1 - d2) + d4 - d3;
      dst[b + 3 * tStride] = 2 * (d3 - d1) + d4 - d2;
      dst[b + 4 * tStride] = 2 * (d1 - d3) + d4 - d2;
      dst[b + 5 * tStride] = 4 * d1 - 5 * d3 + d5;
    }
  }

  function output4(src, s, sStride, dst, t, tStride, length, bias, count) {
    for (let i = 0; i < length; i++) {
      const a = s + i, m0 = src[a], m1 = src[a + sStride], m2 = src[a + 2 * sStride], m3 = src[a + 3 * sStride];
      const m4 = src[a + 4 * sStride], m5 = src[a + 5 * sStride], b = t + i;
      const sum12 = m1 + m2, difference12 = m1 - m2, sum34 = m3 + m4, difference34 = m3 - m4;
      dst[b] = bias[b] + m0 + sum12 + sum34;
      if (count > 1) dst[b + tStride] = bias[b + tStride] + difference12 + 2 * difference34;
      if (count > 2) dst[b + 2 * tStride] = bias[b + 2 * tStride] + sum12 + 4 * sum34;
      if (count > 3) dst[b + 3 * tStride] = bias[b + 3 * tStride] + difference12 + 8 * difference34 + m5;
    }
  }

  // -- F(7x7, 3x3): points 0, +-p1 .. +-p4 (no infinity) -------------------------------------------------------
  // With R(x) = prod (x^2 - p^2), the product of (x - a) over the points, and R_p = R / (x^2 - p^2): B^T's row of
  // a point a holds the coefficients of R(x) / (x - a), that is R for 0 and x^2 R_p +- p x R_p for +-p (an even
  // and an odd part, shared by the two), A^T[i][a] = a^i, and G[a][k] = a^k / N_a with N_a = prod (a - b) over
  // the other points b. Points in the order 0, p1, -p1, .., p4, -p4. Powers of two are exact in float32: on the
  // shipped models these points keep the page within 5e-6 of the library (0, +-1/2, +-1, +-2, +-3: 2e-5;
  // +-1/4 or +-1/3 instead of +-4: up to 9e-5).
  const POINTS7 = [1 / 2, 1, 2, 4];

  function polynomialTimes(coefficients, root) {  // coefficients (lowest first) times (x - root)
    const out = new Float64Array(coefficients.length + 1);
    coefficients.forEach((c, k) => { out[k + 1] += c; out[k] -= root * c; });
    return out;
  }

  // The constants input9 and output9 read: R's even coefficients, each pair's R_p and p, the powers p^i; and G.
  function constants7() {
    const points = [0, ...POINTS7.flatMap((p) => [p, -p])];
    const rOf = (skip) => points.slice(1).filter((a) => Math.abs(a) !== skip).reduce(polynomialTimes, [1]);
    const r = rOf(0).filter((_, k) => k % 2 === 0);  // R over the pairs (x^2 - p^2), even: 5 coefficients
    const pairs = new Float64Array(5 * POINTS7.length), powers = new Float64Array(6 * POINTS7.length);
    POINTS7.forEach((p, q) => {
      rOf(p).filter((_, k) => k % 2 === 0).forEach((c, k) => { pairs[5 * q + k] = c; });  // R_p: 4 coefficients
      pairs[5 * q + 4] = p;
      for (let i = 1; i <= 6; i++) powers[6 * q + i - 1] = p ** i;
    });
    const g = points.map((a) => {  // G's row of a point a: (1, a, a^2) / N_a
      const others = points.filter((b) => b !== a).reduce((product, b) => product * (a - b), 1);
      return [1 / others, a / others, (a * a) / others];
    });
    return { r: Float64Array.from(r), pairs, powers, g };
  }

  function input9(src, s, sStride, dst, t, tStride, length, constants) {
    const { r, pairs: c } = constants;
    const r0 = r[0], r2 = r[1], r4 = r[2], r6 = r[3], r8 = r[4];
    for (let i = 0; i < length; i++) {
      const a = s + i, b = t + i;
      const d0 = src[a], d1 = src[a + sStride], d2 = src[a + 2 * sStride], d3 = src[a + 3 * sStride];
      const d4 = src[a + 4 * sStride], d5 = src[a + 5 * sStride], d6 = src[a + 6 * sStride];
      const d7 = src[a + 7 * sStride], d8 = src[a + 8 * sStride];
      dst[b] = r0 * d0 + r2 * d2 + r4 * d4 + r6 * d6 + r8 * d8;
      let even = c[0] * d2 + c[1] * d4 + c[2] * d6 + c[3] * d8;  // the pair +-p1: even part +- p1 * odd part
      let odd = c[4] * (c[0] * d1 + c[1] * d3 + c[2] * d5 + c[3] * d7);
      dst[b + tStride] = even + odd;
      dst[b + 2 * tStride] = even - odd;
      even = c[5] * d2 + c[6] * d4 + c[7] * d6 + c[8] * d8;
      odd = c[9] * (c[5] * d1 + c[6] * d3 + c[7] * d5 + c[8] * d7);
      dst[b + 3 * tStride] = even + odd;
      dst[b + 4 * tStride] = even - odd;
      even = c[10] * d2 + c[11] * d4 + c[12] * d6 + c[13] * d8;
      odd = c[14] * (c[10] * d1 + c[11] * d3 + c[12] * d5 + c[13] * d7);
      dst[b + 5 * tStride] = even + odd;
      dst[b + 6 * tStride] = even - odd;
      even = c[15] * d2 + c[16] * d4 + c[17] * d6 + c[18] * d8;
      odd = c[19] * (c[15] * d1 + c[16] * d3 + c[17] * d5 + c[18] * d7);
      dst[b + 7 * tStride] = even + odd;
      dst[b + 8 * tStride] = even - odd;
    }
  }

  // y_i = sum over the points a of a^i M_a: M_0 counts for y_0 only, a pair +-p gives p^i (M_p + M_-p) for even i
  // and p^i (M_p - M_-p) for odd i. w holds p^i, i = 1..6, pair after pair.
  function output9(src, s, sStride, dst, t, tStride, length, bias, count, constants) {
    const w = constants.powers;
    for (let i = 0; i < length; i++) {
      const a = s + i, b = t + i, m0 = src[a];
      const s1 = src[a + sStride] + src[a + 2 * sStride], d1 = src[a + sStride] - src[a + 2 * sStride];
      const s2 = src[a + 3 * sStride] + src[a + 4 * sStride], d2 = src[a + 3 * sStride] - src[a + 4 * sStride];
      const s3 = src[a + 5 * sStride] + src[a + 6 * sStride], d3 = src[a + 5 * sStride] - src[a + 6 * sStride];
      const s4 = src[a + 7 * sStride] + src[a + 8 * sStride], d4 = src[a + 7 * sStride] - src[a + 8 * sStride];
      dst[b] = bias[b] + m0 + s1 + s2 + s3 + s4;
      if (count < 2) continue;
      dst[b + tStride] = bias[b + tStride] + w[0] * d1 + w[6] * d2 + w[12] * d3 + w[18] * d4;
      if (count < 3) continue;
      dst[b + 2 * tStride] = bias[b + 2 * tStride] + w[1] * s1 + w[7] * s2 + w[13] * s3 + w[19] * s4;
      if (count < 4) continue;
      dst[b + 3 * tStride] = bias[b + 3 * tStride] + w[2] * d1 + w[8] * d2 + w[14] * d3 + w[20] * d4;
      if (count < 5) continue;
      dst[b + 4 * tStride] = bias[b + 4 * tStride] + w[3] * s1 + w[9] * s2 + w[15] * s3 + w[21] * s4;
      if (count < 6) continue;
      dst[b + 5 * tStride] = bias[b + 5 * tStride] + w[4] * d1 + w[10] * d2 + w[16] * d3 + w[22] * d4;
      if (count < 7) continue;
      dst[b + 6 * tStride] = bias[b + 6 * tStride] + w[5] * s1 + w[11] * s2 + w[17] * s3 + w[23] * s4;
    }
  }

  // -- the convolution --------------------------------------------------------------------------------------
  const SHAPES = [
    { m: 4, n: 6, constants: () => ({ g: G4 }), input: input4, output: output4 },
    { m: 7, n: 9, constants: constants7, input: input9, output: output9 },
  ];

  const tilesOf = (size, m) => Math.ceil(size / m);

  function choose(layer) {
    const { window: w, strides } = layer.settings;
    const [top, left] = layer.settings.pads;  // a 3x3 window pads one pixel at most ("same") before the map
    if (layer.kind !== "Conv2D" || w[0] !== 3 || w[1] !== 3 || strides[0] !== 1 || strides[1] !== 1 ||
        layer.input_shape[2] < MIN_CHANNELS || top > 1 || left > 1) return null;
    const [outHeight, outWidth] = layer.output_shape;
    const cost = (shape) => {
      const tiles = tilesOf(outHeight, shape.m) * tilesOf(outWidth, shape.m);
      return (tiles + U_READ_COST) * shape.n * shape.n;
    };
    return SHAPES.reduce((best, shape) => (cost(shape) < cost(best) ? shape : best));
  }

  // U = G g G^T per (channel, filter), laid out [xi][filter][channel].
  function transformKernel(kernel, g, n, channels, filters) {
    const u = new Float32Array(n * n * filters * channels);
    const taps = new Float64Array(9), half = new Float64Array(3 * n);
    for (let c = 0; c < channels; c++) {
      for (let f = 0; f < filters; f++) {
        for (let k = 0; k < 9; k++) taps[k] = kernel[(k * channels + c) * filters + f];
        for (let a = 0; a < n; a++) {  // G g: (n x 3)
          for (let j = 0; j < 3; j++) {
            half[a * 3 + j] = g[a][0] * taps[j] + g[a][1] * taps[3 + j] + g[a][2] * taps[6 + j];
          }
        }
        for (let a = 0; a < n; a++) {  // (G g) G^T
          for (let b = 0; b < n; b++) {
            const value = half[a * 3] * g[b][0] + half[a * 3 + 1] * g[b][1] + half[a * 3 + 2] * g[b][2];
            u[((a * n + b) * filters + f) * channels + c] = value;
          }
        }
      }
    }
    return u;
  }

  // The output tile's side m a layer runs with, 0 where it runs without Winograd (for tests and the curious).
  nn.winogradTile = (layer) => (choose(layer) || { m: 0 }).m;

  nn.winograd = (layer, kernel) => {
    const shape = choose(layer);
    if (!shape) return null;
    const [height, width, channels] = layer.input_shape, [outHeight, outWidth, filters] = layer.output_shape;
    const [top, left] = layer.settings.pads;
    const { m, n, input, output } = shape, constants = shape.constants();
    const u = transformKernel(kernel, constants.g, n, channels, filters);
    const rows = tilesOf(outHeight, m), columns = tilesOf(outWidth, m), tiles = rows * columns;
    // the input with its zero padding, and room for the tiles that stick out (zeros too, never written)
    const paddedWidth = columns * m + 2, padded = new Float64Array((rows * m + 2) * paddedWidth * channels);
    const row = width * channels, paddedRow = paddedWidth * channels, across = n * channels;
    const half = new Float64Array(n * n * Math.max(channels, filters)), zeros = new Float64Array(n * n * filters);
    const v = new Float32Array(n * n * tiles * channels), product = new Float64Array(n * n * tiles * filters);
    const plane = tiles * filters;
    return (x, out, bias) => {
      for (let y = 0; y < height; y++) {
        padded.set(x.subarray(y * row, (y + 1) * row), ((y + top) * paddedWidth + left) * channels);
      }
      for (let ty = 0; ty < rows; ty++) {
        for (let tx = 0; tx < columns; tx++) {  // B^T d down the columns (all channels at once), then along rows
          const tile = ty * columns + tx;
          input(padded, (ty * m * paddedWidth + tx * m) * channels, paddedRow, half, 0, across, across, constants);
          for (let j = 0; j < n; j++) {
            input(half, j * across, channels, v, (j * n * tiles + tile) * channels, tiles * channels, channels,
              constants);
          }
        }
      }
      for (let xi = 0; xi < n * n; xi++) {
        product44(v, xi * tiles * channels, u, xi * filters * channels, product, xi * plane, tiles, channels, filters);
      }
      for (let ty = 0; ty < rows; ty++) {
        for (let tx = 0; tx < columns; tx++) {  // A^T M down the columns, then along rows into the output
          const tile = ty * columns + tx, yEnd = Math.min(m, outHeight - m * ty), xEnd = Math.min(m, outWidth - m * tx);
          for (let k = 0; k < n; k++) {
            output(product, k * plane + tile * filters, n * plane, half, k * filters, n * filters, filters, zeros, m,
              constants);
          }
          for (let i = 0; i < yEnd; i++) {  // the first xEnd columns of the tile's row i: those inside the map
            const first = ((m * ty + i) * outWidth + m * tx) * filters;
            output(half, i * n * filters, filters, out, first, filters, filters, bias, xEnd, constants);
          }
        }
      }
      return out;
    };
  };

  // m[tile][filter] = sum over channels of v[tile][channel] u[filter][channel]: 4 tiles x 4 filters at a time,
  // 16 sums in registers for 8 reads (measured: 1.1x the speed of 2 x 4, 3x that of one tile at a time); the
  // tiles left over (a map of one tile: all of them) 1 x 8 at a time.
  function product44(v, vAt, u, uAt, m, mAt, tiles, channels, filters) {
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
      let f = 0;
      for (; f + 8 <= filters; f += 8) {
        const u0 = uAt + f * channels, u1 = u0 + channels, u2 = u1 + channels, u3 = u2 + channels;
        const u4 = u3 + channels, u5 = u4 + channels, u6 = u5 + channels, u7 = u6 + channels;
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
        for (let c = 0; c < channels; c++) {
          const x = v[v0 + c];
          a0 += x * u[u0 + c]; a1 += x * u[u1 + c]; a2 += x * u[u2 + c]; a3 += x * u[u3 + c];
          a4 += x * u[u4 + c]; a5 += x * u[u5 + c]; a6 += x * u[u6 + c]; a7 += x * u[u7 + c];
        }
        m[out + f] = a0; m[out + f + 1] = a1; m[out + f + 2] = a2; m[out + f + 3] = a3;
        m[out + f + 4] = a4; m[out + f + 5] = a5; m[out + f + 6] = a6; m[out + f + 7] = a7;
      }
      for (; f + 4 <= filters; f += 4) {
        const u0 = uAt + f * channels, u1 = u0 + channels, u2 = u1 + channels, u3 = u2 + channels;
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (let c = 0; c < channels; c++) {
          const x = v[v0 + c];
          a0 += x * u[u0 + c]; a1 += x * u[u1 + c]; a2 += x * u[u2 + c]; a3 += x * u[u3 + c];
        }
        m[out + f] = a0; m[out + f + 1] = a1; m[out + f + 2] = a2; m[out + f + 3] = a3;
      }
      for (; f < filters; f++) {
        const w = uAt + f * channels;
        let sum = 0;
        for (let c = 0; c < channels; c++) sum += v[v0 + c] * u[w + c];
        m[out + f] = sum;
      }
    }
  }
})();
