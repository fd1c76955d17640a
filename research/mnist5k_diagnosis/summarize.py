"""Tables from the runs of `diagnose_mnist5k.py`.

    python -m research.mnist5k_diagnosis.summarize runs/diag/base-s0          # per-epoch curves
    python -m research.mnist5k_diagnosis.summarize --steps=17:20 runs/diag/x  # per-10-step means
    python -m research.mnist5k_diagnosis.summarize --table runs/diag/*.json   # one row a setting

Collapse: the run ends more than COLLAPSE_DROP below its best validation
accuracy; a fall: validation accuracy down more than COLLAPSE_DROP in one
epoch (see `events`).
"""

import argparse
import collections
import json
import re
import statistics

import numpy as np

COLLAPSE_DROP = 0.10


def load(path):
    path = path.removesuffix(".json").removesuffix(".npz").removesuffix(".log")
    with open(path + ".json") as file:
        return path, json.load(file)


def events(run):
    """`(collapsed, falls, stuck)`: whether the final validation accuracy is
    more than COLLAPSE_DROP below the run's best; the epochs at which it
    fell more than COLLAPSE_DROP in one epoch, once it had passed 0.25;
    and the number of joint epochs at chance (validation accuracy <= 0.15)."""
    joint = [e for e in run["epochs"] if e["phase"] == "joint"]
    key = "val_ema" if "val_ema" in joint[0] else "val"
    accs = [e[key]["acc"] for e in joint]
    started, falls = False, []
    for e, previous, acc in zip(joint[1:], accs, accs[1:]):
        started = started or previous > 0.25
        if started and previous - acc > COLLAPSE_DROP:
            falls.append(int(e["epoch"]))
    collapsed = max(accs) - accs[-1] > COLLAPSE_DROP
    stuck = sum(acc <= 0.15 for acc in accs)
    return collapsed, falls, stuck


def curves(path, run):
    print(path, run["args"])
    keys = [
        ("aux_loss", "aux"),
        ("sup_loss", "sup"),
        ("acc", "acc"),
        ("g_total_global", "g_all"),
        ("g_total_global_max", "g_all_mx"),
        ("g_sup_main", "gs_main"),
        ("g_aux_main", "ga_main"),
        ("cos_sup_aux_main", "cos"),
        ("g_total_decoder", "g_dec"),
        ("g_total_aux_head", "g_ahead"),
        ("g_total_classifier", "g_cls"),
        ("g_total_classifier_max", "g_cls_mx"),
        ("update_main", "u_main"),
        ("update_classifier", "u_cls"),
        ("logit_std", "lstd"),
        ("entropy", "ent"),
        ("dead_relu", "dead"),
        ("h_saturated", "hsat"),
    ]
    print(
        "ep  " + " ".join(f"{name:>8s}" for _, name in keys) + "  val_acc val_loss val_top val_lstd"
    )
    for e in run["epochs"]:
        print(
            f"{int(e['epoch']):2d}  "
            + " ".join(f"{e.get(k, float('nan')):8.3f}" for k, _ in keys)
            + f"  {e['val']['acc']:7.3f} {e['val']['loss']:8.3f} "
            f"{e['val']['top_class_fraction']:7.2f} {e['val']['logit_std']:8.2f}"
        )
    print("collapse, falls:", events(run), f"seconds {run['seconds']:.0f}")


def steps(path, first, last, every=10):
    data = np.load(path + ".npz")
    keys = [
        "sup_loss",
        "aux_loss",
        "acc",
        "g_total_global",
        "g_sup_main",
        "g_aux_main",
        "cos_sup_aux_main",
        "g_total_classifier",
        "update_main",
        "update_classifier",
        "logit_std",
        "top_class_fraction",
        "dead_relu",
        "h_saturated",
        "lr",
    ]
    mask = (data["epoch"] >= first) & (data["epoch"] <= last)
    print("epoch step " + " ".join(f"{k[:10]:>10s}" for k in keys))
    index = np.flatnonzero(mask)
    for start in range(0, len(index), every):
        chunk = index[start : start + every]
        print(
            f"{int(data['epoch'][chunk[0]]):5d} {int(data['step'][chunk[0]]):4d} "
            + " ".join(f"{np.mean(data[k][chunk]):10.4f}" for k in keys)
            + f"   max g_all {np.max(data['g_total_global'][chunk]):.3f}"
        )


def table(paths):
    settings = collections.OrderedDict()
    for path in paths:
        path, run = load(path)
        name = re.sub(r"-s\d+$", "", path.split("/")[-1])
        settings.setdefault(name, []).append((path, run))
    print(
        "| setting | seeds | final val acc per seed | best (epoch) per seed | final mean ± sd "
        "| best mean | collapsed | falls (epochs) | joint epochs at chance | s per run |"
    )
    print("|---|---|---|---|---|---|---|---|---|---:|")
    for name, runs in settings.items():
        runs.sort(key=lambda r: r[1]["args"]["seed"])
        finals = [r["final_val_acc"] for _, r in runs]
        bests = [r["best_val_acc"] for _, r in runs]
        sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
        ev = [events(r) for _, r in runs]
        bests_text = ", ".join(f"{r['best_val_acc']:.3f} ({r['best_epoch']:d})" for _, r in runs)
        print(
            f"| {name} | {','.join(str(r['args']['seed']) for _, r in runs)} "
            f"| {', '.join(f'{a:.3f}' for a in finals)} "
            f"| {bests_text} "
            f"| {statistics.mean(finals):.3f} ± {sd:.3f} | {statistics.mean(bests):.3f} "
            f"| {sum(c for c, _, _ in ev)}/{len(ev)} "
            f"| {'; '.join(','.join(map(str, f)) or '-' for _, f, _ in ev)} "
            f"| {', '.join(str(n) for _, _, n in ev)} "
            f"| {statistics.mean(r['seconds'] for _, r in runs):.0f} |"
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--steps", default=None, help="first:last epoch, per-10-step means")
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    if args.table:
        table(args.paths)
        return
    for path in args.paths:
        path, run = load(path)
        if args.steps:
            first, last = map(int, args.steps.split(":"))
            steps(path, first, last, args.every)
        else:
            curves(path, run)


if __name__ == "__main__":
    main()
