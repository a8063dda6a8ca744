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

  // A convolution's pre-activation output comes from the kernel nn-conv.js chose when the model loaded.
  function conv2d(x, step) {
    return activate(step.convolve(x, step), step.settings.activation, step.output_shape);
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
        if (!nn.convolution) throw new Error("nn-conv.js must be loaded before nn.js");
        step.convolve = nn.convolution(layer, weights);
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
