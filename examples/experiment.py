"""One experiment of the paper: the classifier, its training and its outputs.

`run(config)` builds the paper's network for `config`, trains it (the
auxiliary loss alone first when `pretrain_epochs` > 0, then both losses),
evaluates it on the test set or on the validation split
(`config.evaluate_on`) and writes to its output directory `history.csv`,
`history.json`, `curves.png`, `model.keras`, `test_accuracy.json` and
TensorBoard logs in `tensorboard/`.
"""

import csv
import dataclasses
import json
import os
import time

import keras
from absl import logging

from examples import input_pipeline, lru_reader, plots
from examples.config import AUX_LOSSES, LRU_READER_MODELS, Config
from keras_auxloss import AuxLossLSTM, AuxLossRNN

# ---------------------------------------------------------------- model


def build_model(
    model_type: str, sequence_length: int, vocab_size: int, num_classes: int, **layer_options
) -> keras.Model:
    """The paper's classifier on `sequence_length` int32 tokens.

    `model_type` is a name of `AUX_LOSSES`: `"lstm"` (no auxiliary loss),
    `"r-lstm"` or `"p-lstm"`, whose layer is an `AuxLossLSTM`, or
    `"lru-rnn"` or `"r-lru-rnn"`, an `AuxLossRNN` of the LRU read by a tanh
    RNN (`lru_reader.lru_reader_cells`, of `units` and seeded with the
    layer's `seed`, 0 if `None`). `layer_options` go to the layer (`units`
    is required). A `bptt` or `aux_length` that does not fit the sequence
    raises the layer's `ValueError`.
    """
    if model_type not in AUX_LOSSES:
        raise ValueError(
            f"Received an invalid value for argument `model_type`, expected one of "
            f"{', '.join(AUX_LOSSES)}, got {model_type!r}."
        )
    options = dict(aux_loss=AUX_LOSSES[model_type], vocab_size=vocab_size, **layer_options)
    if model_type in LRU_READER_MODELS:
        units, seed = options.pop("units"), options.get("seed") or 0
        layer = AuxLossRNN(lru_reader.lru_reader_cells(units, sequence_length, seed), **options)
    else:
        layer = AuxLossLSTM(**options)
    inputs = keras.Input((sequence_length,), dtype="int32", name="tokens")
    # Called before the head is made: the layers draw their initializers'
    # seeds as they are made and built, in this order in every run.
    features = layer(inputs)
    hidden = keras.layers.Dense(256, activation="relu")(features)
    hidden = keras.layers.Dropout(0.5)(hidden)
    logits = keras.layers.Dense(num_classes, name="logits")(hidden)
    return keras.Model(inputs, logits, name=model_type)


def model_for(config: Config, data: input_pipeline.Data) -> keras.Model:
    """`build_model` with the layer settings of `config`, for `data`."""
    # Text is right-padded with byte 0: the layer masks it.
    masking = {"mask_zero": True} if config.dataset == "text" else {}
    return build_model(
        config.model,
        data.sequence_length,
        data.vocab_size,
        data.num_classes,
        **masking,
        units=config.units,
        embedding_dim=config.embedding_dim,
        bptt=config.bptt,
        aux_length=config.aux_length,
        num_anchors=config.num_anchors,
        aux_dropout=config.aux_dropout,
        aux_weight=config.aux_weight,
        scheduled_sampling=config.scheduled_sampling,
        seed=config.seed,
    )


def optimizer(config: Config) -> keras.optimizers.Optimizer:
    """A fresh Adam for each phase."""
    return keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm)


def _set_classifier_trainable(model: keras.Model, trainable: bool) -> None:
    """Freezes or unfreezes every layer after the recurrent layer."""
    for layer in model.layers:
        if not isinstance(layer, AuxLossRNN):
            layer.trainable = trainable


# ------------------------------------------------------------- training


