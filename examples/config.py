"""The settings of one run of the paper's experiments, and their flags.

`Config` has one field per setting; each field carries, in its metadata,
the help text of its flag and its bounds or choices. `define_config_flags`
turns the fields into absl flags (for `train.py` and `demo.py`), and
`Config` checks the same bounds and choices when it is built in code.
"""

import dataclasses
import types
import typing

from absl import flags

DATASETS = (
    "mnist",
    "pmnist",
    "mnist5k",
    "pmnist5k",
    "cifar10",
    "stanford_dogs",
    "text",
    "generated",
)
# Model name: the `aux_loss` of its layer, an `AuxLossLSTM`, or for the
# models of `LRU_READER_MODELS` an `AuxLossRNN` of the package's LRU read by
# a tanh RNN (`lru_reader.py`).
AUX_LOSSES = {
    "lstm": None,
    "r-lstm": "reconstruct",
    "p-lstm": "predict",
    "lru-rnn": None,
    "r-lru-rnn": "reconstruct",
}
LRU_READER_MODELS = ("lru-rnn", "r-lru-rnn")
TEXT_DATASETS = ("ag_news_subset", "imdb_reviews")
EVALUATION_SPLITS = ("test", "validation")
MNIST_SIZE = 28


def setting(default=dataclasses.MISSING, *, help, choices=None, lower_bound=None, divisor_of=None):
    """A `Config` field whose metadata describes its flag.

    `help` is the flag's help text; `choices` (an enum flag), `lower_bound`
    and `divisor_of` (the value must divide that number) are checked both
    by the flag and by `Config`. Without `default` the field, and its flag,
    is required.
    """
    metadata = dict(help=help, choices=choices, lower_bound=lower_bound, divisor_of=divisor_of)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class Config:
    """One run. `train.py`'s flags of the same names set it from the command line."""

    dataset: str = setting(help="The experiment's dataset.", choices=DATASETS)
    model: str = setting(
        "r-lstm",
        help="lstm (no auxiliary loss), r-lstm (reconstruction) or p-lstm (prediction); "
        "lru-rnn, r-lru-rnn: the package's LinearRecurrentUnitCell read by a tanh RNN, "
        "without and with reconstruction (examples/lru_reader.py).",
        choices=tuple(AUX_LOSSES),
    )
    # Data.
    data_dir: str | None = setting(None, help="tfds data directory (default: tfds's).")
    download: bool = setting(False, help="Let tfds download a missing dataset.")
    permutation_seed: int = setting(0, help="pmnist, pmnist5k: seed of the permutation.")
    mnist_size: int = setting(
        MNIST_SIZE,
        help="mnist, pmnist, mnist5k, pmnist5k: digits shrunk to this size squared by "
        "averaging blocks of pixels (a divisor of 28; 14: 2x2 blocks, 196 steps).",
        lower_bound=1,
        divisor_of=MNIST_SIZE,
    )
    image_size: int = setting(
        64, help="stanford_dogs: images are resized to this squared.", lower_bound=1
    )
    text_dataset: str = setting(
        "ag_news_subset", help="text: the tfds dataset.", choices=TEXT_DATASETS
    )
    max_length: int = setting(
        1000, help="text: bytes per example, truncated or right-padded with 0.", lower_bound=1
    )
    generated_train_size: int = setting(3000, help="generated: training examples.", lower_bound=1)
    generated_test_size: int = setting(
        500, help="generated: test examples (validation examples too).", lower_bound=1
    )
    sequence_length: int | None = setting(
        None, help="generated: sequence length (default: generated_task's)."
    )
    evaluate_on: str = setting(
        "test",
        help="test: train on the training set, evaluate on the test set. validation: "
        "train on the training set less a fixed held-out part and evaluate on that part, "
        "never reading the test set.",
        choices=EVALUATION_SPLITS,
    )
    # The layer (`bptt=None` is full backpropagation).
    units: int = setting(
        128, help="Main LSTM units (lru-rnn, r-lru-rnn: the LRU's outputs and the RNN's units)."
    )
    embedding_dim: int = setting(128, help="Token embedding.")
    bptt: int | None = setting(300, help="Steps the supervised gradient flows through.")
    aux_length: int = setting(600, help="Tokens reconstructed or predicted.")
    num_anchors: int = setting(1, help="Anchors per example.")
    aux_dropout: float = setting(0.5, help="Dropout in the auxiliary head.")
    aux_weight: float = setting(1.0, help="Weight of the auxiliary loss.")
    scheduled_sampling: float = setting(
        0.0, help="r-lstm: probability of feeding the decoder its own sample."
    )
    # Training.
    pretrain_epochs: int = setting(
        0, help="Epochs on the auxiliary loss alone first (ignored for lstm).", lower_bound=0
    )
    epochs: int = setting(100, help="Epochs on the sum of both losses.", lower_bound=0)
    batch_size: int = setting(128, help="Batch size.", lower_bound=1)
    learning_rate: float = setting(1e-3, help="Adam's learning rate.")
    clipnorm: float | None = setting(None, help="Clip each gradient to this norm (default: no).")
    seed: int = setting(0, help="Seed of weights, shuffling and anchors.")
    train_steps: int | None = setting(
        None, help="Batches per epoch (default: the whole training set).", lower_bound=1
    )
    eval_steps: int | None = setting(
        None, help="Evaluation batches (default: the whole test or validation set).", lower_bound=1
    )
    output_dir: str | None = setting(None, help="Outputs (default: runs/<dataset>-<model>).")
    verbose: int = setting(1, help="Keras: 0 silent, 1 progress bars, 2 a line an epoch.")

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            expected = _expected(field.metadata, value)
            if expected:
                raise ValueError(
                    f"Received an invalid value for `{field.name}`, expected {expected}, "
                    f"got {value!r}."
                )


