"""The fused kernels' plumbing (`keras_auxloss/kernels.py`, each backend's
`fused_run`): every run a layer hands a fused kernel, cut into segments and
started from the right states, gives the loop's values and gradients.

cuDNN needs a GPU: here `testing.reference_cudnn` puts a reference kernel
in its place (Keras's generic loop with the LSTM's and GRU's equations),
so that the layer takes `"cudnn"` and every run goes the way it goes on a
GPU: on TensorFlow and PyTorch each run, the capture pass included, is cut
into segments; on JAX the runs that need no cut (the decoder, unmasked
windows) go to the kernel and the others to the loop. Then: `use_cudnn`,
`kernels_used`, and `use_cudnn=True` refused on this CPU.
"""

import contextlib

import keras
import numpy as np
import pytest
from keras import ops
from support import BACKEND, auxiliary_loss, float_inputs, gradient_per_step, output_sum

from keras_auxloss import AuxLossGRU, AuxLossLSTM, AuxLossRNN, LinearRecurrentUnitCell, kernels
from keras_auxloss.testing import fix_window_starts, reference_cudnn

pytestmark = pytest.mark.any_backend

BATCH, LENGTH, VOCAB = 4, 48, 11
STARTS = [[3, 20], [12, 0], [25, 5], [38, 17]]
# The runs that JAX's static shapes cannot cut: the loop runs them there.
CUT_RUNS = {"inference", "capture pass", "whole sequence"}
# The main network's runs (for reconstruction, the decoder's bottom layer
# is a cell of its kind too).
MAIN_RUNS = CUT_RUNS | {"supervised window", "anchor windows"}


def cudnn_here():
    """Whether a GPU with cuDNN serves Keras's LSTM cell on this machine."""
    return kernels.cudnn_refusal(keras.layers.LSTMCell(2), "lstm") is None


@contextlib.contextmanager
def full_float32():
    """float32 products at full precision on the GPU. Both backends let
    cuDNN round float32 to TF32 by default (a 10-bit mantissa), and JAX its
    matrix products too: the fused run and the loop then differ by some
    1e-4, which says nothing of the plumbing. PyTorch's two switches turn
    TF32 off for cuDNN and its matrix products (all its GPU cases passed so
    on an H100); JAX's precision setting is known to cover its matrix
    products, not yet shown to cover its cuDNN LSTM."""
    if BACKEND == "torch":
        import torch

        before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
    elif BACKEND == "jax":
        import jax

        with jax.default_matmul_precision("highest"):
            yield
    else:
        yield


@pytest.fixture(params=["reference", "gpu"])
def cudnn(request):
    """A scope in which layers built take `"cudnn"`: the reference kernel
    in cuDNN's place, or (`gpu`, skipped without one) the real cuDNN, the
    whole test then in `full_float32`."""
    if request.param == "reference":
        yield reference_cudnn
        return
    if not cudnn_here():
        pytest.skip("needs a GPU with cuDNN")
    with full_float32():
        yield lambda record=None: contextlib.nullcontext()


@contextlib.contextmanager
def only_the_loop():
    """Layers built inside take the loop for every run that cuDNN does not
    (PyTorch's CPU kernel and the LRU's off too); use with `use_cudnn=False`."""
    before = kernels.kernel_choice()
    kernels.set_kernel("loop")
    try:
        yield
    finally:
        kernels.set_kernel(before)


