"""The layer inside Keras models: fit, evaluate, predict, and the
auxiliary loss reaching `fit`'s logs."""

import keras
import numpy as np
import pytest
from support import copy_task, needs_keras

from keras_auxloss import AuxLossLSTM

LENGTH = 48
VOCAB = 6
EXAMPLES = 96  # Of the copy task, whose ids count up and restart at random.


def small_layer(**kwargs):
    defaults = dict(
        units=16,
        vocab_size=VOCAB,
        embedding_dim=8,
        aux_length=12,
        bptt=8,
        num_anchors=2,
        aux_hidden=16,
        aux_dropout=0.0,
        seed=0,
    )
    return AuxLossLSTM(**{**defaults, **kwargs})


def compile_classifier(model, **kwargs):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        **kwargs,
    )
    return model


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict", None])
@pytest.mark.parametrize("vocab_size", [VOCAB, None])
@pytest.mark.parametrize("options", [{}, {"return_sequences": True, "return_state": True}])
def test_training_output_equals_inference_output(aux_loss, vocab_size, options):
    rng = np.random.default_rng(0)
    if vocab_size:
        x = rng.integers(0, VOCAB, size=(4, LENGTH))
    else:
        x = rng.normal(size=(4, LENGTH, 3)).astype("float32")
    layer = small_layer(aux_loss=aux_loss, vocab_size=vocab_size, **options)
    # Equal to float rounding: the supervised window embeds and projects its
    # tokens in one product where the pass reads a table of every token's
    # gates, and on some CPUs (AVX2) products of other shapes round
    # otherwise. A window run from the wrong state or steps differs by far more.
    for training, inference in zip(
        keras.tree.flatten(layer(x, training=True)), keras.tree.flatten(layer(x, training=False))
    ):
        np.testing.assert_allclose(training, inference, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict"])
def test_fit_lowers_loss_and_aux_loss_and_logs_aux_loss(aux_loss):
    x, y = copy_task(EXAMPLES, LENGTH, VOCAB)
    model = keras.Sequential()
    model.add(keras.Input((LENGTH,), dtype="int32"))
    model.add(small_layer(aux_loss=aux_loss))
    model.add(keras.layers.Dense(2))
    compile_classifier(model)
    history = model.fit(x, y, epochs=10, batch_size=8, verbose=0).history
    assert history["aux_loss"][-1] < 0.8 * history["aux_loss"][0]
    assert history["loss"][-1] < history["loss"][0]
    # The logged total is the supervised loss plus the auxiliary one.
    assert history["loss"][0] > history["aux_loss"][0]


def test_added_loss_is_aux_weight_times_logged_aux_loss():
    x, _ = copy_task(8, LENGTH, VOCAB)
    layer = small_layer(aux_weight=0.25)
    layer(x, training=True)
    (added,) = layer.losses
    np.testing.assert_allclose(added, 0.25 * layer.aux_loss_tracker.result(), rtol=1e-6)
    layer(x, training=False)
    assert layer.losses == []


@needs_keras(
    "3.6",
    "reads evaluate's list as [loss, accuracy, ...]; older Keras lists a layer's "
    "metrics (aux_loss) before the compiled ones",
)
def test_sequential_model_add_without_input_layer():
    # Keras hands such a model its data as floats; token ids still work.
    x, y = copy_task(EXAMPLES, LENGTH, VOCAB)
    model = keras.Sequential()
    model.add(small_layer())
    model.add(keras.layers.Dense(2))
    compile_classifier(model)
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0).history
    assert set(history) == {"loss", "accuracy", "aux_loss"}
    loss, accuracy = model.evaluate(x, y, verbose=0)[:2]
    assert np.isfinite(loss) and 0 <= accuracy <= 1
    assert model.predict(x, verbose=0).shape == (len(x), 2)


def test_functional_model_evaluate_and_predict():
    x, y = copy_task(EXAMPLES, LENGTH, VOCAB)
    inputs = keras.Input((LENGTH,), dtype="int32")
    outputs = keras.layers.Dense(2)(small_layer(aux_loss="predict")(inputs))
    model = compile_classifier(keras.Model(inputs, outputs))
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    results = model.evaluate(x, y, verbose=0, return_dict=True)
    # Evaluation measures the auxiliary loss on the data it is given, and
    # adds it to the loss as training does; predict runs the main LSTM only.
    supervised = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        y, model.predict(x, verbose=0)
    )
    assert results["aux_loss"] > 0
    np.testing.assert_allclose(results["loss"], supervised + results["aux_loss"], rtol=1e-4)


def test_subclassed_model():
    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.lstm = small_layer()
            self.classifier = keras.layers.Dense(2)

        def call(self, tokens, training=False):
            return self.classifier(self.lstm(tokens, training=training))

    x, y = copy_task(EXAMPLES, LENGTH, VOCAB)
    model = compile_classifier(Classifier())
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0).history
    assert "aux_loss" in history and history["aux_loss"][0] > 0
    assert model.predict(x, verbose=0).shape == (len(x), 2)


def test_aux_only_pretraining_then_joint_training():
    x, y = copy_task(EXAMPLES, LENGTH, VOCAB)
    model = keras.Sequential([keras.Input((LENGTH,), dtype="int32"), small_layer()])
    model.add(keras.layers.Dense(2))
    classifier_before = model.layers[-1].get_weights()
    # Phase 1: no loss in compile, so the auxiliary loss alone is trained.
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, epochs=4, batch_size=32, verbose=0).history
    np.testing.assert_allclose(history["loss"], history["aux_loss"], rtol=1e-5)
    assert history["aux_loss"][-1] < history["aux_loss"][0]
    for before, after in zip(classifier_before, model.layers[-1].get_weights()):
        np.testing.assert_array_equal(before, after)
    # Phase 2: joint training on the sum.
    compile_classifier(model)
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0).history
    assert history["loss"][0] > history["aux_loss"][0] > 0


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_with_and_without_xla(jit_compile):
    x, y = copy_task(64, LENGTH, VOCAB)
    model = keras.Sequential([keras.Input((LENGTH,), dtype="int32"), small_layer()])
    model.add(keras.layers.Dense(2))
    compile_classifier(model, jit_compile=jit_compile)
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0).history
    assert np.isfinite(history["loss"][0]) and history["aux_loss"][0] > 0


def test_scheduled_sampling_trains():
    x, y = copy_task(EXAMPLES, LENGTH, VOCAB)
    model = keras.Sequential([keras.Input((LENGTH,), dtype="int32")])
    model.add(small_layer(scheduled_sampling=0.5, aux_dropout=0.5))
    model.add(keras.layers.Dense(2))
    compile_classifier(model)
    history = model.fit(x, y, epochs=4, batch_size=32, verbose=0).history
    assert history["aux_loss"][-1] < history["aux_loss"][0]


@pytest.mark.any_backend
@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's host-side mean only")
def test_the_jax_loss_tracker_runs_no_jax_operation_in_its_callback():
    """On JAX the auxiliary loss reaches the logs through an `io_callback`;
    a JAX operation inside it can wait forever on the CPU threads running
    the program that called back (a fit that hangs). Any JAX operation on a
    NumPy value moves it to the device, which the guard refuses."""
    import jax

    from keras_auxloss.loss_tracker import loss_tracker

    tracker = loss_tracker("aux_loss")
    values, weight = jax.numpy.array([1.0, 3.0]), jax.numpy.array(2.0)
    with jax.transfer_guard("disallow"):
        tracker._add(values, weight)
    np.testing.assert_allclose(tracker._mean(), 2.0)
