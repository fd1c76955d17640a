"""Training under tf.distribute strategies, each run in a process of its own."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from support import needs_keras

pytestmark = pytest.mark.end_to_end

SCRIPT = os.path.join(os.path.dirname(__file__), "distributed_fit.py")

# Older Keras trains any model, a lone Dense layer included, differently on
# two replicas than on one device (and before 3.5 a multi-worker strategy
# cannot create a Keras LSTM cell: it fails to broadcast the cell's uint32
# seed-generator state).
REPLICA_LOSS_SCALING = needs_keras(
    "3.8",
    "older Keras does not scale the loss by the number of replicas under tf.distribute "
    "(scale_loss_for_distribution, Keras 3.8), so two replicas sum twice the gradient",
)


def fit(strategy, output, env=None):
    return subprocess.Popen(
        [sys.executable, SCRIPT, f"--strategy={strategy}", f"--output={output}"],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process):
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]


def weights(path):
    saved = np.load(path)
    return saved, [saved[f"weight_{i}"] for i in range(len(saved.files) - 2)]


@REPLICA_LOSS_SCALING
def test_mirrored_over_two_devices_equals_one_device(tmp_path):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    for process in (fit("one_device", one), fit("mirrored", two)):
        finish(process)
    (one_logs, one_weights), (two_logs, two_weights) = weights(one), weights(two)
    np.testing.assert_allclose(two_logs["loss"], one_logs["loss"], rtol=1e-4)
    np.testing.assert_allclose(two_logs["aux_loss"], one_logs["aux_loss"], rtol=1e-4)
    for a, b in zip(one_weights, two_weights, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-5)
    # Training moved the weights: the comparison is not of two copies of the start.
    assert not np.allclose(
        one_weights[1], np.random.default_rng(1).normal(0, 0.3, one_weights[1].shape)
    )


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@REPLICA_LOSS_SCALING
def test_multi_worker_mirrored_with_two_workers_on_localhost(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = [
        fit(
            "multi_worker",
            tmp_path / f"worker{index}.npz",
            {
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
                )
            },
        )
        for index in range(2)
    ]
    single = fit("one_device", tmp_path / "one.npz")
    for process in [*processes, single]:
        finish(process)
    (logs, first), (_, second) = (weights(tmp_path / f"worker{i}.npz") for i in range(2))
    one_logs, one_weights = weights(tmp_path / "one.npz")
    # `fit` (with keras_auxloss.distribute.fix_multi_worker_fit): the two
    # workers train one model, the model one device trains on the same
    # global batches, and they moved from the start.
    for a, b, one in zip(first, second, one_weights, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, one, atol=1e-5)
    np.testing.assert_allclose(logs["loss"], one_logs["loss"], rtol=1e-4)
    np.testing.assert_allclose(logs["aux_loss"], one_logs["aux_loss"], rtol=1e-4)
    start = np.random.default_rng(1).normal(0, 0.3, first[1].shape)
    assert not np.allclose(first[1], start)
