"""The floating-point work of one benchmark step, counted from the shapes.

Only matrix products count. A product `(m, k) x (k, n)` is `mm(m, k, n) =
2 m k n` FLOPs (a multiply and an add per term). Its backward pass is two
products of the same size, each counted where its gradient is needed:
`dX = dY W^T`, `(m, n) x (n, k)`, and `dW = X^T dY`, `(k, m) x (m, n)`.
Left out, because they are not matrix products: the embedding's gathers
(and its sparse gradient), the gate nonlinearities and every other
elementwise operation (biases, masks, dropout, the softmax and its cross
entropy), and the optimizer's update.

Notation: batch `B`, units `H`, gates per cell `g` (LSTM 4, GRU 3; a GRU's
reset gate does not change its products' sizes), input size `E` (the
embedding, or the features of float inputs), vocabulary `V`, sequence
length `N`, `bptt` `S`, `aux_length` `L`, anchors `A`, window rows
`R = B A`, decoder units `U` (`aux_units`, `H` by default), head width `F`
(`aux_hidden`), classes `C`.

One recurrent layer run over `T` steps at `R` rows, input size `I`:

- forward: the input projection `T mm(R, I, gH)` (`x W`: one product over
  the whole window on the LSTM fast path for embedded tokens or a layer
  below, one per step inside the loop for float inputs, any other cell and
  Keras's own layers) and the recurrent product `T mm(R, H, gH)` (`h U`,
  always inside the loop);
- backward: both weights' gradients, `T mm(R, I, gH) + T mm(R, H, gH)`; the
  input's gradient `T mm(R, I, gH)` where the input is differentiable (an
  embedding or a layer below), none where it is data (float inputs); the
  state's gradient `(T - 1) mm(R, H, gH)`: none reaches the state a run
  starts from, which is cut from the gradient or zeros, except in the
  reconstruction decoder's bottom layer, which starts from the anchor
  window's final state and so counts `T`. (A loop runs the same body at
  every step, so it computes the first step's state gradient and throws it
  away: one product in `T`, not counted.)

The configurations (`truncated_lstm` is `aux_step` with `aux_loss=None`):

- `aux_step`, a training step of `AuxLossRNN`:
  - capture pass, forward only, over `S_c = max(N - S, N - span)` steps,
    `span` being `L` (`L + 1` to predict): it stops after the last window
    starts, the supervised window at `N - S` or an anchor's, drawn at
    random, at `N - span` at most (`S_c` is exact for `S <= span`, as in
    the benchmark, and a bound otherwise); its recurrent products
    `S_c mm(B, H, gH)`; its inputs, for token ids on the LSTM fast path
    with `V <= B N`, a table of every token's gates, `mm(V, E, gH)`, once;
    otherwise `S_c mm(B, E, gH)`, a step at a time;
  - supervised window: a run of `S` steps at `B` rows (with `bptt=None`, of
    `N` steps, and no capture pass);
  - anchors' windows: a run of `L` steps at `R` rows (for prediction, the
    first `L` of the `L + 1` steps it reads);
  - decoder: `aux_layers` runs of `D` steps at `R` rows, `D = L - 1` to
    reconstruct (fed the window's first `L - 1` tokens, embedded, `I = E`,
    its bottom layer a cell of the main kind) and `D = L` to predict (fed
    the window's outputs, `I = H`, an LSTM); upper layers are LSTMs of `U`
    units fed the layer below, starting from zeros;
  - head: `mm(DR, U, F) + mm(DR, F, V)` (`E` instead of `V` for float
    inputs; with a sampled softmax of `K` negatives, `mm(DR, F, K)` for
    them and `mm(DR, F, 1)` for each position's target instead of
    `mm(DR, F, V)`), both gradients of each in the backward pass;
  - classifier: the benchmark's `Dense(C)`, `mm(B, H, C)`, both gradients.
- `inference_step`, `forward_floor`: the main network over `N` steps,
  forward only (inputs as in the capture pass), and the classifier.
- `full_backpropagation_step`, `keras_full_bp`: Keras's own layer trained
  over all `N` steps (a run of `N` steps at `B` rows, its input projection
  inside the loop), and the classifier.

The benchmark's layers return their last output, unmasked, and feed the
decoder the true tokens: with `return_sequences` the capture pass would
run all `N` steps; scheduled sampling moves the decoder's projections and
its head into its loop, with the same count.

For `r_lstm` at 784 steps this is 66.2 GFLOP, 3.4 x the 19.7 of
`keras_full_bp`, whose 784 steps are fewer than the r-LSTM's 300 + 600 +
2 x 599 differentiable ones; run `python -m benchmarks.flops` for the
breakdown.
"""

import dataclasses

