"""The benchmark's FLOP count (benchmarks/flops.py): a small step worked out
by hand, Keras's LSTM against TensorFlow's own profiler, and every kind of
configuration against the matrix products of the real step as JAX traces
it (this file, run as a module on JAX, counts them)."""

import dataclasses
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from benchmarks import flops

# The repository's root, where this file runs as a module (`python -m tests.test_flops`).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Small configurations, a sequence of LENGTH steps: each kind of step, cell,
# auxiliary loss, anchors, decoder depth, and inputs the count tells apart.
LENGTH = 12
SMALL = flops.Network(
    batch_size=2,
    units=3,
    input_dim=4,
    vocab_size=5,
    classes=2,
    bptt=3,
    aux_length=5,
    aux_hidden=6,
)
CONFIGURATIONS = {
    "r_lstm": ("aux", SMALL),
    "truncated_lstm": ("aux", dataclasses.replace(SMALL, aux_loss=None)),
    "keras_full_bp": ("full", SMALL),
    "forward_floor": ("inference", SMALL),
    # More tokens than steps: no table, each step projects its embedding.
    "r_lstm_words": ("aux", dataclasses.replace(SMALL, vocab_size=50)),
    "forward_floor_words": ("inference", dataclasses.replace(SMALL, vocab_size=50)),
    "r_gru": ("aux", dataclasses.replace(SMALL, cell="gru")),
    "p_lstm_two_anchors": ("aux", dataclasses.replace(SMALL, aux_loss="predict", num_anchors=2)),
    "p_gru_three_layers": (
        "aux",
        dataclasses.replace(SMALL, cell="gru", aux_loss="predict", aux_layers=3, aux_units=5),
    ),
    "r_lstm_one_layer_full_bp": ("aux", dataclasses.replace(SMALL, aux_layers=1, bptt=None)),
    "r_lstm_floats": ("aux", dataclasses.replace(SMALL, vocab_size=None)),
}
STEPS = {"aux": flops.aux_step, "full": flops.full_backpropagation_step}
STEPS["inference"] = flops.inference_step


def test_a_small_step_counted_by_hand():
    # SMALL with bptt 2, aux_length 3, 8 steps: B 2, H 3, E 4, V 5, C 2,
    # g H = 12. A recurrent product at 2 rows is mm(2, 3, 12) = 144 FLOPs,
    # a projection of 4 inputs mm(2, 4, 12) = 192, of 3 inputs 144.
    net = dataclasses.replace(SMALL, bptt=2, aux_length=3)
    forward = (
        6 * 144  # Capture pass: max(8 - 2, 8 - 3) = 6 steps,
        + 5 * 4 * 12 * 2  # and the table of the 5 tokens' gates.
        + 2 * (192 + 144)  # Supervised window, 2 steps.
        + 3 * (192 + 144)  # Anchor's window, 3 steps.
        + 2 * (192 + 144)  # Decoder's bottom layer, 2 steps,
        + 2 * (144 + 144)  # and its top layer.
        + 2 * 4 * 3 * 6  # Head, 2 x 2 positions: 3 -> 6,
        + 2 * 4 * 6 * 5  # 6 -> 5 tokens,
        + 2 * 2 * 3 * 2  # and the classifier.
    )
    backward = (
        2 * 2 * 192 + (2 + 1) * 144  # Supervised: x and W; U at 2 steps, h at 1.
        + 2 * 3 * 192 + (3 + 2) * 144  # Anchor's window.
        + 2 * 2 * 192 + (2 + 2) * 144  # Bottom layer: h at both steps (from the window).
        + 2 * 2 * 144 + (2 + 1) * 144  # Top layer, from zeros.
        + 2 * (2 * 4 * 3 * 6 + 2 * 4 * 6 * 5)  # Head.
        + 2 * (2 * 2 * 3 * 2)  # Classifier.
    )  # fmt: skip
    assert (forward, backward) == (4680, 6240)
    terms = flops.aux_step(net, 8)
    assert sum(t.forward for t in terms) == forward
    assert sum(t.backward for t in terms) == backward
    assert flops.total(terms) == 10_920


def test_the_benchmarks_r_lstm_at_784_steps():
    # The figures the module's docstring and the benchmark's README quote.
    net = flops.Network()
    r_lstm = flops.total(flops.aux_step(net, 784))
    keras_lstm = flops.total(flops.full_backpropagation_step(net, 784))
    assert round(r_lstm / 1e9, 1) == 66.2 and round(keras_lstm / 1e9, 1) == 19.7
    # r_lstm_words: the head's 50,000 logits at 599 x 32 positions dominate.
    words = flops.aux_step(dataclasses.replace(net, vocab_size=50_000), 784)
    head = sum(t.total for t in words if t.part == "head")
    assert head == 3 * 2 * 599 * 32 * 256 * (128 + 50_000)
    assert head / flops.total(words) > 0.95


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's profiler")
def test_keras_full_bp_matches_tensorflows_profiler():
    """TensorFlow's profiler counts each MatMul of a graph as 2 m k n and
    visits a loop's body once, so Keras's LSTM is unrolled: its training
    step's graph then holds every product, forward and backward."""
    import tensorflow as tf

    net = SMALL
    inputs = keras.Input((LENGTH,), dtype="int32", batch_size=net.batch_size)
    features = keras.layers.Embedding(net.vocab_size, net.input_dim)(inputs)
    features = keras.layers.LSTM(net.units, unroll=True)(features)
    model = keras.Model(inputs, keras.layers.Dense(net.classes)(features))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def gradients(x, y):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        return tape.gradient(value, model.trainable_variables)

    graph = gradients.get_concrete_function(
        tf.TensorSpec((net.batch_size, LENGTH), tf.int32),
        tf.TensorSpec((net.batch_size,), tf.int32),
    ).graph
    profiler = tf.compat.v1.profiler
    options = profiler.ProfileOptionBuilder(profiler.ProfileOptionBuilder.float_operation())
    options = options.with_accounted_types(["MatMul"]).with_empty_output().build()
    counted = profiler.profile(graph, options=options).total_float_ops
    assert counted == flops.total(flops.full_backpropagation_step(net, LENGTH))


