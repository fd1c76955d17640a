"""Per-epoch means of the full-backpropagation probe of a run:

    python -m research.mnist5k_diagnosis.probes runs/diag/base-probe-s0 ...

cos(truncated, full): cosine between the supervised gradient on the main
LSTM (+ embedding) truncated to the last `bptt` steps and the full one;
early/truncated: norm of the part from the steps before the window over the
truncated gradient's norm."""

import json
import sys

import numpy as np


def print_probes(path):
    """The table of the run at `path` (with or without `.json`)."""
    path = path.removesuffix(".json")
    with open(path + ".json") as file:
        run = json.load(file)
    probes = run["full_bp_probes"]
    print(path, f"final val {run['final_val_acc']:.3f}")
    print(" epoch  cos(tr,full)  [min]  cos(tr,early)  early/tr  |g_tr|  |g_full|  val_acc")
    val = {e["epoch"]: e["val"]["acc"] for e in run["epochs"]}
    for epoch in sorted({p["epoch"] for p in probes}):
        ps = [p for p in probes if p["epoch"] == epoch]
        c = np.array([p["cos_truncated_full"] for p in ps])
        ce = np.array([p["cos_truncated_early"] for p in ps])
        ratio = np.array([p["norm_early"] / max(p["norm_truncated"], 1e-12) for p in ps])
        norm_truncated = np.mean([p["norm_truncated"] for p in ps])
        norm_full = np.mean([p["norm_full"] for p in ps])
        print(
            f"{epoch:6d}  {c.mean():12.3f}  {c.min():5.2f}  {ce.mean():13.3f}"
            f"  {np.median(ratio):8.2f}  {norm_truncated:6.3f}  {norm_full:8.3f}"
            f"  {val[epoch]:.3f}"
        )


def main(argv=None):
    for path in argv or sys.argv[1:]:
        print_probes(path)


if __name__ == "__main__":
    main()