# Gates per cell: the width of its products is `gates * units`.
GATES = {"lstm": 4, "gru": 3}
# The parts of a step, in the order of the breakdown.
PARTS = (
    "whole sequence",
    "capture pass",
    "supervised window",
    "anchors' windows",
    "decoder",
    "head",
    "classifier",
)


@dataclasses.dataclass(frozen=True)
class Network:
    """The shapes that set a step's work; the defaults are the benchmark's
    (`r_lstm`)."""

    cell: str = "lstm"
    batch_size: int = 32
    units: int = 128
    input_dim: int = 128  # The embedding's size, or the features of float inputs.
    vocab_size: int | None = 256  # None: float inputs.
    classes: int = 10
    bptt: int | None = 300
    aux_loss: str | None = "reconstruct"
    aux_length: int = 600
    num_anchors: int = 1
    aux_layers: int = 2
    aux_units: int | None = None
    aux_hidden: int = 256
    aux_sampled_softmax: int | None = None

    @property
    def gates(self):
        return GATES[self.cell]


@dataclasses.dataclass(frozen=True)
class Term:
    """The FLOPs of one kind of product in one part of a step: `in_loop`
    ones run a step at a time inside a recurrent loop (at the rate of the
    loop's small products), the others once over a whole window."""

    part: str
    what: str
    in_loop: bool
    forward: int
    backward: int = 0

    @property
    def total(self):
        return self.forward + self.backward


def mm(m, k, n):
    """FLOPs of a matrix product `(m, k) x (k, n)`."""
    return 2 * m * k * n


def recurrent_run(
    part,
    *,
    steps,
    rows,
    input_dim,
    units,
    gates,
    trained=True,
    input_gradient=True,
    state_gradient_at_start=False,
    projection_in_loop=False,
):
    """The terms of one recurrent layer run over `steps` steps at `rows`
    rows: its input projection and its recurrent product, forward and, if
    `trained`, backward (see the module's docstring)."""
    projection = steps * mm(rows, input_dim, gates * units)
    recurrent = mm(rows, units, gates * units)
    state_steps = steps if state_gradient_at_start else steps - 1
    return [
        Term(
            part,
            "input projection",
            projection_in_loop,
            projection,
            (1 + input_gradient) * projection if trained else 0,
        ),
        Term(
            part,
            "recurrent product",
            True,
            steps * recurrent,
            (steps + state_steps) * recurrent if trained else 0,
        ),
    ]


def _whole_sequence_pass(net, part, steps, length):
    """A pass outside the gradient over `steps` of a sequence of `length`:
    for token ids on the LSTM fast path with `V <= B length` (the layer's
    rule: where it costs no more), inputs read from a table of every
    token's gates, computed once; otherwise projected a step at a time."""
    gate_width = net.gates * net.units
    recurrent = Term(
        part, "recurrent product", True, steps * mm(net.batch_size, net.units, gate_width)
    )
    tokens = net.batch_size * length
    if net.cell == "lstm" and net.vocab_size is not None and net.vocab_size <= tokens:
        inputs = Term(part, "token table", False, mm(net.vocab_size, net.input_dim, gate_width))
    else:
        inputs = Term(
            part,
            "input projection",
            True,
            steps * mm(net.batch_size, net.input_dim, gate_width),
        )
    return [inputs, recurrent]


def _classifier(net, trained):
    product = mm(net.batch_size, net.units, net.classes)
    return Term("classifier", "dense", False, product, 2 * product if trained else 0)


def aux_step(net, length):
    """A training step of `AuxLossRNN` (`aux_loss=None`: truncated only)."""
    tokens = net.vocab_size is not None
    # A generic cell projects its inputs inside its own step; the LSTM fast
    # path projects a window of embedded tokens before its loop, float
    # inputs a step at a time (as the pass over the whole sequence does).
    main = dict(
        units=net.units,
        gates=net.gates,
        input_gradient=tokens,
        projection_in_loop=net.cell != "lstm" or not tokens,
    )
    terms = []
    if net.bptt is None:
        terms += recurrent_run(
            "supervised window", steps=length, rows=net.batch_size, input_dim=net.input_dim, **main
        )
    else:
        span = net.aux_length + (net.aux_loss == "predict")
        capture_steps = max(length - net.bptt, length - span if net.aux_loss else 0)
        terms += _whole_sequence_pass(net, "capture pass", capture_steps, length)
        terms += recurrent_run(
            "supervised window",
            steps=net.bptt,
            rows=net.batch_size,
            input_dim=net.input_dim,
            **main,
        )
    if net.aux_loss is not None:
        terms += _auxiliary_terms(net, main)
    return terms + [_classifier(net, trained=True)]


