"""`examples/stream.py` runs end to end: a stream trained chunk by chunk."""

import json
import os
import subprocess
import sys

import pytest

# The repository's root, where the scripts run as modules (`python -m examples.stream`).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.end_to_end


def test_stream_example_trains_chunk_by_chunk_and_logs_memory(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "examples.stream",
            "--length=6000",
            "--chunk=1000",
            "--log_every=3",
            "--bptt=20",
            "--aux_length=20",
            f"--output_dir={tmp_path}",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    log = json.loads((tmp_path / "results.json").read_text())["log"]
    assert [row["steps"] for row in log] == [3000, 6000]
    assert all(row["resident_gib"] > 0 and row["aux_loss"] > 0 for row in log)
    assert 0 <= log[-1]["accuracy_so_far"] <= 1
