"""A compact copy of the runs of `diagnose_mnist5k.py` for the repository:
per run its settings, seconds, final and best validation accuracy, and per
epoch the main curves (the full per-step records stay in
the `.npz` files next to each run).

    python -m research.mnist5k_diagnosis.export runs/diag runs/diag-results.json
"""

import glob
import json
import os
import sys

KEYS = (
    "aux_loss",
    "sup_loss",
    "acc",
    "g_total_global",
    "g_total_global_max",
    "g_sup_main",
    "g_aux_main",
    "g_total_decoder",
    "g_total_aux_head",
    "g_total_classifier",
    "update_main",
    "update_classifier",
    "logit_std",
    "entropy",
    "top_class_fraction",
    "dead_relu",
    "h_absmean",
)


def main(directory, output):
    runs = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path) as file:
            run = json.load(file)
        name = os.path.basename(path).removesuffix(".json")
        epochs = run["epochs"]
        compact = {
            key: run[key]
            for key in (
                "args",
                "seconds",
                "final_val_acc",
                "best_val_acc",
                "best_epoch",
                "final_raw_val_acc",
                "final_val_acc_after_finalize",
                "fine_validation",
            )
            if key in run
        }
        compact["epochs"] = {
            "epoch": [e["epoch"] for e in epochs],
            "phase": [e["phase"] for e in epochs],
            **{key: [round(e[key], 4) for e in epochs] for key in KEYS},
            "val_acc": [round(e["val"]["acc"], 4) for e in epochs],
            "val_loss": [round(e["val"]["loss"], 4) for e in epochs],
            "val_top_class_fraction": [round(e["val"]["top_class_fraction"], 4) for e in epochs],
        }
        if "val_ema" in epochs[0]:
            compact["epochs"]["val_ema_acc"] = [round(e["val_ema"]["acc"], 4) for e in epochs]
        runs[name] = compact
    with open(output, "w") as file:
        json.dump(runs, file, indent=None, separators=(",", ":"))
        file.write("\n")
    print(f"{len(runs)} runs -> {output}")


if __name__ == "__main__":
    main(*sys.argv[1:])