class HistoryWriter(keras.callbacks.Callback):
    """Keeps one history across both phases and rewrites `history.csv` and
    `history.json` after every epoch, so a long run can be followed."""

    def __init__(self, output_dir):
        super().__init__()
        self.output_dir = output_dir
        self.phase = None
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: float(value) for key, value in (logs or {}).items()}
        self.rows.append({"epoch": epoch + 1, "phase": self.phase, **logs})
        self.write()

    def write(self):
        history = self.history()
        with open(os.path.join(self.output_dir, "history.json"), "w") as file:
            json.dump(history, file, indent=1)
        with open(os.path.join(self.output_dir, "history.csv"), "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(history), restval="")
            writer.writeheader()
            writer.writerows(self.rows)

    def history(self):
        """Columns of the rows, `None` where a phase has no such metric."""
        keys = dict.fromkeys(key for row in self.rows for key in row)
        return {key: [row.get(key) for row in self.rows] for key in keys}


def pretrain(model, train, config: Config, history: HistoryWriter, callbacks) -> int:
    """The paper's first phase: the auxiliary loss alone, the classifier
    frozen. Returns the epochs trained (none for a model without it)."""
    epochs = config.pretrain_epochs if AUX_LOSSES[config.model] else 0
    if config.pretrain_epochs and not epochs:
        logging.warning("--pretrain_epochs is ignored: %s has no auxiliary loss.", config.model)
    if not epochs:
        return 0
    logging.info("Pretraining on the auxiliary loss alone for %d epochs.", epochs)
    history.phase = "pretrain"
    _set_classifier_trainable(model, False)  # It has no loss yet.
    model.compile(optimizer=optimizer(config))
    model.fit(
        train.map(lambda tokens, label: tokens),
        epochs=epochs,
        steps_per_epoch=config.train_steps,
        callbacks=callbacks,
        verbose=config.verbose,
    )
    _set_classifier_trainable(model, True)
    return epochs


def train_jointly(model, train, config: Config, history, callbacks, initial_epoch: int) -> None:
    """The second phase: the supervised and the auxiliary loss together."""
    logging.info("Training jointly for %d epochs.", config.epochs)
    history.phase = "joint"
    model.compile(
        optimizer=optimizer(config),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        train,
        initial_epoch=initial_epoch,
        epochs=initial_epoch + config.epochs,
        steps_per_epoch=config.train_steps,
        callbacks=callbacks,
        verbose=config.verbose,
    )


# -------------------------------------------------------------- outputs


def evaluation_result(evaluation: dict, evaluated_on: str, seconds: float) -> dict:
    """The numbers of `test_accuracy.json`.

    `evaluated_on` ("test" or "validation"), `accuracy` and `loss` on that
    set, the same two under the set's name (`test_accuracy` and
    `test_loss`, or `validation_accuracy` and `validation_loss`: a run
    evaluated on the validation split has no `test_*` key) and `seconds`.
    """
    accuracy, loss = float(evaluation["accuracy"]), float(evaluation["loss"])
    return {
        f"{evaluated_on}_accuracy": accuracy,
        f"{evaluated_on}_loss": loss,
        "evaluated_on": evaluated_on,
        "accuracy": accuracy,
        "loss": loss,
        "seconds": seconds,
    }


def write_outputs(model: keras.Model, config: Config, numbers: dict, history: dict) -> None:
    """`test_accuracy.json` (`numbers` and the config), `model.keras` and
    `curves.png`; the history files are written as training goes."""
    with open(os.path.join(config.output_dir, "test_accuracy.json"), "w") as file:
        json.dump({**numbers, "config": dataclasses.asdict(config)}, file, indent=1)
    model.save(os.path.join(config.output_dir, "model.keras"))
    plots.plot_run_curves(
        history,
        os.path.join(config.output_dir, "curves.png"),
        f"{config.dataset}, {config.model}: {numbers['evaluated_on']} accuracy "
        f"{numbers['accuracy']:.4f}",
    )


# ------------------------------------------------------------------ run


def run(config: Config | dict) -> dict:
    """Trains and evaluates one model; writes the outputs to its directory.

    `config` is a `Config` or a dict of its fields. Returns the numbers of
    `evaluation_result` (`accuracy`, `loss`, `evaluated_on`, the same under
    the set's name such as `test_accuracy`, `seconds`: training and
    evaluation), `history` (columns, as in `history.json`) and
    `output_dir`. Raises `DatasetUnavailableError` when a dataset is
    missing.
    """
    if isinstance(config, dict):
        config = Config(**config)
    if config.output_dir is None:
        config = dataclasses.replace(
            config, output_dir=os.path.join("runs", f"{config.dataset}-{config.model}")
        )
    keras.utils.set_random_seed(config.seed)
    data = input_pipeline.load_data(config)
    os.makedirs(config.output_dir, exist_ok=True)
    model = model_for(config, data)
    model.summary(print_fn=logging.info)
    train = input_pipeline.batches(data.train, config, training=True)
    evaluation_set = input_pipeline.batches(data.evaluation, config, training=False)
    history = HistoryWriter(config.output_dir)
    callbacks = [
        history,
        keras.callbacks.TensorBoard(os.path.join(config.output_dir, "tensorboard")),
    ]

    start = time.perf_counter()
    pretrain_epochs = pretrain(model, train, config, history, callbacks)
    train_jointly(model, train, config, history, callbacks, initial_epoch=pretrain_epochs)
    evaluation = model.evaluate(evaluation_set, return_dict=True, verbose=config.verbose)
    seconds = time.perf_counter() - start
    history.write()  # Also when there were no epochs.

    numbers = evaluation_result(evaluation, config.evaluate_on, seconds)
    logging.info(
        "%s accuracy %.4f after %.0f s; outputs in %s.",
        config.evaluate_on.capitalize(),
        numbers["accuracy"],
        seconds,
        config.output_dir,
    )
    write_outputs(model, config, numbers, history.history())
    return {**numbers, "history": history.history(), "output_dir": config.output_dir}
