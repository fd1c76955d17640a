"""The benchmark script runs end to end, so that it cannot rot."""

import json
import os
import subprocess
import sys

import keras
import pytest

# The repository's root, where the scripts run as modules (`python -m benchmarks.train_step`).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# A short sequence (the truncation and the anchor's window cut to fit it),
# one timed step and a small model, to keep it quick.
LENGTH = "200"


def run_benchmark(output_dir, *flags):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.train_step",
            f"--lengths={LENGTH}",
            "--bptt=50",
            "--aux_length=100",
            "--repetitions=1",
            "--batch_size=4",
            "--units=16",
            "--embedding_dim=8",
            f"--output_dir={output_dir}",
            *flags,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return (output_dir / "results.md").read_text()


def check_rows(table, results, configs):
    """Each configuration's row of `table` says what `results` holds."""
    for config in configs:
        row = next(line for line in table.splitlines() if f"| {LENGTH} | {config} |" in line)
        cells = row.split("|")
        result = results[config][LENGTH]
        # On this CPU, TensorFlow runs every configuration on the loop.
        assert cells[3].strip() == "loop" == result["kernel"], row
        assert cells[4].strip() == f"{result['seconds']:.3f}" and result["seconds"] > 0, row
        assert result["flops"] > 0 and result["gflop_per_s"] > 0 and result["bound_seconds"] > 0
        assert float(cells[10]) == round(result["seconds"] / result["bound_seconds"], 2), row


@pytest.mark.end_to_end
def test_benchmark_writes_its_table_and_plot(tmp_path):
    configs = ("r_lstm", "truncated_lstm", "keras_full_bp", "forward_floor")
    table = run_benchmark(tmp_path, "--backends=tensorflow", f"--configs={','.join(configs)}")
    assert "### tensorflow" in table
    results = json.loads((tmp_path / "results.json").read_text())["tensorflow"]
    check_rows(table, results, configs)
    assert "r_lstm / forward_floor" in table
    assert "The limit, one step's recurrent product (4, 16) x (16, 64)" in table
    assert "CPU: " in table
    assert "Where the r_lstm step's work goes" in table
    assert "| tensorflow: bound s, all / in a loop |" in table
    assert (tmp_path / "results.png").stat().st_size > 10_000
    assert results["recurrent_product"][LENGTH]["gflop_per_s"] > 0
    assert results["r_lstm"][LENGTH]["flops"] > results["truncated_lstm"][LENGTH]["flops"] > 0


# The JAX tests' selection (`any_backend`, skipped unless the backend is
# JAX) holds the benchmark's other runs: make test stays under 10 minutes.
ONLY_WITH_THE_JAX_TESTS = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="runs with the JAX tests (make test-jax), to keep make test under 10 minutes",
)


@pytest.mark.any_backend
@ONLY_WITH_THE_JAX_TESTS
def test_benchmark_times_the_word_and_gru_configurations(tmp_path):
    """The configurations beyond the four above, on TensorFlow."""
    configs = ("r_lstm", "r_lstm_words", "r_lstm_words_sampled", "r_gru")
    table = run_benchmark(tmp_path, "--backends=tensorflow", f"--configs={','.join(configs)}")
    results = json.loads((tmp_path / "results.json").read_text())["tensorflow"]
    check_rows(table, results, configs)
    assert "r_lstm_words / r_lstm | r_lstm_words_sampled / r_lstm | r_gru / r_lstm" in table


@pytest.mark.any_backend
@ONLY_WITH_THE_JAX_TESTS
def test_benchmark_compares_backends(tmp_path):
    table = run_benchmark(tmp_path, "--backends=tensorflow,jax", "--configs=r_lstm")
    jax_table = table.split("### jax")[1]
    row = next(line for line in jax_table.splitlines() if f"| {LENGTH} | r_lstm |" in line)
    assert row.split("|")[3].strip() == "loop" and float(row.split("|")[4]) > 0, row
    ratio = next(
        line
        for line in table.splitlines()
        if line.startswith(f"| {LENGTH} | ") and "r_lstm" not in line
    )
    assert "r_lstm jax / tensorflow" in table and float(ratio.split("|")[2]) > 0, ratio
