"""Steps whose global gradient norm exceeds a threshold, and what followed:

    python -m research.mnist5k_diagnosis.spikes [--threshold=10] runs/diag/base-s0 ...

For each spike: which part (supervised/auxiliary gradient on the main LSTM,
decoder, auxiliary head, classifier), and the means of the 20 steps before
and the 20 after of batch accuracy, the final state's saturated fraction
(|h| > 0.95), the classifier's logit spread and the main LSTM's update norm."""

import argparse

import numpy as np

PARTS = ("g_sup_main", "g_aux_main", "g_total_decoder", "g_total_aux_head", "g_sup_classifier")


def print_spikes(path, threshold):
    """The spikes of the run at `path` (with or without `.json` or `.npz`)."""
    path = path.removesuffix(".json").removesuffix(".npz")
    d = np.load(path + ".npz")
    g = d["g_total_global"]
    idx = np.flatnonzero(g > threshold)
    print(
        f"{path}: {len(idx)} steps of {len(g)} with global norm > {threshold}; "
        f"median norm {np.median(g):.2f}, 99th pct {np.percentile(g, 99):.2f}"
    )
    for i in idx:
        b, a = slice(max(i - 20, 0), i), slice(i + 1, i + 21)
        parts = {k: float(d[k][i]) for k in PARTS}
        big = max(parts, key=parts.get)
        print(
            f"  epoch {int(d['epoch'][i]):2d} step {int(d['step'][i]):3d} norm {g[i]:8.1f} "
            f"(largest: {big} {parts[big]:.1f}; sup_main {parts['g_sup_main']:.1f} "
            f"aux_main {parts['g_aux_main']:.1f} dec {parts['g_total_decoder']:.1f}) "
            f"acc {d['acc'][b].mean():.2f}->{d['acc'][a].mean():.2f} "
            f"h_sat {d['h_saturated'][b].mean():.2f}->{d['h_saturated'][a].mean():.2f} "
            f"logit_std {d['logit_std'][b].mean():.2f}->{d['logit_std'][a].mean():.2f} "
            f"u_main {d['update_main'][b].mean():.3f}->{d['update_main'][i]:.3f}->"
            f"{d['update_main'][a].mean():.3f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--threshold", type=float, default=10.0)
    args = parser.parse_args(argv)
    for path in args.paths:
        print_spikes(path, args.threshold)


if __name__ == "__main__":
    main()
