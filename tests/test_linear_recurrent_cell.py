"""`LinearRecurrentUnitCell`: its values against the LRU's equations
recomputed in NumPy from its own weights, as `keras.layers.RNN`'s cell
(masks) and as `AuxLossRNN`'s (truncation, the reconstruction and
prediction losses), its initialisation, configuration, `.keras` files,
mixed precision and argument checks, on every backend."""

import math

import keras
import numpy as np
import pytest
from support import float_inputs, gradient_per_step, numpy, output_sum, repeating_tokens

from keras_auxloss import AuxLossRNN, LinearRecurrentUnitCell

pytestmark = pytest.mark.any_backend

UNITS, STATE, FEATURES, LENGTH = 6, 5, 3, 12
LENGTH_TOKENS = 24


def gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / np.sqrt(2.0)))


def numpy_lru(cell, inputs):
    """The LRU's outputs and final complex state over `inputs`
    `(batch, time, features)`, in complex NumPy arithmetic from the cell's
    weights."""
    w = {v.name: numpy(v.value).astype("float64") for v in cell.weights}
    lam = np.exp(-np.exp(w["nu_log"]) + 1j * np.exp(w["theta_log"]))
    b = (w["B_re"] + 1j * w["B_im"]) * np.exp(w["gamma_log"])
    c = w["C_re"] + 1j * w["C_im"]
    x = np.zeros((inputs.shape[0], STATE), complex)
    outputs = []
    for t in range(inputs.shape[1]):
        u = inputs[:, t].astype("float64")
        x = lam * x + u @ b
        z = gelu((x @ c).real + u @ w["D"])
        value = z @ w["value_kernel"] + w["value_bias"]
        gate = 1.0 / (1.0 + np.exp(-(z @ w["gate_kernel"] + w["gate_bias"])))
        outputs.append(value * gate)
    return np.stack(outputs, axis=1), x


def make_rnn(cell_options=None, **kwargs):
    cell = LinearRecurrentUnitCell(UNITS, state_dim=STATE, seed=0, **(cell_options or {}))
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True, **kwargs)
    layer.build((None, None, FEATURES))
    return cell, layer


