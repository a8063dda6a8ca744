// NeuralNetworks in the browser: the forward pass of an exported model, in plain JavaScript.
//
// A model is a manifest (JSON: labels, input shape, layers with their settings) plus its weights, float32
// little-endian, in one buffer; each weight is a slice of it named by the manifest. Activations are stored
// channels-last and row-major, the layout of the NumPy library, so Flatten and Reshape move no data.
// Arithmetic is in double precision, stored as float32 between layers.
//
// API: window.nn.load(manifest, buffer) -> network; window.nn.register(manifest, buffer or base64) adds a
// network to window.nn.models and makes the first one current; window.nn.labels and window.nn.predict(pixels)
// use the current network (window.nn.use(name) changes it). predict takes 784 values 0..255, row-major, white
// ink on black as the model sees them, and returns the probabilities in label order.
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

  // For every output pixel of a window layer: begin(outIndex), visit(inIndex, ky, kx) for each input pixel of
  // its window that is not padding (indices count pixels, not values), then end(outIndex).
  function forEachWindow(step, { begin, visit, end }) {
    const [height, width] = step.input_shape, [outHeight, outWidth] = step.output_shape;
    const [windowHeight, windowWidth] = step.settings.window, [strideY, strideX] = step.settings.strides;
    const [top, left] = step.settings.pads;
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const outIndex = oy * outWidth + ox;
        begin(outIndex);
        for (let ky = 0; ky < windowHeight; ky++) {
          const iy = oy * strideY + ky - top;
          if (iy < 0 || iy >= height) continue;
          for (let kx = 0; kx < windowWidth; kx++) {
            const ix = ox * strideX + kx - left;
            if (ix >= 0 && ix < width) visit(iy * width + ix, ky, kx);
          }
        }
        end(outIndex);
      }
    }
  }

  const sizeOf = (shape) => shape.reduce((a, b) => a * b, 1);

  function conv2d(x, step) {
    const kernel = step.weights.kernel, bias = step.weights.bias;
    const channels = step.input_shape[2], filters = step.output_shape[2];
    const windowWidth = step.settings.window[1];
    const out = new Float32Array(sizeOf(step.output_shape));
    const sum = new Float64Array(filters);
    forEachWindow(step, {
      begin: () => { if (bias) sum.set(bias); else sum.fill(0); },
      visit: (pixel, ky, kx) => {
        const tap = (ky * windowWidth + kx) * channels * filters;
        for (let c = 0; c < channels; c++) {
          const value = x[pixel * channels + c];
          if (value === 0) continue;
          const row = tap + c * filters;
          for (let f = 0; f < filters; f++) sum[f] += value * kernel[row + f];
        }
      },
      end: (outIndex) => out.set(sum, outIndex * filters),
    });
    return activate(out, step.settings.activation, step.output_shape);
  }

  function pooling({ initial, add, finish }) {
    return (x, step) => {
      const channels = step.input_shape[2];
      const out = new Float32Array(sizeOf(step.output_shape));
      const value = new Float64Array(channels);
      let count = 0;
      forEachWindow(step, {
        begin: () => { value.fill(initial); count = 0; },
        visit: (pixel) => {
          for (let c = 0; c < channels; c++) value[c] = add(value[c], x[pixel * channels + c]);
          count++;
        },
        end: (outIndex) => { for (let c = 0; c < channels; c++) out[outIndex * channels + c] = finish(value[c], count); },
      });
      return out;
    };
  }

  const maxPooling = pooling({ initial: -Infinity, add: Math.max, finish: (value) => value });
  // Averages the window's real pixels only, as the NumPy layer does with "same" padding.
  const averagePooling = pooling({ initial: 0, add: (a, b) => a + b, finish: (value, count) => value / count });

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
    for (let i = 0; i < x.length; i++) {
      const c = i % channels;
      out[i] = (x[i] - mean[c]) * factor[c] + beta[c];
    }
    return out;
  }

  function rescaling(x, step) {
    const { scale, offset } = step.settings;
    return Float32Array.from(x, (value) => value * scale + offset);
  }

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

  function load(manifest, buffer) {
    if (!manifest || manifest.format !== MANIFEST_FORMAT || manifest.version !== MANIFEST_VERSION) {
      throw new Error(`not a ${MANIFEST_FORMAT} version ${MANIFEST_VERSION} manifest`);
    }
    const steps = manifest.layers.map((layer) => {
      if (!LAYERS[layer.kind]) throw new Error(`layer ${layer.name}: unknown kind ${layer.kind}`);
      return { ...layer, run: LAYERS[layer.kind], weights: weightsOf(layer, buffer) };
    });
    const size = sizeOf(manifest.input_shape);
    return {
      name: manifest.name,
      labels: manifest.labels.slice(),
      style: manifest.preprocessing,
      inputShape: manifest.input_shape.slice(),
      predict(pixels) {
        if (!pixels || pixels.length !== size) {
          throw new Error(`predict expects ${size} values; received ${pixels ? pixels.length : pixels}`);
        }
        let x = Float32Array.from(pixels);
        for (const step of steps) x = step.run(x, step);
        return x;
      },
    };
  }

  function decodeBase64(text) {
    const bytes = Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
    return bytes.buffer;
  }

  nn.models = nn.models || {};
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