def training_call(layer, x, **call_kwargs):
    """The outputs, the auxiliary loss and the gradient of a fixed random
    function of both with respect to every trainable weight, from one
    training call, with the backend's own autodiff; as NumPy arrays."""
    weights = layer.trainable_variables
    coefficients = None

    def target(outputs, losses):
        nonlocal coefficients
        if coefficients is None:
            rng = np.random.default_rng(0)
            coefficients = rng.normal(size=tuple(outputs.shape)).astype("float32")
        return ops.sum(outputs * ops.convert_to_tensor(coefficients)) + losses[0]

    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            outputs = layer(x, training=True, **call_kwargs)
            total = target(outputs, layer.losses)
        grads = tape.gradient(total, weights)
        loss = layer.losses[0]
    elif BACKEND == "jax":
        import jax

        non_trainable = [v.value for v in layer.non_trainable_variables]

        def run(trainable):
            outputs, _, losses = layer.stateless_call(
                trainable, non_trainable, x, training=True, return_losses=True, **call_kwargs
            )
            return target(outputs, losses), (outputs, losses[0])

        grads, (outputs, loss) = jax.grad(run, has_aux=True)([v.value for v in weights])
    else:
        import torch

        outputs = layer(x, training=True, **call_kwargs)
        loss = layer.losses[0]
        grads = torch.autograd.grad(
            target(outputs, layer.losses), [v.value for v in weights], allow_unused=True
        )
    grads = [np.zeros(w.shape) if g is None else as_numpy(g) for g, w in zip(grads, weights)]
    return [as_numpy(outputs), as_numpy(loss), *grads]


def as_numpy(x):
    return ops.convert_to_numpy(x.detach() if hasattr(x, "detach") else x)


def make_layer(kind, use_cudnn, **settings):
    settings = {"bptt": 10, "aux_length": 8, "num_anchors": 2, "seed": 0, **settings}
    if kind == "lstm":
        return AuxLossLSTM(6, use_cudnn=use_cudnn, **settings)
    if kind == "gru":
        return AuxLossGRU(6, use_cudnn=use_cudnn, **settings)
    if kind == "lru":
        cell = LinearRecurrentUnitCell(6, state_dim=5, r_min=0.5, seed=0)
        return AuxLossRNN(cell, use_cudnn=use_cudnn, **settings)
    return AuxLossRNN(keras.layers.LSTMCell(6), use_cudnn=use_cudnn, **settings)


def tokens():
    return np.random.default_rng(0).integers(1, VOCAB, size=(BATCH, LENGTH)).astype("int32")


def both_ways(cudnn, kind, settings, x, call_kwargs):
    """`training_call` of the same fresh layer in the `cudnn` scope, then on
    the loop; and the first one's `kernels_used`."""
    results = []
    for fused in (True, False):
        keras.utils.set_random_seed(0)
        scope = cudnn() if fused else only_the_loop()
        with scope:
            layer = make_layer(kind, "auto" if fused else False, **settings)
            layer(x[:, :20])  # Built.
            fix_window_starts(layer, STARTS)
            results.append(training_call(layer, x, **call_kwargs))
        if fused:
            used = layer.kernels_used
        else:
            assert set(layer.kernels_used.values()) == {"loop"}
    return results, used


RIGHT_PADDED = np.ones((BATCH, LENGTH), bool)
RIGHT_PADDED[0, 30:], RIGHT_PADDED[2, 40:] = False, False
ANY_MASK = RIGHT_PADDED.copy()
ANY_MASK[1, 5:9], ANY_MASK[3, 0] = False, False  # A gap; a masked first step.