def _divisors(number: int) -> str:
    """`"28, 14, 7, 4, 2 or 1"` for 28."""
    divisors = [str(d) for d in range(number, 0, -1) if number % d == 0]
    return ", ".join(divisors[:-1]) + " or " + divisors[-1] if len(divisors) > 1 else divisors[0]


def _expected(metadata, value) -> str | None:
    """What a field with `metadata` expects, when `value` is not that; else None."""
    if metadata["choices"] is not None and value not in metadata["choices"]:
        return f"one of {', '.join(metadata['choices'])}"
    if value is None:
        return None
    number = metadata["divisor_of"]
    if number is not None and (value < 1 or number % value):
        return f"a divisor of {number} ({_divisors(number)})"
    if metadata["lower_bound"] is not None and value < metadata["lower_bound"]:
        return f"a value of at least {metadata['lower_bound']}"
    return None


def _flag_type(field: dataclasses.Field) -> type:
    """`bool`, `int`, `float` or `str`: the field's type, less `None`."""
    hint = typing.get_type_hints(Config)[field.name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return hint


def define_config_flags(flag_values=flags.FLAGS, *, skip=(), describe_default=None) -> list[str]:
    """Defines one flag per `Config` field not in `skip`; returns their names.

    The flag has the field's name, help text, default and checks: an enum
    for a field with choices, an integer or float flag with the field's
    lower bound, a bool flag, or a string flag; a field without a default
    is a required flag. With `describe_default`, a function of the field's
    name, every flag defaults to `None` (not given) and its help ends with
    `describe_default(name)`: for scripts that take the defaults from
    elsewhere (`demo.py`, from its task's preset).
    """
    names = []
    for field in dataclasses.fields(Config):
        if field.name in skip:
            continue
        metadata, kind = field.metadata, _flag_type(field)
        required = field.default is dataclasses.MISSING
        default = None if required or describe_default else field.default
        help_text = metadata["help"]
        if describe_default:
            help_text = f"{help_text} {describe_default(field.name)}"
        given = dict(flag_values=flag_values)
        if metadata["choices"] is not None:
            flags.DEFINE_enum(field.name, default, metadata["choices"], help_text, **given)
        elif kind is bool:
            flags.DEFINE_bool(field.name, default, help_text, **given)
        elif kind in (int, float):
            define = flags.DEFINE_integer if kind is int else flags.DEFINE_float
            define(field.name, default, help_text, lower_bound=metadata["lower_bound"], **given)
        else:
            flags.DEFINE_string(field.name, default, help_text, **given)
        if metadata["divisor_of"] is not None:
            _register_divisor_validator(field.name, metadata["divisor_of"], flag_values)
        if required and not describe_default:
            flags.mark_flag_as_required(field.name, flag_values=flag_values)
        names.append(field.name)
    return names


def _register_divisor_validator(name: str, number: int, flag_values) -> None:
    flags.register_validator(
        name,
        lambda value: value is None or (value >= 1 and number % value == 0),
        message=f"--{name} must divide {number}: {_divisors(number)}.",
        flag_values=flag_values,
    )


def config_values_from_flags(flag_values=flags.FLAGS, names=None) -> dict:
    """The values of the parsed flags of the `Config` fields among `names`
    (default: all), less those that are None (not given, where the flag
    defaults to None)."""
    names = [f.name for f in dataclasses.fields(Config)] if names is None else names
    return {name: flag_values[name].value for name in names if flag_values[name].value is not None}
