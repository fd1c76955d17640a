"""The demo's presets: its models, and each task's settings and default models.

`DEMO_MODELS` maps each of the demo's models to its `Config.model` (a name
of `config.AUX_LOSSES`) and whether it backpropagates in full;
`JOINT_FROM_THE_START` are the models with an auxiliary loss that train
both losses from the first epoch, as they were chosen, instead of the
paper's two phases (`joint_from_the_start`); `TASKS`
holds each task's settings, fixed before any run (`examples/README.md` says
why), which `demo.py`'s flags override field by field; `DEFAULT_MODELS` are
the models a task runs when `--models` is not given.
"""

from examples import generated_task
from examples.config import AUX_LOSSES

# name: (the `Config.model`, full backpropagation)
DEMO_MODELS = {
    "lstm": ("lstm", False),
    "r-lstm": ("r-lstm", False),
    "p-lstm": ("p-lstm", False),
    "lstm-full-bp": ("lstm", True),
    "r-lstm-full-bp": ("r-lstm", True),
    "lru-rnn": ("lru-rnn", False),
    "r-lru-rnn": ("r-lru-rnn", False),
}
# The `Config.model`s with an auxiliary loss that spend no
# `pretrain_epochs` on it alone: they train `pretrain_epochs + epochs`
# epochs on both losses, as the models without one train as many on
# theirs. The LRU read by a tanh RNN was chosen so, without the paper's
# pretraining (docs/results.md, "The LRU read by a tanh RNN").
JOINT_FROM_THE_START = ("r-lru-rnn",)


def joint_from_the_start(model_type: str) -> bool:
    """Whether the `Config.model` `model_type` trains `pretrain_epochs +
    epochs` epochs on its losses: a model without an auxiliary loss (it
    has nothing to pretrain), or one of `JOINT_FROM_THE_START`."""
    return AUX_LOSSES[model_type] is None or model_type in JOINT_FROM_THE_START


# The settings of each task, chosen before measuring the test set (see
# examples/README.md for why). `pretrain_epochs` applies to the models with an auxiliary loss
# but those that `joint_from_the_start` names, which train `pretrain_epochs + epochs`
# epochs on their losses, so that every model sees the data as many times.
_MNIST5K = dict(
    mnist_size=14,
    units=64,
    embedding_dim=32,
    bptt=20,
    aux_length=100,
    num_anchors=1,
    pretrain_epochs=2,
    epochs=28,
    batch_size=32,
    learning_rate=2e-3,
    clipnorm=1.0,
    # Chosen on the validation split of the training digits, 3 seeds each,
    # against 1 (the paper's), a learning rate of 1e-3, a cosine decay and
    # a moving average of the weights (research/mnist5k_diagnosis/,
    # docs/results.md).
    aux_weight=5.0,
)
TASKS = {
    "generated": dict(
        generated_train_size=3000,
        units=64,
        embedding_dim=16,
        bptt=10,
        aux_length=40,
        num_anchors=4,
        pretrain_epochs=0,
        epochs=6,
        batch_size=32,
        learning_rate=1e-3,
        clipnorm=1.0,
    ),
    "mnist5k": _MNIST5K,
    "pmnist5k": _MNIST5K,
}
# What every run of a task gets besides its settings, unless a flag says
# otherwise; not part of the settings that results.json records. The
# generated task's length is written out so that each run's config names it.
RUN_DEFAULTS = {
    "generated": dict(sequence_length=generated_task.LENGTH, verbose=2),
    "mnist5k": dict(verbose=2),
    "pmnist5k": dict(verbose=2),
}
# The default task and, per task, the default models (`make demo`).
DEFAULT_TASK = "mnist5k"
DEFAULT_MODELS = {
    "generated": ["lstm", "r-lstm", "lstm-full-bp"],
    "mnist5k": ["lstm", "r-lstm", "r-lru-rnn"],
    "pmnist5k": ["lstm", "r-lstm"],
}