CASES = {
    "reconstruct": ({}, {}),
    "predict": ({"aux_loss": "predict"}, {}),
    "right_padded": ({}, {"mask": RIGHT_PADDED}),
    "any_mask": ({}, {"mask": ANY_MASK}),
    "any_mask_zero_output": (
        {"zero_output_for_mask": True, "return_sequences": True},
        {"mask": ANY_MASK},
    ),
    "initial_state": ({}, {"initial_state": "random"}),
    "sequences": ({"return_sequences": True}, {}),
    "full_bp": ({"bptt": None}, {}),
    "full_bp_sequences_masked": ({"bptt": None, "return_sequences": True}, {"mask": ANY_MASK}),
    "float_inputs": ({"vocab_size": None}, {}),
    "input_dropout": ({"dropout": 0.3}, {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("kind", ["lstm", "gru", "lstm_cell", "lru"])
def test_a_training_call_gives_the_loops_values_and_gradients(cudnn, kind, case):
    """Outputs, auxiliary loss and every weight's gradient of one training
    call, with the anchors' windows fixed: the segments end where they
    must, each starts from the state the loop has there, and the gradient
    is cut where the loop cuts it, or the values part."""
    settings, call_kwargs = CASES[case]
    settings = {"vocab_size": VOCAB, **settings}
    if case == "input_dropout" and kind != "lstm":
        pytest.skip("input dropout keeps the fused kernel for Keras's LSTM cell only")
    if kind == "lru" and cudnn is not reference_cudnn:
        pytest.skip("the LRU's kernel needs no GPU: its reference cases are its cases")
    x = tokens()
    if settings["vocab_size"] is None:
        x = float_inputs(batch=BATCH, length=LENGTH, features=3)
    call_kwargs = dict(call_kwargs)
    if call_kwargs.get("initial_state") == "random":
        rng = np.random.default_rng(5)
        sizes = {"gru": [6], "lru": [5, 5]}.get(kind, [6, 6])
        call_kwargs["initial_state"] = [
            rng.normal(size=(BATCH, s)).astype("float32") for s in sizes
        ]
    results, used = both_ways(cudnn, kind, settings, x, call_kwargs)
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    # Every run went to the kernel, but where JAX cannot cut it.
    for name, kernel in used.items():
        cut = name in CUT_RUNS or ("mask" in call_kwargs and not name.startswith("decoder"))
        expected = "loop" if BACKEND == "jax" and cut else "cudnn"
        main_runs = MAIN_RUNS | ({"decoder layer 0"} if case != "predict" else set())
        if BACKEND == "jax" and kind == "gru" and name in main_runs:
            expected = "loop"  # JAX has no cuDNN GRU; the decoder's other layers are LSTMs.
        if kind == "lru" and name in main_runs:
            expected = "loop" if BACKEND == "jax" and cut else "lru"
        assert kernel == expected, (name, used)


@pytest.mark.skipif(BACKEND == "jax", reason="JAX's runs cut at run time take the loop")
def test_the_capture_pass_is_cut_after_each_step_where_a_state_is_captured():
    """Eager calls: the reference kernel records each segment's length."""
    record = []
    x = tokens()
    with reference_cudnn(record):
        layer = make_layer("lstm", "auto", vocab_size=VOCAB)
        layer(x[:, :20])
        fix_window_starts(layer, STARTS)
        del record[:]
        layer(x, training=True)
    # Captured after the steps before each window: the anchors' windows
    # start at 0, 3, 5, 12, 17, 20, 25, 38, the supervised window at 38
    # (48 - bptt 10); the pass stops where the last window starts.
    capture_ends = [3, 5, 12, 17, 20, 25, 38]
    segments = list(np.diff([0, *capture_ends]))
    # Then the supervised window, the anchors' windows (one batch of 8) and
    # the decoder's two layers (fed 7 of each window's 8 steps).
    assert record == [*segments, 10, 8, 7, 7]


@pytest.mark.skipif(BACKEND == "jax", reason="JAX's runs cut at run time take the loop")
def test_a_masked_run_is_cut_where_the_mask_changes():
    record = []
    x = tokens()
    with reference_cudnn(record):
        layer = make_layer("gru", "auto", vocab_size=VOCAB, aux_loss=None)
        layer(x[:, :20])
        del record[:]
        layer(x, mask=ANY_MASK)  # Inference: one pass over the whole sequence.
    # ANY_MASK changes at step 1 (example 3), 5 and 9 (1), 30 (0) and 40 (2).
    assert record == [1, 4, 4, 21, 10, 8]


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict"])
def test_the_gradients_are_cut_where_the_loops_are(cudnn, aux_loss):
    """The supervised gradient reaches only the last `bptt` steps, each
    auxiliary gradient only its own window, through the kernel's runs."""
    starts, length = [[3, 20], [25, 25]], 6
    with cudnn():
        layer = AuxLossLSTM(
            8, aux_loss=aux_loss, aux_length=length, bptt=5, num_anchors=2, aux_dropout=0.0, seed=0
        )
        fix_window_starts(layer, starts)
        supervised = gradient_per_step(layer, float_inputs(length=40), output_sum)
        auxiliary = gradient_per_step(layer, float_inputs(length=40), auxiliary_loss)
    assert layer.kernels_used["decoder layer 0"] == "cudnn"
    assert np.all(supervised[:, :35] == 0) and np.all(supervised[:, 35:] > 0)
    expected = np.zeros_like(auxiliary, dtype=bool)
    for example, example_starts in enumerate(starts):
        for start in example_starts:
            expected[example, start : start + length] = True
    np.testing.assert_array_equal(auxiliary > 0, expected)


def test_inference_gives_keras_own_layers_outputs(cudnn):
    """The fused path outside training: `predict`, masked, against Keras's
    own LSTM with the same weights."""
    x = tokens()
    with cudnn():
        layer = AuxLossLSTM(6, vocab_size=VOCAB, bptt=10, aux_length=8, return_sequences=True)
        ours = ops.convert_to_numpy(layer(x, mask=ANY_MASK))
    keras_lstm = keras.layers.LSTM(6, return_sequences=True)
    embedded = layer.embedding(x)
    keras_lstm.build(embedded.shape)
    keras_lstm.set_weights(layer.cell.get_weights())
    theirs = ops.convert_to_numpy(keras_lstm(embedded, mask=ANY_MASK))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    assert layer.kernels_used == {"inference": "loop" if BACKEND == "jax" else "cudnn"}


def test_use_cudnn_true_runs_every_run_on_cudnn_where_it_serves(cudnn):
    x = tokens()
    with cudnn():
        layer = make_layer("lstm", True, vocab_size=VOCAB)
        if BACKEND == "jax":
            with pytest.raises(ValueError, match="cuDNN cannot run the inference: JAX"):
                layer(x)
            return
        layer(x, training=True)
        layer(x)
    assert set(layer.kernels_used.values()) == {"cudnn"}


SHORT = dict(vocab_size=VOCAB, bptt=10, aux_length=8)


@pytest.mark.parametrize(
    "make, why",
    [
        (lambda: AuxLossLSTM(4, use_cudnn=True, **SHORT), "no GPU with cuDNN"),
        (
            lambda: AuxLossGRU(4, use_cudnn=True, **SHORT),
            "JAX has no cuDNN GRU" if BACKEND == "jax" else "no GPU with cuDNN",
        ),
        (
            lambda: AuxLossRNN(keras.layers.SimpleRNNCell(4), use_cudnn=True, **SHORT),
            "the cell is a SimpleRNNCell",
        ),
        (
            lambda: AuxLossLSTM(4, recurrent_dropout=0.2, use_cudnn=True, **SHORT),
            "no GPU with cuDNN",
        ),
    ],
)
def test_use_cudnn_true_is_refused_where_cudnn_cannot_serve(make, why):
    if cudnn_here() and why == "no GPU with cuDNN":
        pytest.skip("a GPU with cuDNN serves here")
    layer = make()
    with pytest.raises(ValueError, match=f"use_cudnn=True was specified, but cuDNN cannot.*{why}"):
        layer(tokens()[:, :20])


def test_use_cudnn_true_is_refused_for_what_cudnn_cannot_run():
    """With a GPU (the reference), still refused: a cell cuDNN has no kernel
    for, recurrent dropout in training, a decoder fed its own samples."""
    x = tokens()
    with reference_cudnn():
        layer = AuxLossLSTM(4, recurrent_dropout=0.2, use_cudnn=True, **SHORT)
        if BACKEND != "jax":  # (JAX's inference pass is cut: refused.)
            layer(x)  # Inference drops nothing: cuDNN.
        with pytest.raises(ValueError, match="cuDNN cannot run the .*dropout"):
            layer(x, training=True)
        layer = AuxLossLSTM(4, scheduled_sampling=0.5, use_cudnn=True, **SHORT)
        if BACKEND != "jax":
            with pytest.raises(ValueError, match="decoder layer 0: it is fed its own samples"):
                layer(x, training=True)
        keras_gru_on_jax = AuxLossGRU(4, use_cudnn=True, **SHORT)
        if BACKEND == "jax":
            with pytest.raises(ValueError, match="JAX has no cuDNN GRU"):
                keras_gru_on_jax(x)


@pytest.mark.parametrize("value", ["yes", 1, None, "True"])
def test_use_cudnn_is_checked(value):
    with pytest.raises(
        ValueError,
        match=f"argument `use_cudnn`, expected one of 'auto', True or False, got {value!r}",
    ):
        AuxLossLSTM(4, use_cudnn=value)


@pytest.mark.skipif(cudnn_here(), reason="a GPU with cuDNN serves here")
def test_kernels_used_on_this_cpu():
    """Without a GPU: the loop on TensorFlow and JAX, PyTorch's own kernel
    on its CPU (`set_kernel` chooses)."""
    x = tokens()
    layer = make_layer("lstm", "auto", vocab_size=VOCAB)
    assert layer.kernels_used == {}
    layer(x, training=True)
    expected = "onednn" if BACKEND == "torch" else "loop"
    assert set(layer.kernels_used.values()) == {expected}
    assert set(layer.kernels_used) == {
        "capture pass", "supervised window", "anchor windows", "decoder layer 0",
        "decoder layer 1",
    }  # fmt: skip
    with only_the_loop():
        layer = make_layer("gru", "auto", vocab_size=VOCAB)
        layer(x)
    assert layer.kernels_used == {"inference": "loop"}


def test_set_kernel_is_checked():
    with pytest.raises(ValueError, match="argument `name`, expected one of .*got 'mkl'"):
        kernels.set_kernel("mkl")


def test_use_cudnn_is_saved_and_kept_by_older_files(tmp_path):
    layer = AuxLossGRU(4, use_cudnn=False, **SHORT)
    model = keras.Sequential([keras.Input((20,), dtype="int32"), layer])
    path = str(tmp_path / "model.keras")
    model.save(path)
    assert keras.saving.load_model(path).layers[0].use_cudnn is False
    config = layer.get_config()
    del config["use_cudnn"]  # As 0.3.0 saved it.
    assert AuxLossGRU.from_config(config).use_cudnn == "auto"


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_the_lru_kernel_gives_the_loops_values_in_mixed_precision(policy):
    """Under a float16 or bfloat16 policy the cell keeps its state in the
    compute dtype; the kernel rounds it there at every step as the loop
    does, so training changes no value and the two agree."""
    keras.mixed_precision.set_global_policy(policy)  # Reset by conftest.py.
    x = tokens()
    outputs = {}
    for choice in ("fused", "loop"):
        with only_the_loop() if choice == "loop" else contextlib.nullcontext():
            keras.utils.set_random_seed(0)
            layer = make_layer("lru", "auto", vocab_size=VOCAB, return_sequences=True)
            layer(x[:, :20])
            fix_window_starts(layer, STARTS)
            training = as_numpy(layer(x, training=True)).astype("float32")
            inference = as_numpy(layer(x)).astype("float32")
        if BACKEND == "jax" and choice == "fused":
            # JAX's inference pass takes the loop, its supervised window the
            # kernel: the readout's products, made a step or a window at a
            # time, round differently in the compute dtype.
            np.testing.assert_allclose(training, inference, rtol=2e-2, atol=1e-4)
        else:
            np.testing.assert_array_equal(training, inference)
        outputs[choice] = inference
        fused_inference = choice == "fused" and BACKEND != "jax"  # JAX's pass is cut.
        assert layer.kernels_used["inference"] == ("lru" if fused_inference else "loop")
    np.testing.assert_allclose(
        outputs["fused"], outputs["loop"], atol=2e-2 if "b" in policy else 2e-3
    )


def test_a_cell_in_another_dtype_than_its_layer_takes_the_loop():
    """Keras's cell read in its layer's scope would hand the kernel weights
    in another dtype than its state: the loop runs it, as the loop runs a
    cell whose dtype is not its layer's (`use_cudnn=True` says so)."""
    x = tokens()
    with reference_cudnn():
        layer = AuxLossRNN(keras.layers.LSTMCell(6), dtype="mixed_float16", **SHORT)
        layer(x)
        assert layer.kernels_used == {"inference": "loop"}
        strict = AuxLossRNN(
            keras.layers.LSTMCell(6), dtype="mixed_float16", use_cudnn=True, **SHORT
        )
        with pytest.raises(ValueError, match="the cell computes in float32, its layer in float16"):
            strict(x)
