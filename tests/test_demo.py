"""`make demo`'s script runs end to end and prints its table; its flags
override the task's presets in every run, and its table says which split
it evaluated on."""

import json
import os
import re
import subprocess
import sys
import types

import pytest

from examples import demo
from examples.config import Config
from examples.presets import TASKS

# The repository's root, where the scripts run as modules (`python -m examples.demo`).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.end_to_end
def test_demo_prints_one_row_per_model(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "examples.demo",
            "--task=generated",
            "--epochs=1",
            "--train_size=64",
            "--sequence_length=60",
            "--models=lstm,r-lstm",
            f"--output_dir={tmp_path}",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    rows = re.findall(
        r"^\| (\S+) \| (\S+) \| ([^|]+) \| ([0-9.]+) ± ([0-9.]+) \|", completed.stdout, re.M
    )
    assert [(model, bptt, windows.strip()) for model, bptt, windows, *_ in rows] == [
        ("lstm", "10", "-"),
        ("r-lstm", "10", "4 x 40"),
    ]
    for *_, accuracy, _ in rows:
        assert 0 <= float(accuracy) <= 1
    assert (tmp_path / "r-lstm-seed0" / "model.keras").exists()


@pytest.mark.end_to_end
def test_the_mnist5k_demo_runs_on_real_digits(tmp_path):
    # The LSTM and the LRU read by a tanh RNN (the r-LSTM runs end to end
    # above, on the generated task; the default models are checked below).
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "examples.demo",
            "--task=mnist5k",
            "--models=lstm,r-lru-rnn",
            "--train_steps=2",
            "--eval_steps=2",
            "--pretrain_epochs=1",
            "--epochs=1",
            f"--output_dir={tmp_path}",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "mnist5k: 4,000 real MNIST digits" in completed.stdout
    rows = re.findall(r"^\| (\S+) \| (\S+) \| ([^|]+) \|", completed.stdout, re.M)
    assert [(m, b, w.strip()) for m, b, w in rows[1:]] == [
        ("lstm", "20", "-"),
        ("r-lru-rnn", "20", "1 x 100"),
    ]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["epochs"] == 1 and results["task"] == "mnist5k"
    assert (tmp_path / "curves.png").stat().st_size > 10_000


# The tests below read the demo's flags in this process: its plan, each run's
# `Config` and its report, without training.
ABLATION = [
    "--task=mnist5k",
    "--evaluate_on=validation",
    "--num_anchors=4",
    "--aux_length=25",
    "--models=r-lstm",
    "--seeds=0,1,2",
]


def plan(*arguments):
    flag_values = demo.flags.FlagValues()
    demo.define_flags(flag_values)
    flag_values(["demo.py", *arguments])
    return demo.plan_from_flags(flag_values)


def test_without_overrides_the_runs_are_the_presets_and_the_old_flags_keep_their_meaning():
    assert (plan().task, plan().models, plan().seeds) == (
        "mnist5k",
        ["lstm", "r-lstm", "r-lru-rnn"],
        ["0"],
    )
    assert plan().settings == TASKS["mnist5k"] and TASKS["mnist5k"]["aux_weight"] == 5.0
    default = plan("--task=generated")
    assert (default.task, default.models, default.seeds) == (
        "generated",
        ["lstm", "r-lstm", "lstm-full-bp"],
        ["0"],
    )
    assert default.settings == TASKS["generated"]
    preset = dict(TASKS["generated"], sequence_length=300, verbose=2)
    output_dir = os.path.join("runs", "demo-generated")
    assert demo.run_config(default, "r-lstm", "0") == Config(
        dataset="generated",
        model="r-lstm",
        seed=0,
        output_dir=os.path.join(output_dir, "r-lstm-seed0"),
        **preset,
    )
    # A model without an auxiliary loss trains the two phases' epochs on its loss.
    lstm = demo.run_config(default, "lstm-full-bp", "0")
    assert (lstm.model, lstm.bptt, lstm.epochs, lstm.pretrain_epochs) == ("lstm", None, 6, 0)
    mnist = demo.run_config(plan("--task=pmnist5k"), "lstm", "1")
    assert mnist == Config(
        dataset="pmnist5k",
        model="lstm",
        seed=1,
        output_dir=os.path.join("runs", "demo-pmnist5k", "lstm-seed1"),
        verbose=2,
        **dict(TASKS["pmnist5k"], epochs=30, pretrain_epochs=0),
    )
    assert mnist.evaluate_on == "test" and mnist.sequence_length is None
    # The LRU read by a tanh RNN trains both losses from the start, as chosen.
    lru = demo.run_config(plan(), "r-lru-rnn", "0")
    assert (lru.model, lru.bptt, lru.aux_length, lru.epochs, lru.pretrain_epochs) == (
        "r-lru-rnn",
        20,
        100,
        30,
        0,
    )
    assert demo.run_config(plan(), "r-lstm", "0").pretrain_epochs == 2

    # The demo's own flags, as before overrides existed.
    old_flags = plan(
        "--task=generated",
        "--epochs=1",
        "--pretrain_epochs=1",
        "--train_size=64",
        "--train_steps=2",
        "--sequence_length=60",
        "--output_dir=out",
        "--models=lstm,p-lstm",
    )
    assert old_flags.models == ["lstm", "p-lstm"] and old_flags.output_dir == "out"
    p_lstm = demo.run_config(old_flags, "p-lstm", "0")
    assert (p_lstm.epochs, p_lstm.pretrain_epochs, p_lstm.generated_train_size) == (1, 1, 64)
    assert (p_lstm.train_steps, p_lstm.sequence_length) == (2, 60)
    assert p_lstm.output_dir == os.path.join("out", "p-lstm-seed0")
    assert demo.run_config(old_flags, "lstm", "0").epochs == 2
    with pytest.raises(demo.app.UsageError, match="Unknown --models"):
        plan("--models=gru")
    with pytest.raises(demo.flags.IllegalFlagValueError, match="train_size"):
        plan("--train_size=0")


def fake_run(accuracy):
    history = {"epoch": [1, 2], "phase": ["joint"] * 2, "loss": [2.0, 1.5], "accuracy": [0.2, 0.4]}
    return {"accuracy": accuracy, "seconds": 3.0, "history": history}


def test_any_config_field_overrides_the_preset_and_the_table_names_the_split(tmp_path, capsys):
    ablation = plan(*ABLATION, f"--output_dir={tmp_path}")
    assert ablation.seeds == ["0", "1", "2"] and ablation.models == ["r-lstm"]
    assert ablation.settings == dict(
        TASKS["mnist5k"], evaluate_on="validation", num_anchors=4, aux_length=25
    )
    configs = [demo.run_config(ablation, "r-lstm", seed) for seed in ablation.seeds]
    assert [config.seed for config in configs] == [0, 1, 2]
    for config in configs:
        assert (config.evaluate_on, config.num_anchors, config.aux_length) == ("validation", 4, 25)
        assert (config.bptt, config.mnist_size, config.epochs) == (20, 14, 28)  # The preset's.
    # The help says each override's default per task.
    flag_values = demo.flags.FlagValues()
    demo.define_flags(flag_values)
    assert flag_values["bptt"].help.endswith("Default: generated 10, mnist5k 20, pmnist5k 20.")
    assert flag_values["aux_dropout"].help.endswith("Default: 0.5.")

    # The table says which split it evaluated on.
    demo.report(ablation, {"r-lstm": [fake_run(0.5), fake_run(0.6), fake_run(0.7)]})
    printed = capsys.readouterr().out
    assert "500 held out of the 4,000 training digits to validate" in printed
    assert "Evaluated on the validation split; the test set was not read." in printed
    assert "| model | bptt | anchors x l | validation accuracy | per seed | seconds |" in printed
    assert "| r-lstm | 20 | 4 x 25 | 0.600 ± 0.100 | 0.500, 0.600, 0.700 | 3 |" in printed
    assert "\nCommand: `python -m examples.demo " in printed
    assert (tmp_path / "results.md").read_text().strip() == printed.strip()
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["evaluate_on"] == "validation"
    assert results["settings"]["num_anchors"] == 4
    assert (tmp_path / "curves.png").stat().st_size > 10_000

    test_plan = plan("--task=mnist5k", f"--output_dir={tmp_path}")
    demo.report(
        test_plan,
        {"lstm": [fake_run(0.5)], "r-lstm": [fake_run(0.6)], "r-lru-rnn": [fake_run(0.9)]},
    )
    printed = capsys.readouterr().out
    assert "| r-lru-rnn | 20 | 1 x 100 | 0.900 ± 0.000 | 0.900 | 3 |" in printed
    assert "mnist5k: 4,000 real MNIST digits to train, 1,000 to test" in printed
    assert "Evaluated on the test set. Seeds: 0." in printed
    assert "| test accuracy |" in printed


def test_the_demos_lru_read_by_an_rnn_is_the_comparisons_chosen_setting():
    # The demo's r-lru-rnn layer is the one docs/results.md measured with
    # examples.compare's flags: the same configuration, and the same initial
    # weights of its cells for the same seed.
    import keras
    import numpy as np

    from examples import compare, experiment
    from keras_auxloss import AuxLossRNN, LinearRecurrentUnitCell

    chosen = dict(
        model="r-lru-rnn", lru_eigenvalue_init="fourier", lru_train_dynamics="false",
        lru_state_dim="128", lru_timescales="2",
    )  # fmt: skip
    # Parsed one by one: other modules' required flags (compare_report's)
    # may be defined in this process. `unparse_flags` below puts compare's
    # flags back to their defaults, unparsed, as every other test finds them
    # (they read them only in a process of their own, `python -m`).
    for name, value in chosen.items():
        compare.FLAGS[name].parse(value)
    compare.FLAGS.mark_as_parsed()
    try:
        keras.utils.set_random_seed(3)  # As each run sets it.
        measured = compare.recurrent_layer("r-lru-rnn", 196, seed=3)
        measured(keras.ops.zeros((2, 196), "int32"))
    finally:
        compare.FLAGS.unparse_flags()
    keras.utils.set_random_seed(3)
    config = demo.run_config(plan(), "r-lru-rnn", "3")
    digits = types.SimpleNamespace(sequence_length=196, vocab_size=256, num_classes=10)
    demo_model = experiment.model_for(config, digits)
    (shown,) = [layer for layer in demo_model.layers if isinstance(layer, AuxLossRNN)]

    def without_names(config):
        if isinstance(config, dict):
            return {k: without_names(v) for k, v in config.items() if k != "name"}
        if isinstance(config, list):
            return [without_names(v) for v in config]
        return config

    assert without_names(shown.get_config()) == without_names(measured.get_config())
    lru, reader = shown.cell.cells
    assert isinstance(lru, LinearRecurrentUnitCell) and isinstance(
        reader, keras.layers.SimpleRNNCell
    )
    assert (lru.state_dim, lru.eigenvalue_init, lru.train_eigenvalues) == (128, "fourier", False)
    assert lru.max_timescale == 2 * 196
    # The main cells' initial weights (the decoder's head draws from Keras's
    # global seed in the order its model builds layers).
    assert len(shown.cell.weights) == len(measured.cell.weights) == 15
    for ours, theirs in zip(shown.cell.weights, measured.cell.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)
