"""`make demo`'s script runs end to end and prints its table."""

import json
import os
import re
import subprocess
import sys

DEMO = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "demo.py")


def test_demo_prints_one_row_per_model(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            DEMO,
            "--epochs=1",
            "--train_size=64",
            "--sequence_length=60",
            "--models=lstm,r-lstm",
            f"--output_dir={tmp_path}",
        ],
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


def test_the_mnist5k_demo_runs_lstm_against_r_lstm(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            DEMO,
            "--task=mnist5k",
            "--train_steps=2",
            "--pretrain_epochs=1",
            "--epochs=1",
            f"--output_dir={tmp_path}",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "mnist5k: 4,000 real MNIST digits" in completed.stdout
    rows = re.findall(r"^\| (\S+) \| (\S+) \| ([^|]+) \|", completed.stdout, re.M)
    assert [(m, b, w.strip()) for m, b, w in rows[1:]] == [
        ("lstm", "20", "-"),
        ("r-lstm", "20", "1 x 100"),
    ]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["epochs"] == 1 and results["task"] == "mnist5k"
    assert (tmp_path / "curves.png").stat().st_size > 10_000
