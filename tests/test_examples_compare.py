"""The comparison example (`examples/compare.py`, `examples/compare_report.py`)
runs end to end on a few real digits, so that it cannot rot: one run's JSON
holds what the tables read, with the anchors, window and pretraining given
on the command line, and the report labels the run by its settings; a
setting the model cannot have is refused before anything runs."""

import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(*args):
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, check=True, capture_output=True, text=True,
        timeout=600,
    ).stdout  # fmt: skip


@pytest.mark.end_to_end
def test_one_run_writes_its_result_and_the_report_reads_it(tmp_path):
    (tmp_path / "first").mkdir()
    output = tmp_path / "first" / "r-lru-rnn.json"
    run_module(
        "examples.compare", "--model=r-lru-rnn", "--length=196", "--epochs=2",
        "--pretrain_epochs=1", "--bptt=10", "--train_digits=64", "--held_out_digits=32",
        "--num_anchors=4", "--lru_state_dim=16", "--lru_eigenvalue_init=fourier",
        "--lru_train_dynamics=false", f"--output={output}",
    )  # fmt: skip
    result = json.loads(output.read_text())
    assert result["model"] == "r-lru-rnn" and result["length"] == 196
    assert (result["train_digits"], result["held_out_digits"]) == (64, 32)
    assert 0.0 <= result["accuracy"] <= 1.0 and result["peak_rss_gib"] > 0
    # The demo's 100 reconstructed tokens shared among the 4 anchors, in
    # windows of 10; one epoch on the auxiliary loss alone, then one on both.
    assert result["settings"]["truncation"] == [10, 25]
    assert result["settings"]["num_anchors"] == 4 and result["settings"]["aux_weight"] == 5.0
    assert result["settings"]["pretrain_epochs"] == 1 and len(result["train_accuracy"]) == 1
    assert "cores" in result["cpu"]
    table = run_module("examples.compare_report", f"--results={output.parent}")
    label = "r-lru-rnn (4 x 25, bptt 10, 1 pretraining, fourier, state 16, fixed dynamics)"
    assert f"| {label} | 196 | 1 |" in table
    # Several folders: their runs are pooled (here the same run twice).
    again = tmp_path / "again"
    again.mkdir()
    (again / "r-lru-rnn.json").write_text(output.read_text())
    table = run_module("examples.compare_report", f"--results={output.parent},{again}")
    assert f"| {label} | 196 | 2 |" in table
    # Runs of one model and length on different budgets are not pooled.
    result["epochs"] = 3
    (again / "r-lru-rnn.json").write_text(json.dumps(result))
    report = subprocess.run(
        [sys.executable, "-m", "examples.compare_report", f"--results={output.parent},{again}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert report.returncode != 0
    assert "different budgets (epochs x digits: 2 x 64, 3 x 64)" in report.stderr


@pytest.mark.end_to_end
@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--model=lru", "--pretrain_epochs=2"],
            "flags pretrain_epochs=2, model=lru, epochs=30: --pretrain_epochs needs a model "
            "with an auxiliary loss",
        ),
        (
            ["--model=r-lstm", "--lru_train_dynamics=false"],
            "flags lru_train_dynamics=False, lru_eigenvalue_init=ring, model=r-lstm: "
            "--lru_train_dynamics=false and --lru_eigenvalue_init=fourier need a model with an LRU",
        ),
        (
            ["--model=r-lru-rnn", "--lru_eigenvalue_init=fourier", "--lru_r_min=0.99"],
            "--lru_r_min and --lru_max_phase set the ring; --lru_eigenvalue_init=fourier "
            "reads neither",
        ),
    ],
    ids=[
        "pretraining without an auxiliary loss",
        "fixed dynamics without an LRU",
        "a ring's setting with the Fourier initialisation",
    ],
)
def test_a_setting_the_model_cannot_have_is_refused(flags, message):
    refused = subprocess.run(
        [sys.executable, "-m", "examples.compare", *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert refused.returncode != 0
    assert message in refused.stderr


def test_the_lru_flags_need_an_lru_and_the_fourier_basis_reads_no_ring():
    # The validators themselves, beside the refusals above (each a process).
    from examples import compare

    trained = dict(lru_train_dynamics=True, lru_eigenvalue_init="fourier")
    assert not compare._lru_settings_have_a_cell(dict(trained, model="keras-tcn"))
    assert compare._lru_settings_have_a_cell(dict(trained, model="r-lru-rnn"))
    assert compare._lru_settings_have_a_cell(
        dict(trained, lru_eigenvalue_init="ring", model="lstm")
    )
    ring = dict(lru_r_min=0.9, lru_max_phase=1.0)
    assert not compare._fourier_reads_no_ring(dict(ring, lru_eigenvalue_init="fourier"))
    assert compare._fourier_reads_no_ring(dict(ring, lru_eigenvalue_init="ring"))
    assert compare._fourier_reads_no_ring(
        dict(lru_r_min=0.9, lru_max_phase=2 * math.pi, lru_eigenvalue_init="fourier")
    )


def test_the_report_names_every_setting_a_run_changed():
    from examples.compare_report import label

    settings = dict(
        truncation=[20, 100], num_anchors=1, aux_weight=5.0, lru_r_min=0.9, lru_state_dim=None,
        lru_max_phase=2 * math.pi, lru_timescales=1.0,
    )  # fmt: skip
    assert label({"model": "r-lru", "settings": settings}) == "r-lru"
    changed = dict(
        settings, truncation=[20, 150], aux_length=150, scheduled_sampling=0.1,
        lru_train_dynamics=False, lru_dropout=0.25, lru_layers=2,
    )  # fmt: skip
    assert label({"model": "r-lru", "settings": changed}) == (
        "r-lru (1 x 150, sampling 0.1, fixed dynamics, dropout 0.25, 2 layers)"
    )
    # The Fourier initialisation reads no ring: a ring's value recorded
    # beside it (as the research variants' runs record theirs) is not named.
    fourier = dict(
        settings, lru_eigenvalue_init="fourier", lru_r_min=0.99, lru_state_dim=128,
        lru_timescales=2.0, lru_train_dynamics=False,
    )  # fmt: skip
    assert label({"model": "r-lru-rnn", "settings": fourier}) == (
        "r-lru-rnn (fourier, state 128, timescales x2, fixed dynamics)"
    )
    research = dict(settings, lru_fourier=True, lru_r_min=0.99, lru_reader="simple")
    assert label({"model": "r-lru", "settings": research}) == "r-lru (fourier, simple reader)"
