"""The flags of examples/train.py, generated from the fields of `Config`:
the same flags as when they were written out one by one, each with its
field's help text, default and checks, which `Config` applies too."""

import dataclasses

import pytest
from absl import flags

from examples import train
from examples.config import Config, define_config_flags

# train.py's flags before they were generated: name: (type, default, lower
# bound, choices).
WRITTEN_OUT_FLAGS = {
    "aux_dropout": ("float", 0.5, None, None),
    "aux_length": ("int", 600, None, None),
    "aux_weight": ("float", 1.0, None, None),
    "batch_size": ("int", 128, 1, None),
    "bptt": ("int", 300, None, None),
    "clipnorm": ("float", None, None, None),
    "data_dir": ("string", None, None, None),
    "dataset": (
        "string enum",
        None,
        None,
        ["mnist", "pmnist", "mnist5k", "pmnist5k", "cifar10", "stanford_dogs", "text", "generated"],
    ),
    "download": ("bool", False, None, None),
    "embedding_dim": ("int", 128, None, None),
    "epochs": ("int", 100, 0, None),
    "eval_steps": ("int", None, 1, None),
    "full_bp": ("bool", False, None, None),
    "generated_test_size": ("int", 500, 1, None),
    "generated_train_size": ("int", 3000, 1, None),
    "image_size": ("int", 64, 1, None),
    "learning_rate": ("float", 0.001, None, None),
    "max_length": ("int", 1000, 1, None),
    "mnist_size": ("int", 28, 1, None),
    "model": ("string enum", "r-lstm", None, ["lstm", "r-lstm", "p-lstm"]),
    "num_anchors": ("int", 1, None, None),
    "output_dir": ("string", None, None, None),
    "permutation_seed": ("int", 0, None, None),
    "pretrain_epochs": ("int", 0, 0, None),
    "scheduled_sampling": ("float", 0.0, None, None),
    "seed": ("int", 0, None, None),
    "sequence_length": ("int", None, None, None),
    "text_dataset": ("string enum", "ag_news_subset", None, ["ag_news_subset", "imdb_reviews"]),
    "train_steps": ("int", None, 1, None),
    "units": ("int", 128, None, None),
    "verbose": ("int", 1, None, None),
}
# Flags added since, or choices added to a written-out flag.
NEW_FLAGS = {
    "evaluate_on": ("string enum", "test", None, ["test", "validation"]),
    "model": ("string enum", "r-lstm", None, ["lstm", "r-lstm", "p-lstm", "lru-rnn", "r-lru-rnn"]),
}


def train_flags():
    flag_values = flags.FlagValues()
    train.define_flags(flag_values)
    return flag_values


def describe(flag):
    parser = flag.parser
    return (
        flag.flag_type(),
        flag.default,
        getattr(parser, "lower_bound", None),
        getattr(parser, "enum_values", None),
    )


def parse(*arguments):
    flag_values = train_flags()
    flag_values(["train.py", "--dataset=mnist", *arguments])
    return train.config_from_flags(flag_values)


def test_the_generated_flags_are_the_written_out_ones_with_the_fields_help_and_defaults():
    flag_values = train_flags()
    described = {name: describe(flag) for name, flag in flag_values._flags().items()}
    assert described == {**WRITTEN_OUT_FLAGS, **NEW_FLAGS}
    for field in dataclasses.fields(Config):
        flag = flag_values[field.name]
        assert flag.help.endswith(field.metadata["help"]), field.name
        assert len(field.metadata["help"]) > 10, field.name
        if field.default is not dataclasses.MISSING:
            assert flag.default == field.default, field.name
    assert "--bptt" in flag_values["full_bp"].help
    # Their defaults make the default `Config`; `--dataset` is required.
    assert parse() == Config(dataset="mnist")
    assert parse("--evaluate_on=validation") == Config(dataset="mnist", evaluate_on="validation")
    with pytest.raises(flags.IllegalFlagValueError, match="dataset"):
        train_flags()(["train.py"])


BAD_VALUES = [
    (name, bound - 1)
    for name, (_, _, bound, _) in {**WRITTEN_OUT_FLAGS, **NEW_FLAGS}.items()
    if bound is not None
] + [("model", "q-lstm"), ("text_dataset", "dbpedia"), ("evaluate_on", "train")]


def test_bounds_and_choices_are_enforced_by_the_flag_and_by_config():
    assert len(BAD_VALUES) == 13
    for name, bad_value in BAD_VALUES:
        with pytest.raises(flags.IllegalFlagValueError, match=name):
            parse(f"--{name}={bad_value}")
        with pytest.raises(ValueError, match=f"invalid value for `{name}`, expected"):
            Config(**{"dataset": "mnist", name: bad_value})
    with pytest.raises(flags.IllegalFlagValueError, match="must divide 28: 28, 14, 7, 4, 2 or 1"):
        parse("--mnist_size=3")
    with pytest.raises(ValueError, match=r"a divisor of 28 \(28, 14, 7, 4, 2 or 1\), got 3"):
        Config(dataset="mnist", mnist_size=3)


def test_skipped_fields_and_flags_defaulting_to_none():
    flag_values = flags.FlagValues()
    names = define_config_flags(
        flag_values, skip=("dataset", "seed"), describe_default=lambda name: f"[{name}]"
    )
    assert "dataset" not in names and "seed" not in names and "units" in names
    assert flag_values["units"].default is None
    assert flag_values["units"].help.endswith("the RNN's units). [units]")
    flag_values(["demo.py", "--units=3"])  # Nothing required.
    assert flag_values.units == 3 and flag_values.epochs is None
    with pytest.raises(flags.IllegalFlagValueError, match="epochs"):
        flag_values(["demo.py", "--epochs=-1"])
