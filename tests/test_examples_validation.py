"""`evaluate_on="validation"` in examples/input_pipeline.py: a fixed held-out
part of the training data, disjoint from what is trained on and from the
test set, which is never read; the test split itself unchanged."""

import hashlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from examples import generated_task, input_pipeline
from examples.config import Config

# SHA-256 of the int64 indices of mnist5k's (train, test) split as
# `mnist5k_split` drew them before the validation split existed.
SPLIT_SHA256 = (
    "a6a0431fb13af53fb2567132fa6304f84c25a69df6d149c54513253c87ae1a37",
    "93efda0f4bd5850da62233781859a76a2d55867dc353eebb822c9c3be9bb4085",
)


def sha256(indices):
    return hashlib.sha256(np.asarray(indices).astype("<i8").tobytes()).hexdigest()


@pytest.fixture(scope="module")
def mnist5k():
    return input_pipeline.read_mnist5k()


def test_mnist5k_validation_split_is_stratified_disjoint_and_fixed(mnist5k):
    _, labels = mnist5k
    train, test = input_pipeline.mnist5k_split(labels)
    # The test split is the one drawn before the validation split existed.
    assert (sha256(train), sha256(test)) == SPLIT_SHA256
    assert test[:4].tolist() == [378, 507, 2123, 1649]

    kept, validation = input_pipeline.mnist5k_validation_split(labels)
    assert len(kept) == 3500 and len(validation) == 500
    np.testing.assert_array_equal(np.bincount(labels[validation]), [50] * 10)
    np.testing.assert_array_equal(np.bincount(labels[kept]), [350] * 10)
    # Out of the training digits, each once; no test digit.
    assert len(np.intersect1d(kept, validation)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([kept, validation])), np.sort(train))
    assert len(np.intersect1d(validation, test)) == 0 and len(np.intersect1d(kept, test)) == 0
    assert len(set(labels[validation[:50]])) > 5  # The classes mixed.
    again = input_pipeline.mnist5k_validation_split(labels)
    np.testing.assert_array_equal(kept, again[0])
    np.testing.assert_array_equal(validation, again[1])


def arrays(dataset):
    tokens, labels = next(dataset.batch(10_000).as_numpy_iterator())
    return tokens, labels


def test_the_mnist5k_loaders_train_and_validate_on_the_split_whatever_the_seed(mnist5k):
    pixels, labels = mnist5k
    kept, validation = input_pipeline.mnist5k_validation_split(labels)
    for dataset, seed in (("mnist5k", 0), ("mnist5k", 7), ("pmnist5k", 0)):
        order = input_pipeline.pixel_permutation(0) if dataset == "pmnist5k" else slice(None)
        data = input_pipeline.load_data(
            Config(dataset=dataset, evaluate_on="validation", seed=seed)
        )
        assert data.test is None and data.evaluation is data.validation
        for split, indices in ((data.train, kept), (data.validation, validation)):
            tokens, split_labels = arrays(split)
            np.testing.assert_array_equal(tokens, pixels[indices][:, order])
            np.testing.assert_array_equal(split_labels, labels[indices])
    assert (data.sequence_length, data.vocab_size, data.num_classes) == (784, 256, 10)

    # By default they evaluate on the test set.
    _, test = input_pipeline.mnist5k_split(labels)
    data = input_pipeline.load_data(Config(dataset="mnist5k", mnist_size=14))
    assert data.validation is None and data.evaluation is data.test
    tokens, test_labels = arrays(data.test)
    assert tokens.shape == (1000, 196)
    np.testing.assert_array_equal(test_labels, labels[test])


def test_the_generated_validation_set_has_a_seed_of_its_own():
    def load(evaluate_on):
        config = Config(
            dataset="generated",
            evaluate_on=evaluate_on,
            generated_train_size=6,
            generated_test_size=5,
            sequence_length=50,
            seed=3,
        )
        return input_pipeline.load_data(config)

    tested, validated = load("test"), load("validation")
    assert tested.validation is None and validated.test is None
    np.testing.assert_array_equal(arrays(tested.train)[0], arrays(validated.train)[0])
    tokens, labels = arrays(validated.validation)
    expected = generated_task.generate(5, length=50, seed=input_pipeline.GENERATED_VALIDATION_SEED)
    np.testing.assert_array_equal(tokens, expected[0])
    np.testing.assert_array_equal(labels, expected[1])
    assert not np.array_equal(tokens, arrays(tested.test)[0])
    assert input_pipeline.GENERATED_VALIDATION_SEED not in (
        input_pipeline.GENERATED_TRAIN_SEED,
        input_pipeline.GENERATED_TEST_SEED,
    )


def test_tfds_datasets_validate_on_the_last_tenth_of_train(tmp_path, monkeypatch):
    requested = []
    # The spy goes inside the mock, and is removed before the mock is.
    with tfds.testing.mock_data(num_examples=2), monkeypatch.context() as patch:
        mocked = tfds.core.DatasetBuilder.as_dataset

        def as_dataset(self, split, **kwargs):
            requested.append(split)
            return mocked(self, split=split, **kwargs)

        patch.setattr(tfds.core.DatasetBuilder, "as_dataset", as_dataset)
        data = {
            evaluate_on: input_pipeline.load_data(
                Config(dataset="cifar10", data_dir=str(tmp_path), evaluate_on=evaluate_on)
            )
            for evaluate_on in ("test", "validation")
        }
        shapes = [next(iter(data[name].evaluation))[0].shape for name in data]
    assert requested == ["train", "test", "train[:90%]", "train[90%:]"]
    assert data["test"].validation is None and data["validation"].test is None
    assert shapes == [(1024,), (1024,)]
