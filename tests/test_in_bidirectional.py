"""The layers inside `keras.layers.Bidirectional`: the values of Keras's
`Bidirectional(LSTM)` in and out of training, the backward copy's
truncation at the start of the sequence, both copies' auxiliary losses in
`fit` and their metric names, their anchors, saving, and stateful runs."""

import keras
import numpy as np
import pytest
from keras import ops
from support import (
    BACKEND,
    copy_task,
    float_inputs,
    gradient_per_step,
    needs_keras,
    numpy,
    repeating_tokens,
)

from keras_auxloss import AuxLossLSTM

pytestmark = [
    pytest.mark.any_backend,
    # Tests that build several unnamed layers in one Keras session.
    pytest.mark.filterwarnings("ignore:.*logs its auxiliary loss as:UserWarning"),
]

LENGTH = 8
FEATURES = 3
UNITS = 4
BPTT = 3
VOCAB = 6
MERGE_MODES = ["concat", "sum", "mul", "ave", None]


def ours(**options):
    defaults = dict(
        units=UNITS,
        aux_loss="reconstruct",
        bptt=BPTT,
        aux_length=2,
        num_anchors=2,
        aux_hidden=4,
        aux_dropout=0.0,
        seed=0,
    )
    return AuxLossLSTM(**{**defaults, **options})


KERAS_OPTIONS = ("return_sequences", "return_state", "stateful")


def keras_twin(bidirectional, merge_mode, batch=None, **options):
    """Keras's `Bidirectional(LSTM)` holding the cells' weights of
    `bidirectional` (ours, built)."""
    twin = keras.layers.Bidirectional(
        keras.layers.LSTM(UNITS, **{k: v for k, v in options.items() if k in KERAS_OPTIONS}),
        merge_mode=merge_mode,
    )
    twin.build((batch, LENGTH, FEATURES))
    for mine, theirs in [
        (bidirectional.forward_layer, twin.forward_layer),
        (bidirectional.backward_layer, twin.backward_layer),
    ]:
        theirs.cell.set_weights(mine.cell.get_weights())
    return twin


def right_padded(tokens=False, seed=0):
    """A batch of 3 sequences of 8, 5 and 3 steps, right-padded with zeros."""
    lengths = np.array([LENGTH, 5, 3])
    mask = np.arange(LENGTH)[None, :] < lengths[:, None]
    rng = np.random.default_rng(seed)
    if tokens:
        x = rng.integers(1, VOCAB, (3, LENGTH)).astype("int32")
    else:
        x = rng.normal(size=(3, LENGTH, FEATURES)).astype("float32")
    x[~mask] = 0
    return x


def assert_same_outputs(actual, expected):
    actual, expected = keras.tree.flatten(actual), keras.tree.flatten(expected)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(numpy(a), numpy(e), atol=1e-5, rtol=1e-5)


OPTIONS = [
    pytest.param({}, id="last"),
    pytest.param({"return_sequences": True}, id="sequences"),
    pytest.param({"return_state": True}, id="state"),
    pytest.param({"return_sequences": True, "return_state": True}, id="sequences_state"),
]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("merge_mode", MERGE_MODES)
def test_outputs_equal_keras_bidirectional_lstm(merge_mode, options):
    x = float_inputs(batch=2, length=LENGTH, features=FEATURES)
    layer = keras.layers.Bidirectional(ours(**options), merge_mode=merge_mode)
    layer.build(x.shape)
    expected = keras_twin(layer, merge_mode, **options)(x)
    assert_same_outputs(layer(x), expected)
    # In training, truncation changes gradients, never values.
    assert_same_outputs(layer(x, training=True), expected)
    assert len(layer.losses) == 2  # One auxiliary loss per direction.


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("inputs", ["masking", "mask_zero"])
def test_right_padded_outputs_equal_keras_bidirectional_lstm(inputs, return_sequences, training):
    # Bidirectional sets zero_output_for_mask=return_sequences on its copies.
    x = right_padded(tokens=inputs == "mask_zero")
    if inputs == "masking":
        first = keras.layers.Masking(0.0)
        keras_first = keras.layers.Masking(0.0)
        options = {}
        shape = (LENGTH, FEATURES)
    else:
        first = keras_first = None
        options = {"vocab_size": VOCAB, "embedding_dim": FEATURES, "mask_zero": True}
        shape = (LENGTH,)
    layer = keras.layers.Bidirectional(ours(return_sequences=return_sequences, **options))
    inputs_ = keras.Input(shape, dtype=x.dtype)
    model = keras.Model(inputs_, layer(first(inputs_) if first else inputs_))
    twin = keras_twin(layer, "concat", return_sequences=return_sequences)
    keras_inputs = keras.Input(shape, dtype=x.dtype)
    if keras_first is None:
        # The backward copy embeds with its own embedding: made the forward
        # one's, for Keras's single Embedding before both directions.
        embeddings = layer.forward_layer.embedding.get_weights()
        layer.backward_layer.embedding.set_weights(embeddings)
        keras_first = keras.layers.Embedding(VOCAB, FEATURES, mask_zero=True)
        keras_first.build((None, LENGTH))
        keras_first.set_weights(embeddings)
    keras_model = keras.Model(keras_inputs, twin(keras_first(keras_inputs)))
    expected = numpy(keras_model(x))
    assert_same_outputs(model(x, training=training), expected)
    if return_sequences:  # Zeros past each sequence's end, both directions.
        output = numpy(model(x, training=training))
        np.testing.assert_array_equal(output[1, 5:], 0)
        np.testing.assert_array_equal(output[2, 3:], 0)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_supervised_gradient_reaches_only_the_bptt_steps_read_last(direction, return_sequences):
    # The forward copy reads the sequence from its first step: its last
    # `bptt` steps read are the sequence's last; the backward copy's are the
    # sequence's first. aux_loss=None isolates the supervised path.
    layer = keras.layers.Bidirectional(
        ours(aux_loss=None, return_sequences=return_sequences), merge_mode=None
    )
    which = 0 if direction == "forward" else 1

    def of(outputs, losses):
        return ops.sum(outputs[which])

    grad = gradient_per_step(layer, float_inputs(length=LENGTH, features=FEATURES), of)
    reached = np.zeros_like(grad, dtype=bool)
    if direction == "forward":
        reached[:, LENGTH - BPTT :] = True
    else:
        reached[:, :BPTT] = True
    np.testing.assert_array_equal(grad > 0, reached)