@pytest.mark.end_to_end
def test_every_configuration_matches_the_products_jax_traces():
    """JAX traces the real step (the model's loss and its gradient, or the
    forward pass); every `dot_general` in it, times the steps of the loops
    around it, is counted. A loop computes the state's gradient at its
    first step too, where the count leaves out what nobody needs: one
    recurrent product per trained run that starts from a cut or zero state
    (twice its forward product less its backward)."""
    pytest.importorskip("jax")
    result = subprocess.run(
        [sys.executable, "-m", "tests.test_flops"],
        cwd=ROOT,
        env=dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    traced = json.loads(result.stdout.strip().splitlines()[-1])
    for name, (kind, net) in CONFIGURATIONS.items():
        terms = STEPS[kind](net, LENGTH)
        discarded = sum(
            2 * t.forward - t.backward
            for t in terms
            if t.what == "recurrent product" and t.backward
        )
        assert traced[name] == flops.total(terms) + discarded, name


# What the script counts, on JAX.


def _dot_flops(equation):
    (contracting, _), _ = equation.params["dimension_numbers"]
    left = equation.invars[0].aval.shape
    return 2 * math.prod(equation.outvars[0].aval.shape) * math.prod(left[i] for i in contracting)


def _traced_flops(jaxpr, while_steps):
    """FLOPs of the `dot_general`s of `jaxpr`, a loop's body counted once a
    step; `while_steps` is the steps of a `while` (the capture pass, whose
    steps are known only when it runs)."""
    count = 0
    for equation in jaxpr.eqns:
        params = equation.params
        if equation.primitive.name == "dot_general":
            count += _dot_flops(equation)
        elif equation.primitive.name == "scan":
            count += params["length"] * _traced_flops(params["jaxpr"].jaxpr, while_steps)
        elif equation.primitive.name == "while":
            count += while_steps * _traced_flops(params["body_jaxpr"].jaxpr, while_steps)
        elif equation.primitive.name == "cond":
            count += max(_traced_flops(b.jaxpr, while_steps) for b in params["branches"])
        else:
            for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
                if key in params:
                    inner = params[key]
                    count += _traced_flops(getattr(inner, "jaxpr", inner), while_steps)
    return count


def _model(kind, net):
    from keras_auxloss import AuxLossRNN

    tokens = net.vocab_size is not None
    shape = (LENGTH,) if tokens else (LENGTH, net.input_dim)
    inputs = keras.Input(shape, dtype="int32" if tokens else "float32", batch_size=net.batch_size)
    if kind == "full":  # As the benchmark's keras_full_bp.
        features = keras.layers.Embedding(net.vocab_size, net.input_dim)(inputs)
        features = keras.layers.LSTM(net.units)(features)
    else:
        cells = {"lstm": keras.layers.LSTMCell, "gru": keras.layers.GRUCell}
        features = AuxLossRNN(
            cells[net.cell](net.units),
            aux_loss=net.aux_loss,
            vocab_size=net.vocab_size,
            embedding_dim=net.input_dim,
            bptt=net.bptt,
            aux_length=net.aux_length,
            num_anchors=net.num_anchors,
            aux_layers=net.aux_layers,
            aux_units=net.aux_units,
            aux_hidden=net.aux_hidden,
            seed=0,
        )(inputs)
    return keras.Model(inputs, keras.layers.Dense(net.classes)(features))


def _trace(kind, net):
    import jax

    model = _model(kind, net)
    rng = np.random.default_rng(0)
    shape = (net.batch_size, LENGTH) + (() if net.vocab_size else (net.input_dim,))
    x = rng.integers(0, net.vocab_size, shape) if net.vocab_size else rng.normal(size=shape)
    x = x.astype("int32" if net.vocab_size else "float32")
    y = np.zeros(net.batch_size, "int32")
    trainable = [v.value for v in model.trainable_variables]
    fixed = [v.value for v in model.non_trainable_variables]

    def loss(trainable, x, y):
        training = kind != "inference"
        logits, _, losses = model.stateless_call(
            trainable, fixed, x, training=training, return_losses=True
        )
        value = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        return value.mean() + sum(losses)

    step = loss if kind == "inference" else jax.value_and_grad(loss)
    # The capture pass stops after the supervised window's start: the last
    # window starts no later, bptt being at most aux_length here.
    capture_steps = LENGTH - (net.bptt or 0)
    return _traced_flops(jax.make_jaxpr(step)(trainable, x, y).jaxpr, capture_steps)


if __name__ == "__main__":
    assert keras.backend.backend() == "jax"
    print(json.dumps({name: _trace(*config) for name, config in CONFIGURATIONS.items()}))