def _auxiliary_terms(net, main):
    rows = net.batch_size * net.num_anchors
    aux_units = net.aux_units or net.units
    terms = recurrent_run(
        "anchors' windows", steps=net.aux_length, rows=rows, input_dim=net.input_dim, **main
    )
    if net.aux_loss == "reconstruct":
        # A cell of the main kind, fed the embedded tokens, from the
        # window's final state.
        steps = net.aux_length - 1
        layers = [
            dict(
                main,
                input_dim=net.input_dim,
                projection_in_loop=net.cell != "lstm",
                state_gradient_at_start=True,
            )
        ]
    else:
        # An LSTM fed the window's outputs, from zeros.
        steps = net.aux_length
        layers = [dict(units=aux_units, gates=GATES["lstm"], input_dim=net.units)]
    for _ in range(1, net.aux_layers):
        below = layers[-1]["units"]
        layers.append(dict(units=aux_units, gates=GATES["lstm"], input_dim=below))
    for layer in layers:
        terms += recurrent_run("decoder", steps=steps, rows=rows, **layer)
    top_units = layers[-1]["units"]
    positions = steps * rows
    products = [mm(positions, top_units, net.aux_hidden)]
    if net.aux_sampled_softmax is None:
        products.append(mm(positions, net.aux_hidden, net.vocab_size or net.input_dim))
    else:  # The negatives' logits, and each position's target's.
        products += [
            mm(positions, net.aux_hidden, net.aux_sampled_softmax),
            mm(positions, net.aux_hidden, 1),
        ]
    for product in products:
        terms.append(Term("head", "dense", False, product, 2 * product))
    return terms


def inference_step(net, length):
    """`predict_on_batch`: the main network over the whole sequence, and
    the classifier."""
    return _whole_sequence_pass(net, "whole sequence", length, length) + [
        _classifier(net, trained=False)
    ]


def full_backpropagation_step(net, length):
    """A training step of Keras's own recurrent layer over the whole
    sequence, on an `Embedding` for token ids."""
    return recurrent_run(
        "whole sequence",
        steps=length,
        rows=net.batch_size,
        input_dim=net.input_dim,
        units=net.units,
        gates=net.gates,
        input_gradient=net.vocab_size is not None,
        projection_in_loop=True,
    ) + [_classifier(net, trained=True)]


def total(terms, *, in_loop=None):
    """The FLOPs of `terms`, forward and backward (only those in the loop,
    or only those out of it, if `in_loop` is given)."""
    return sum(t.total for t in terms if in_loop is None or t.in_loop == in_loop)


def by_part(terms):
    """`{part: (forward, backward)}` in the order of `PARTS`, parts with
    no FLOPs left out."""
    sums = {}
    for part in PARTS:
        chosen = [t for t in terms if t.part == part]
        if chosen:
            sums[part] = (sum(t.forward for t in chosen), sum(t.backward for t in chosen))
    return sums


def breakdown_table(terms_by_length):
    """Markdown lines: GFLOP forward / backward per part of a step, a
    column per length (`terms_by_length` maps a length to its terms), with
    the total and the part of it run in a loop, a step at a time."""
    lengths = list(terms_by_length)

    def row(name, sums):
        cells = " | ".join(
            f"{forward / 1e9:.2f} / {backward / 1e9:.2f}" for forward, backward in sums
        )
        return f"| {name} | {cells} |"

    lines = ["| part | " + " | ".join(str(n) for n in lengths) + " |"]
    lines.append("|---|" + "---:|" * len(lengths))
    parts = [by_part(terms) for terms in terms_by_length.values()]
    for part in PARTS:
        if any(part in p for p in parts):
            lines.append(row(part, [p.get(part, (0, 0)) for p in parts]))
    for name, in_loop in (("total", None), ("in a loop, a step at a time", True)):
        sums = [
            [sum(getattr(t, kind) for t in terms if in_loop in (None, t.in_loop))
             for kind in ("forward", "backward")]
            for terms in terms_by_length.values()
        ]  # fmt: skip
        lines.append(row(name, sums))
    return lines


if __name__ == "__main__":
    r_lstm = Network()
    print("r_lstm, GFLOP forward / backward:")
    print("\n".join(breakdown_table({n: aux_step(r_lstm, n) for n in (784, 16384)})))
    print()
    for name, count in (
        ("r_lstm", aux_step(r_lstm, 784)),
        ("truncated_lstm", aux_step(dataclasses.replace(r_lstm, aux_loss=None), 784)),
        ("keras_full_bp", full_backpropagation_step(r_lstm, 784)),
        ("forward_floor", inference_step(r_lstm, 784)),
    ):
        print(f"{name} at 784: {total(count) / 1e9:.2f} GFLOP")
