// NeuralNetworks in the browser: the forward pass of an exported model, in plain JavaScript.
//
// A model is a manifest (JSON: labels, input shape, layers with their settings) plus its weights, float32
// little-endian, in one buffer; each weight is a slice of it named by the manifest. Activations are stored
// channels-last and row-major, the layout of the NumPy library, so Flatten and Reshape move no data.
// Arithmetic is in double precision, stored as float32 between layers. Each step writes into a buffer of its own,
// made when the model loads, so that a prediction allocates next to nothing but its answer.
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

  // -- layers: (input Float32Array, step) -> output Float32Array (step.out, the step's own buffer) -------------
  // The nonzero inputs first (after ReLU most are zero), then eight units at a time, their sums in registers,
  // from a copy of the kernel made at load where those eight units' weights lie together for every input,
  // [unit / 8][input][8] (the rest of the units, when their count is not a multiple of 8, in the kernel).
  const DENSE_BLOCK = 8;

  function blockedKernel(kernel, inputs, units) {
    const blocks = Math.floor(units / DENSE_BLOCK), out = new Float32Array(blocks * inputs * DENSE_BLOCK);
    for (let block = 0; block < blocks; block++) {
      for (let i = 0; i < inputs; i++) {
        const to = (block * inputs + i) * DENSE_BLOCK, from = i * units + block * DENSE_BLOCK;
        for (let j = 0; j < DENSE_BLOCK; j++) out[to + j] = kernel[from + j];
      }
    }
    return out;
  }

  function dense(x, step) {
    const kernel = step.weights.kernel, { blocked, bias, values, rows, out } = step.dense, units = bias.length;
    let count = 0;
    for (let i = 0; i < x.length; i++) {
      if (x[i] !== 0) { values[count] = x[i]; rows[count++] = i; }
    }
    let u = 0;
    for (; u + DENSE_BLOCK <= units; u += DENSE_BLOCK) {
      let s0 = bias[u], s1 = bias[u + 1], s2 = bias[u + 2], s3 = bias[u + 3];
      let s4 = bias[u + 4], s5 = bias[u + 5], s6 = bias[u + 6], s7 = bias[u + 7];
      const block = u * x.length;  // (u / 8) * inputs * 8
      for (let k = 0; k < count; k++) {
        const value = values[k], at = block + rows[k] * 8;
        s0 += value * blocked[at]; s1 += value * blocked[at + 1]; s2 += value * blocked[at + 2];
        s3 += value * blocked[at + 3]; s4 += value * blocked[at + 4]; s5 += value * blocked[at + 5];
        s6 += value * blocked[at + 6]; s7 += value * blocked[at + 7];
      }
      out[u] = s0; out[u + 1] = s1; out[u + 2] = s2; out[u + 3] = s3;
      out[u + 4] = s4; out[u + 5] = s5; out[u + 6] = s6; out[u + 7] = s7;
    }
    for (; u < units; u++) {
      let sum = bias[u];
      for (let k = 0; k < count; k++) sum += values[k] * kernel[rows[k] * units + u];
      out[u] = sum;
    }
    return activate(out, step.settings.activation, step.output_shape);
  }

  const sizeOf = (shape) => shape.reduce((a, b) => a * b, 1);

  // A convolution's pre-activation output comes from the kernel nn-conv.js chose when the model loaded.
  function conv2d(x, step) {
    return activate(step.convolve(x, step, step.out), step.settings.activation, step.output_shape);
  }

  // Max or average over each window, channels innermost; the average counts the window's real pixels only, as
  // the NumPy layer does with "same" padding.
  function pool(maximum) {
    return (x, step) => {
      const [height, width, channels] = step.input_shape, [outHeight, outWidth] = step.output_shape;
      const [windowHeight, windowWidth] = step.settings.window, [strideY, strideX] = step.settings.strides;
      const [top, left] = step.settings.pads;
      const out = step.out;
      if (maximum && windowHeight === 2 && windowWidth === 2 && strideY === 2 && strideX === 2 && !top && !left) {
        return maxPool2x2(x, out, height, width, channels, outHeight, outWidth);
      }
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

  // The common case, 2x2 windows at stride 2 (a last row or column alone where "same" pads the size to even).
  function maxPool2x2(x, out, height, width, channels, outHeight, outWidth) {
    const row = width * channels;
    for (let oy = 0; oy < outHeight; oy++) {
      const down = 2 * oy + 1 < height ? row : 0;
      for (let ox = 0; ox < outWidth; ox++) {
        const a = (2 * oy * width + 2 * ox) * channels, right = 2 * ox + 1 < width ? channels : 0;
        const b = a + right, c = a + down, d = c + right, o = (oy * outWidth + ox) * channels;
        for (let k = 0; k < channels; k++) {
          const top = x[a + k] > x[b + k] ? x[a + k] : x[b + k], bottom = x[c + k] > x[d + k] ? x[c + k] : x[d + k];
          out[o + k] = top > bottom ? top : bottom;
        }
      }
    }
    return out;
  }

  const maxPooling = pool(true);
  const averagePooling = pool(false);

  function globalAveragePooling(x, step) {
    const channels = step.output_shape[0], pixels = x.length / channels, sum = step.sum, out = step.out;
    sum.fill(0);
    for (let i = 0; i < x.length; i++) sum[i % channels] += x[i];
    for (let c = 0; c < channels; c++) out[c] = sum[c] / pixels;
    return out;
  }

  // BatchNormalization and Rescaling are y = x * scale + shift per channel (the last axis); a BatchNormalization's
  // scale is gamma / sqrt(variance + epsilon) and its shift beta - mean * scale, made once when the model loads.
  function affine(x, step) {
    const { scale, shift } = step.affine, channels = scale.length, out = step.out;
    for (let start = 0; start < x.length; start += channels) {  // pixel by pixel, channels innermost
      for (let c = 0; c < channels; c++) out[start + c] = x[start + c] * scale[c] + shift[c];
    }
    return out;
  }

  function affineOf(layer, weights) {
    if (layer.kind === "Rescaling") {
      const { scale, offset } = layer.settings;
      return { scale: Float64Array.of(scale), shift: Float64Array.of(offset) };
    }
    const { gamma, beta, moving_mean: mean, moving_variance: variance } = weights;
    const epsilon = Math.fround(layer.settings.epsilon);
    const scale = Float64Array.from(gamma, (g, c) => g / Math.sqrt(variance[c] + epsilon));
    return { scale, shift: Float64Array.from(beta, (b, c) => b - mean[c] * scale[c]) };
  }

  // -- merge layers: (inputs, an array of Float32Array, step) -> output Float32Array ----------------------------
  function elementwise(combine, finish = (value) => value) {
    return (xs, step) => {
      const out = step.out;
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
    const out = step.out;
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
    BatchNormalization: affine,
    Rescaling: affine,
    Activation: (x, step) => {
      step.out.set(x);
      return activate(step.out, step.settings.activation, step.output_shape);
    },
    Flatten: (x) => x,
    Reshape: (x) => x,
    ...MERGES,
  };

  const AFFINE = new Set(["BatchNormalization", "Rescaling"]);
  const PASSING = new Set(["Flatten", "Reshape"]);  // steps that pass their input on as it is

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
    const layers = graph.layers.map((layer) => {
      if (!LAYERS[layer.kind]) throw new Error(`layer ${layer.name}: unknown kind ${layer.kind}`);
      for (const name of layer.inputs) {
        if (!known.has(name)) throw new Error(`layer ${layer.name} reads ${name}, which no earlier layer writes`);
      }
      known.add(layer.output);
      return { ...layer, weights: weightsOf(layer, buffer) };
    });
    for (const output of graph.outputs) {
      if (!known.has(output.name)) throw new Error(`the model's output ${output.name} is written by no layer`);
    }
    if (!nn.convolution) throw new Error("nn-conv.js must be loaded before nn.js");
    const steps = nn.fold(layers, graph.outputs, affineOf).map((layer) => {
      const step = { ...layer, run: LAYERS[layer.kind], merge: layer.kind in MERGES };
      if (!PASSING.has(layer.kind)) step.out = new Float32Array(sizeOf(layer.output_shape));
      if (AFFINE.has(layer.kind)) step.affine = affineOf(layer, layer.weights);
      if (layer.kind === "GlobalAveragePooling2D") step.sum = new Float64Array(layer.output_shape[0]);
      if (layer.kind === "Dense") {
        const inputs = sizeOf(layer.input_shape), bias = layer.weights.bias;
        const units = layer.output_shape[0];
        step.dense = { bias: bias || new Float64Array(units), values: new Float64Array(inputs),
          rows: new Int32Array(inputs), out: step.out, blocked: blockedKernel(layer.weights.kernel, inputs, units) };
      }
      if (layer.kind === "Conv2D") step.convolve = nn.convolution(layer, layer.weights);
      return step;
    });
    // after step i, the tensors nobody reads any more (freed as the pass goes)
    const lastUse = new Map();
    steps.forEach((step, index) => step.inputs.forEach((name) => lastUse.set(name, index)));
    const kept = new Set(graph.outputs.map((output) => output.name));
    const freed = steps.map((step, index) => step.inputs.filter((name) => lastUse.get(name) === index && !kept.has(name)));
    const sizes = graph.inputs.map((input) => sizeOf(input.shape));
    const inputBuffers = sizes.map((size) => new Float32Array(size)), tensors = new Map();
    function run(inputs) {
      if (!inputs || inputs.length !== sizes.length) {
        throw new Error(`run expects ${sizes.length} inputs; received ${inputs ? inputs.length : inputs}`);
      }
      tensors.clear();
      graph.inputs.forEach((input, k) => {
        if (!inputs[k] || inputs[k].length !== sizes[k]) {
          throw new Error(`input ${input.name} takes ${sizes[k]} values; received ${inputs[k] ? inputs[k].length : inputs[k]}`);
        }
        inputBuffers[k].set(inputs[k]);
        tensors.set(input.name, inputBuffers[k]);
      });
      steps.forEach((step, index) => {
        const xs = step.inputs.map((name) => tensors.get(name));
        tensors.set(step.output, step.run(step.merge ? xs : xs[0], step));
        for (const name of freed[index]) tensors.delete(name);
      });
      return graph.outputs.map((output) => tensors.get(output.name).slice());  // the steps' buffers stay theirs
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
