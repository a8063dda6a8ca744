// The playground's math panel: the forward and backward equations of the network on the page, each linking to
// the library function that computes it (/playground/source/...) and the docs section that derives it
// (/playground/docs/...). Equations are written in a small markup: ^{..} is a superscript, _{..} a subscript.
'use strict';

window.playgroundMath = (() => {
  const SOURCE = 'playground/source/';
  const DOCS = 'playground/docs/';
  const ACTIVATIONS = {
    tanh: { cls: 'Tanh', f: 'tanh(Z^{l})', d: 'δ^{A^l} ⊙ (1 − (A^{l})^{2})' },
    relu: { cls: 'ReLU', f: 'max(Z^{l}, 0)', d: 'δ^{A^l} ⊙ [A^{l} > 0]' },
    sigmoid: { cls: 'Sigmoid', f: 'σ(Z^{l}) = 1 / (1 + e^{−Z^l})', d: 'δ^{A^l} ⊙ A^{l}(1 − A^{l})' },
    linear: { cls: 'Linear', f: 'Z^{l}', d: 'δ^{A^l}' },
  };
  const OPTIMIZERS = {
    sgd: [['θ ← θ − η g', 'SGD: a step against the gradient g = ∂L/∂θ of every weight θ', 'SGD._update',
      'sgd-with-momentum-and-nesterov-momentum']],
    momentum: [['v ← 0.9 v − η g,   θ ← θ + v', 'SGD with momentum μ = 0.9 (Keras\' form: the velocity v holds η)',
      'SGD._update', 'sgd-with-momentum-and-nesterov-momentum']],
    adam: [
      ['m ← β_{1} m + (1 − β_{1}) g,   v ← β_{2} v + (1 − β_{2}) g^{2}',
        'Adam\'s moving averages of g and g², β₁ = 0.9, β₂ = 0.999', 'Adam._update', 'adam'],
      ['η_{t} = η √(1 − β_{2}^{t}) / (1 − β_{1}^{t}),   θ ← θ − η_{t} m / (√v + ε)',
        'the bias-corrected step, t = 1, 2, …, ε = 10⁻⁷', 'Adam.step_size', 'adam'],
    ],
  };

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Append `text` to `parent`, turning ^x and ^{..} into superscripts, _x and _{..} into subscripts (nested).
  function build(text, parent) {
    let i = 0;
    let plain = '';
    while (i < text.length) {
      const c = text[i];
      if ((c === '^' || c === '_') && i + 1 < text.length) {
        let end = i + 2;
        let inner = text[i + 1];
        if (inner === '{') {
          for (let depth = 1; end < text.length && depth > 0; end++) {
            depth += text[end] === '{' ? 1 : text[end] === '}' ? -1 : 0;
          }
          inner = text.slice(i + 2, end - 1);
        }
        const script = element(c === '^' ? 'sup' : 'sub');
        build(inner, script);
        parent.append(plain, script);
        plain = '';
        i = end;
      } else {
        plain += c;
        i += 1;
      }
    }
    parent.append(plain);
  }

  function formula(text) {
    const span = element('span', 'formula');
    build(text, span);
    return span;
  }

  function link(href, text, title) {
    const a = element('a', '', text);
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener';
    a.title = title;
    return a;
  }

  // One equation: the formula, links to its code (file#Qualified.name) and its derivation (page#heading).
  function equation(text, what, file, name, page, heading) {
    const row = element('div', 'equation');
    row.append(formula(text));
    if (name) row.append(link(`${SOURCE}${file}#${name}`, `${name} ↗`, `The code: ${name} in NeuralNetworks/${file}`));
    if (page) row.append(link(`${DOCS}${page}#${heading}`, `derivation ↗`, `docs/${page}: why`));
    row.append(element('span', 'what', what));
    return row;
  }

  function shapes(settings) {
    const sizes = [2, ...settings.hidden, 1];
    const superscript = (n) => String(n).replace(/\d/g, (d) => '⁰¹²³⁴⁵⁶⁷⁸⁹'[d]);
    return sizes.slice(1).map((units, i) => `W${superscript(i + 1)} ${sizes[i]}×${units}`).join(', ');
  }

  function render(container, settings, task) {
    const L = settings.hidden.length + 1;
    const act = ACTIVATIONS[settings.activation];
    const classification = task === 'classification';
    const rows = [element('h3', '', `Forward: ${L} Dense layer${L > 1 ? 's' : ''}, l = 1 … ${L}`)];
    rows.push(equation('A^{0} = X', 'a batch of m points (x₁, x₂), one per row', 'data/toy.py', 'make',
      'playground.md', 'the-data'));
    rows.push(equation('Z^{l} = A^{l−1} W^{l} + b^{l}', `every layer; ${shapes(settings)}`,
      'nn/layers/core.py', 'Dense.preactivation', 'forward.md', 'dense'));
    if (L > 1) {
      rows.push(equation(`A^{l} = ${act.f}`, `the hidden layers l = 1 … ${L - 1}: ${settings.activation}`,
        'nn/activations.py', `${act.cls}.__call__`, 'forward.md', 'activations'));
    }
    if (classification) {
      rows.push(equation(`Ŷ = A^{${L}} = σ(Z^{${L}})`, 'the output: the probability of the blue class',
        'nn/activations.py', 'Sigmoid.__call__', 'forward.md', 'activations'));
      rows.push(equation('L = −(1/m) Σ_{i} [y_{i} log ŷ_{i} + (1 − y_{i}) log(1 − ŷ_{i})]',
        'binary cross-entropy, the mean over the batch', 'nn/losses.py', 'BinaryCrossentropy.__call__',
        'backpropagation.md', 'losses'));
    } else {
      rows.push(equation(`Ŷ = A^{${L}} = Z^{${L}}`, 'the output: a linear unit', 'nn/activations.py',
        'Linear.__call__', 'forward.md', 'activations'));
      rows.push(equation('L = (1/m) Σ_{i} (ŷ_{i} − y_{i})^{2}', 'mean squared error over the batch',
        'nn/losses.py', 'MeanSquaredError.__call__', 'backpropagation.md', 'losses'));
    }
    rows.push(element('h3', '', 'Backward: from the loss down to W¹'));
    if (classification) {
      rows.push(equation(`δ^{A^${L}} = ∂L/∂Ŷ = (Ŷ − Y) / (m Ŷ(1 − Ŷ))`, 'the loss gradient',
        'nn/losses.py', 'BinaryCrossentropy.gradient', 'backpropagation.md', 'losses'));
      rows.push(equation(`δ^{Z^${L}} = δ^{A^${L}} ⊙ Ŷ(1 − Ŷ) = (Ŷ − Y) / m`, 'through the sigmoid',
        'nn/activations.py', 'Sigmoid.backward', 'backpropagation.md', 'activations'));
    } else {
      rows.push(equation(`δ^{A^${L}} = ∂L/∂Ŷ = (2/m)(Ŷ − Y)`, 'the loss gradient', 'nn/losses.py',
        'MeanSquaredError.gradient', 'backpropagation.md', 'losses'));
      rows.push(equation(`δ^{Z^${L}} = δ^{A^${L}}`, 'through the linear output', 'nn/activations.py',
        'Linear.backward', 'backpropagation.md', 'activations'));
    }
    rows.push(equation('∂L/∂W^{l} = (A^{l−1})^{T} δ^{Z^l},   ∂L/∂b^{l} = Σ_{i} δ^{Z^l}_{i}',
      `the gradients of layer l = ${L} … 1, written to layer.grads`, 'nn/layers/core.py',
      'Dense.backward_preactivation', 'backpropagation.md', 'dense'));
    if (L > 1) {
      rows.push(equation('δ^{A^{l−1}} = δ^{Z^l} (W^{l})^{T}', `passed down to layer l − 1, for l = ${L} … 2`,
        'nn/layers/core.py', 'Dense.backward_preactivation', 'backpropagation.md', 'dense'));
      rows.push(equation(`δ^{Z^l} = ${act.d}`, `through ${settings.activation}, l = ${L - 1} … 1`,
        'nn/activations.py', `${act.cls}.backward`, 'backpropagation.md', 'activations'));
    }
    rows.push(equation('‖∂L/∂θ^{l}‖ = √(Σ (∂L/∂W^{l})^{2} + Σ (∂L/∂b^{l})^{2})',
      'the gradient norm plotted per layer, over the whole training set', 'app/playground_run.py', 'Run.view',
      'playground.md', 'what-it-shows'));
    rows.push(element('h3', '', `Update: ${settings.optimizer}, η = ${settings.learning_rate}, one batch of ` +
      `${settings.batch_size} per step`));
    rows.push(equation(`X, Y ← the next ${settings.batch_size} training points`,
      'one step is train_on_batch: compute_gradients (forward and backward), then apply_gradients',
      'nn/models.py', 'train_on_batch', 'training.md', 'the-walk-of-one-batch'));
    for (const [text, what, name, heading] of OPTIMIZERS[settings.optimizer]) {
      rows.push(equation(text, what, 'nn/optimizers.py', name, 'optimizers.md', heading));
    }
    container.replaceChildren(...rows);
  }

  return { render };
})();