TOKENS = 12  # Steps of the copy task's sequences below.


def token_classifier(**options):
    defaults = dict(units=8, vocab_size=VOCAB, embedding_dim=8, aux_length=4, aux_hidden=16)
    model = keras.Sequential(
        [
            keras.Input((TOKENS,), dtype="int32"),
            keras.layers.Bidirectional(ours(**{**defaults, **options})),
            keras.layers.Dense(2),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(5e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def test_fit_lowers_both_directions_aux_losses():
    # A repeating motif: reconstructable from the state in either direction.
    x = repeating_tokens(32, TOKENS, vocab=VOCAB)
    y = x[:, 0] % 2
    model = token_classifier(num_anchors=4)
    history = model.fit(x, y, epochs=8, batch_size=4, verbose=0).history
    for name in ("forward_aux_loss", "backward_aux_loss"):
        assert history[name][-1] < 0.8 * history[name][0], (name, history[name])


def test_metric_names_do_not_depend_on_layers_built_before():
    for _ in range(3):  # Numbered by Keras across the session.
        keras.layers.Bidirectional(ours())
        ours()
    # An unnamed layer and one named "enc", in one model.
    model = keras.Sequential(
        [
            keras.Input((TOKENS,), dtype="int32"),
            keras.layers.Bidirectional(
                ours(vocab_size=VOCAB, embedding_dim=4, return_sequences=True)
            ),
            keras.layers.Bidirectional(ours(name="enc")),
            keras.layers.Dense(2),
        ]
    )
    # One step: eager where eager calls are fast (TensorFlow's graph of two
    # stacked Bidirectional layers takes longer to build than the step).
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=BACKEND != "jax",
    )
    x, y = copy_task(4, TOKENS, VOCAB)
    logs = model.fit(x, y, epochs=1, batch_size=4, verbose=0).history
    expected = {"forward_aux_loss", "backward_aux_loss"}
    expected |= {"forward_enc_aux_loss", "backward_enc_aux_loss"}
    assert {key for key in logs if "aux_loss" in key} == expected, sorted(logs)


@pytest.mark.parametrize("seed", [7, None])
def test_backward_copy_draws_other_anchors(seed):
    layer = keras.layers.Bidirectional(ours(seed=seed))
    forward, backward = layer.forward_layer, layer.backward_layer
    if seed is not None:
        # The backward copy draws from seed + 1_000_003, the forward one from seed.
        for copy, expected in [(forward, seed), (backward, seed + 1_000_003)]:
            np.testing.assert_array_equal(
                numpy(copy.seed_generator.state), numpy(keras.random.SeedGenerator(expected).state)
            )
    draws = [numpy(keras.random.uniform((16,), seed=c.seed_generator)) for c in (forward, backward)]
    assert not np.array_equal(*draws)


def bidirectional_model():
    model = token_classifier(seed=3)
    x, _ = copy_task(4, TOKENS, VOCAB)
    return model, x


def test_keras_file_round_trip_predicts_the_same(tmp_path):
    model, x = bidirectional_model()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)  # Not trained: no optimizer state.
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), atol=1e-6)
    for saved, restored in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(numpy(saved), numpy(restored))
    bidirectional = loaded.layers[0]
    assert bidirectional.backward_layer.go_backwards
    assert not bidirectional.forward_layer.go_backwards


@pytest.mark.skipif(BACKEND != "tensorflow", reason="SavedModel export is TensorFlow's")
@needs_keras("3.6", "passes verbose= to Model.export, which Keras 3.6 added")
def test_saved_model_export_serves_the_same_outputs(tmp_path):
    import tensorflow as tf

    model, x = bidirectional_model()
    model.export(str(tmp_path / "exported"), verbose=False)
    exported = tf.saved_model.load(str(tmp_path / "exported"))
    np.testing.assert_allclose(exported.serve(x), numpy(model(x)), atol=1e-6)


def test_stateful_carries_state_and_equals_keras():
    batch = 2
    layer = keras.layers.Bidirectional(ours(stateful=True))
    layer.build((batch, LENGTH, FEATURES))
    twin = keras_twin(layer, "concat", batch=batch, stateful=True)
    first, second = (float_inputs(batch, LENGTH, FEATURES, seed=s) for s in (0, 1))
    outputs = []
    for training in (False, True, False):
        outputs.append([numpy(layer(x, training=training)) for x in (first, second)])
        expected = [numpy(twin(x)) for x in (first, second)]
        assert_same_outputs(outputs[-1], expected)
        layer.reset_state()
        twin.reset_state()
    # Each round started from reset states: the same outputs.
    assert_same_outputs(outputs[1], outputs[0])
    assert_same_outputs(outputs[2], outputs[0])
    # The second batch started from the first's final states, not from zeros.
    assert not np.allclose(numpy(layer(second)), outputs[0][1], atol=1e-3)