@pytest.mark.parametrize(
    "options", [{}, dict(eigenvalue_init="fourier", max_timescale=20)], ids=["ring", "fourier"]
)
def test_values_equal_the_equations_in_numpy(options):
    cell, layer = make_rnn(options)
    x = float_inputs(batch=2, length=LENGTH, features=FEATURES)
    sequences, real, imaginary = layer(x)
    expected, state = numpy_lru(cell, x)
    assert cell.state_size == [STATE, STATE] and cell.output_size == UNITS
    np.testing.assert_allclose(numpy(sequences), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(numpy(real), state.real, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(numpy(imaginary), state.imag, rtol=1e-4, atol=1e-5)


def test_initialisation_covers_the_ring_and_normalises_the_input():
    cell = LinearRecurrentUnitCell(8, state_dim=2000, r_min=0.5, max_timescale=100, seed=1)
    cell.build((None, 4))
    modulus = np.exp(-np.exp(numpy(cell.nu_log.value)))
    r_max = math.exp(-1 / 100)
    assert modulus.min() >= 0.5 - 1e-6 and modulus.max() <= r_max + 1e-6
    # |lambda|^2 is uniform on [r_min^2, r_max^2]: its mean is their midpoint.
    np.testing.assert_allclose(np.mean(modulus**2), (0.25 + r_max**2) / 2, atol=0.02)
    phase = np.exp(numpy(cell.theta_log.value))
    assert phase.min() > 0 and phase.max() <= 2 * math.pi + 1e-5
    gamma = np.exp(numpy(cell.gamma_log.value))
    np.testing.assert_allclose(gamma, np.sqrt(1 - modulus**2), rtol=1e-4)


def test_fourier_initialisation_spaces_the_phases_at_one_modulus():
    cell = LinearRecurrentUnitCell(8, state_dim=6, max_timescale=50, eigenvalue_init="fourier")
    cell.build((None, 4))
    modulus = np.exp(-np.exp(numpy(cell.nu_log.value)))
    np.testing.assert_allclose(modulus, np.full(6, math.exp(-1 / 50)), rtol=1e-6)
    phase = np.exp(numpy(cell.theta_log.value))
    np.testing.assert_allclose(phase, math.pi * (np.arange(6) + 0.5) / 6, rtol=1e-6)
    gamma = np.exp(numpy(cell.gamma_log.value))
    np.testing.assert_allclose(gamma, np.sqrt(1 - modulus**2), rtol=1e-4)


def test_fixed_eigenvalues_stay_as_initialised_in_fit_and_in_the_decoder():
    cell = LinearRecurrentUnitCell(16, seed=0, eigenvalue_init="fourier", train_eigenvalues=False)
    model = token_model("reconstruct", cell=cell)
    layer = model.layers[0]
    decoder = layer.decoder_cells[0]
    assert not decoder.train_eigenvalues
    fixed = [w for c in (cell, decoder) for w in (c.nu_log, c.theta_log, c.gamma_log)]
    assert not any(w.trainable for w in fixed)
    before = [numpy(w.value).copy() for w in fixed + [cell.B_re]]
    x = repeating_tokens(batch=16, length=LENGTH_TOKENS)
    model.fit(x, x[:, 0] % 2, epochs=1, batch_size=8, verbose=0)
    after = [numpy(w.value) for w in fixed + [cell.B_re]]
    for old, new in zip(before[:-1], after[:-1]):
        np.testing.assert_array_equal(old, new)
    assert np.abs(after[-1] - before[-1]).max() > 0  # The input still trains.


def test_read_by_a_stacked_tanh_rnn_truncates_and_saves(tmp_path):
    # The comparison's r-lru-rnn: the LRU with a SimpleRNNCell stacked on it.
    lru = LinearRecurrentUnitCell(8, state_dim=4, max_timescale=40, eigenvalue_init="fourier")
    stack = keras.layers.StackedRNNCells([lru, keras.layers.SimpleRNNCell(8, seed=0)])
    layer = AuxLossRNN(stack, aux_loss=None, bptt=5)
    grad = gradient_per_step(layer, float_inputs(length=LENGTH), output_sum)
    assert np.all(grad[:, : LENGTH - 5] == 0) and np.all(grad[:, LENGTH - 5 :] > 0)
    model = token_model("reconstruct", compile=False, cell=keras.layers.StackedRNNCells(
        [LinearRecurrentUnitCell(16, seed=0, eigenvalue_init="fourier", train_eigenvalues=False),
         keras.layers.SimpleRNNCell(16, seed=1)]
    ))  # fmt: skip
    decoder = model.layers[0].decoder_cells[0]
    assert type(decoder) is keras.layers.StackedRNNCells and not decoder.cells[0].train_eigenvalues
    x = repeating_tokens(batch=8, length=LENGTH_TOKENS)
    model(x, training=True)
    (loss,) = model.losses
    assert np.isfinite(numpy(loss)) and numpy(loss) > 0
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    first = loaded.layers[0].cell.cells[0]
    assert first.eigenvalue_init == "fourier" and not first.nu_log.trainable
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_as_keras_rnn_masked_steps_carry_the_state():
    # Keras's JAX loop takes a cell's first state for its previous output
    # at a masked step; this cell's is not, so there masked steps output zeros.
    zeros = keras.backend.backend() == "jax"
    cell, layer = make_rnn(zero_output_for_mask=zeros)
    x = float_inputs(batch=2, length=LENGTH, features=FEATURES)
    mask = np.ones((2, LENGTH), bool)
    mask[0, 4:7] = False
    mask[1, 9:] = False
    sequences, real, imaginary = (numpy(t) for t in layer(x, mask=mask))
    # A masked step repeats the previous output (or outputs zeros); the state skips it.
    previous = np.zeros_like(sequences[0, 3:4]) if zeros else sequences[0, 3:4]
    np.testing.assert_array_equal(sequences[0, 4:7], np.repeat(previous, 3, axis=0))
    kept, state = numpy_lru(cell, np.concatenate([x[:1, :4], x[:1, 7:]], axis=1))
    np.testing.assert_allclose(sequences[0, 7:], kept[0, 4:], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(real[0], state.real[0], rtol=1e-4, atol=1e-5)
    _, state = numpy_lru(cell, x[1:, :9])
    np.testing.assert_allclose(imaginary[1], state.imag[0], rtol=1e-4, atol=1e-5)


def test_in_aux_loss_rnn_the_supervised_gradient_is_truncated():
    layer = AuxLossRNN(LinearRecurrentUnitCell(8, seed=0), aux_loss=None, bptt=5)
    grad = gradient_per_step(layer, float_inputs(length=LENGTH), output_sum)
    assert np.all(grad[:, : LENGTH - 5] == 0)
    assert np.all(grad[:, LENGTH - 5 :] > 0)


def test_reconstruction_decoder_is_a_copy_of_the_cell():
    cell = LinearRecurrentUnitCell(8, state_dim=4, max_timescale=50, seed=0)
    layer = AuxLossRNN(cell, vocab_size=8, aux_length=6, bptt=4)
    bottom = layer.decoder_cells[0]
    assert type(bottom) is LinearRecurrentUnitCell and bottom.state_size == [4, 4]
    assert bottom.max_timescale == 50


def token_model(aux_loss, compile=True, cell=None):
    layer = AuxLossRNN(
        cell or LinearRecurrentUnitCell(16, seed=0),
        aux_loss=aux_loss, vocab_size=8, embedding_dim=8, aux_length=8, bptt=6,
        aux_hidden=16, aux_dropout=0.0, seed=0,
    )  # fmt: skip
    model = keras.Sequential(
        [keras.Input((LENGTH_TOKENS,), dtype="int32"), layer, keras.layers.Dense(2)]
    )
    if not compile:
        return model
    model.compile(
        keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def test_fit_lowers_the_reconstruction_loss():
    x = repeating_tokens(batch=32, length=LENGTH_TOKENS)
    history = token_model("reconstruct").fit(x, x[:, 0] % 2, epochs=8, batch_size=8, verbose=0)
    losses = history.history["aux_loss"]
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict"])
@pytest.mark.parametrize("tokens", [True, False], ids=["tokens", "floats"])
def test_training_call_adds_a_finite_auxiliary_loss(aux_loss, tokens):
    cell = LinearRecurrentUnitCell(8, seed=0)
    options = dict(vocab_size=8) if tokens else {}
    layer = AuxLossRNN(cell, aux_loss=aux_loss, aux_length=6, bptt=4, seed=0, **options)
    x = repeating_tokens(batch=4, length=20) if tokens else float_inputs(4, 20, FEATURES)
    output = layer(x, training=True)
    assert tuple(output.shape) == (4, 8)
    (loss,) = layer.losses
    assert np.isfinite(numpy(loss)) and numpy(loss) > 0


def test_config_round_trip_and_keras_file(tmp_path):
    cell = LinearRecurrentUnitCell(7, state_dim=3, r_min=0.5, r_max=0.99, max_phase=1.0, seed=4)
    clone = LinearRecurrentUnitCell.from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
    fourier = LinearRecurrentUnitCell(
        7, max_timescale=30, eigenvalue_init="fourier", train_eigenvalues=False
    )
    config = fourier.get_config()
    assert (config["eigenvalue_init"], config["train_eigenvalues"]) == ("fourier", False)
    assert LinearRecurrentUnitCell.from_config(config).get_config() == config
    x = repeating_tokens(batch=8, length=LENGTH_TOKENS)
    model = token_model("reconstruct", compile=False)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded.layers[0].cell) is LinearRecurrentUnitCell
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    for saved, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(numpy(saved.value), numpy(restored.value))


@pytest.mark.parametrize("saved_trains, loaded_trains", [(True, False), (False, True)])
def test_weights_files_move_between_fixed_and_trained_eigenvalues(
    tmp_path, saved_trains, loaded_trains
):
    # Keras's own order puts trainable weights first; the cell saves in the
    # order it creates them, so that fixing the eigenvalues changes no file.
    def model(train_eigenvalues, seed):
        cell = LinearRecurrentUnitCell(
            8, state_dim=4, seed=seed, max_timescale=30, train_eigenvalues=train_eigenvalues
        )
        return keras.Sequential([keras.Input((LENGTH, FEATURES)), keras.layers.RNN(cell)])

    saved, loaded = model(saved_trains, seed=0), model(loaded_trains, seed=1)
    saved.save_weights(tmp_path / "cell.weights.h5")
    loaded.load_weights(tmp_path / "cell.weights.h5")
    cells = saved.layers[0].cell, loaded.layers[0].cell
    for name in ("nu_log", "gamma_log", "B_re", "gate_bias"):
        np.testing.assert_array_equal(*(numpy(getattr(c, name).value) for c in cells))
    x = float_inputs(batch=2, length=LENGTH, features=FEATURES)
    np.testing.assert_allclose(numpy(loaded(x)), numpy(saved(x)), rtol=1e-6, atol=1e-6)


def test_mixed_precision_outputs_the_compute_dtype():
    cell = LinearRecurrentUnitCell(8, dtype="mixed_bfloat16", seed=0)
    layer = AuxLossRNN(cell, vocab_size=8, aux_length=6, bptt=4, dtype="mixed_bfloat16")
    output = layer(repeating_tokens(batch=4, length=20), training=True)
    assert keras.backend.standardize_dtype(output.dtype) == "bfloat16"
    assert np.isfinite(numpy(layer.losses[0]))
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in cell.weights)
    policy = "mixed_bfloat16"
    rnn = keras.layers.RNN(
        LinearRecurrentUnitCell(8, dtype=policy), return_state=True, dtype=policy
    )
    outputs = rnn(float_inputs(2, 10, FEATURES))
    assert [keras.backend.standardize_dtype(t.dtype) for t in outputs] == ["bfloat16"] * 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(units=-3), "argument `units`, expected a positive integer, got -3"),
        (dict(units=4, state_dim=0), "argument `state_dim`, expected a positive integer"),
        (dict(units=4, r_min=1.0), "argument `r_min`, expected a number in [0, 1), got 1.0"),
        (dict(units=4, r_min=0.5, r_max=0.4), "argument `r_max`, expected a number in (r_min"),
        (dict(units=4, r_max=1.0), "argument `r_max`"),
        (dict(units=4, max_timescale=-1), "argument `max_timescale`, expected a positive"),
        (dict(units=4, r_min=0.9, max_timescale=2), "argument `max_timescale`, expected one"),
        (dict(units=4, r_max=0.99, max_timescale=10), "`r_max` and `max_timescale`"),
        (dict(units=4, max_phase=0), "argument `max_phase`, expected a number in (0, 2 * pi]"),
        (dict(units=4, seed="a"), "argument `seed`"),
        (
            dict(units=4, eigenvalue_init="legendre"),
            'argument `eigenvalue_init`, expected one of "ring" or "fourier", got \'legendre\'',
        ),
        (
            dict(units=4, eigenvalue_init="fourier", r_min=0.5),
            'argument `r_min`, expected None with eigenvalue_init="fourier"',
        ),
        (
            dict(units=4, eigenvalue_init="fourier", max_phase=1.0),
            'argument `max_phase`, expected None with eigenvalue_init="fourier"',
        ),
        (
            dict(units=4, eigenvalue_init="fourier", max_timescale=1e-3),
            "argument `max_timescale`, expected one above 0 steps",
        ),
        (dict(units=4, train_eigenvalues=1), "argument `train_eigenvalues`, expected a boolean"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError) as error:
        LinearRecurrentUnitCell(**kwargs)
    assert message in str(error.value)
