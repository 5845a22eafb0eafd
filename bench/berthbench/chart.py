"""Standalone: python3 chart.py results.json out.png

Horizontal bars of the Berth subject's median (berth-runtime, or berth for the
image and engine comparisons) divided by each peer's median, per comparison and
metric (< 1 means Berth is faster / smaller for lower-is-better metrics, > 1
means Berth is better for higher-is-better ones such as throughput). Writes
nothing and prints why when there is no ratio to draw."""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src) as f:
        data = json.load(f)
    labels, values, good = [], [], []
    for comp in data.get("comparisons", []):
        metrics = {m["key"]: m for m in comp.get("metrics", [])}
        for key, per_peer in comp.get("ratios", {}).items():
            for peer, ratio in per_peer.items():
                if ratio is None:
                    continue
                m = metrics.get(key, {"label": key})
                label = m["label"].split(" (")[0]
                label = label if len(label) <= 60 else label[:57] + "..."
                labels.append(f"{comp['name']}: {label}\n{comp.get('baseline', 'berth-runtime')} / {peer}")
                values.append(ratio)
                good.append(ratio >= 1 if m.get("better") == "higher" else ratio <= 1)
    if not values:
        print("no ratios to draw (berth-runtime not measured)")
        return 0
    fig, ax = plt.subplots(figsize=(9, 0.7 * len(values) + 1.5))
    y = list(range(len(values)))[::-1]
    colors = ["#2a9d8f" if g else "#e76f51" for g in good]
    ax.barh(y, values, color=colors)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    for yi, v in zip(y, values):
        ax.text(v, yi, f" {v:.2f}x", va="center", fontsize=8)
    ax.set_xlabel("Berth median / peer median  (green: Berth better; < 1 is better\nfor times and sizes, > 1 for throughput)")
    ax.set_xlim(0, max(values + [1.0]) * 1.25)
    ax.set_title(f"Berth bench {data.get('started', '')}")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
