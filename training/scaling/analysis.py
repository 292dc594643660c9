"""The scaling experiment's analysis: power-law fits, amortisation, loss by position; the report.

Loss of a run at an evaluation = the mean cross-entropy over all positions of the held-out
windows (the same windows for every run). Loss(L) = its mean over seeds. The fit is ordinary
least squares of log loss on log L: loss = A * L^-alpha. Its interval is a percentile
bootstrap: the held-out windows are resampled (the same resample for every L, as every run is
scored on the same windows), and the seeds of each L, 2,000 times.

The seed paper's claims the report sets the figures beside (PAPER) are quoted from the issue.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..metrics import POSITION_EDGES
from . import Preset

BOOTSTRAP = 2000
PAPER = {
    "alpha": "alpha rises from about 0.129 to 0.308 as training proceeds",
    "wall_time": "longer sequences amortise their linearly larger wall-time cost: lower loss at "
    "equal wall time",
    "positions": "longer sequences improve early and late positions alike",
}


def fit_power_law(lengths, losses) -> tuple[float, float, float]:
    """(A, alpha, r2) of loss = A * L^-alpha, least squares in log-log space."""
    x, y = np.log(np.asarray(lengths, float)), np.log(np.asarray(losses, float))
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1 - (residual**2).sum() / total if total > 0 else 1.0
    return float(math.exp(intercept)), float(-slope), float(r2)


def load_runs(preset: Preset, folder: Path) -> dict:
    """{L: {"records": [...], "losses": [seeds, evals, windows, T], "control": [seeds, W, T]}}"""
    runs = {}
    for length in preset.lengths:
        records, losses, control = [], [], []
        for seed in preset.seeds:
            records.append(json.loads((folder / f"L{length}-s{seed}.json").read_text()))
            with np.load(folder / f"L{length}-s{seed}.npz") as arrays:
                losses.append(arrays["losses"])
                control.append(arrays["control"])
        runs[length] = {
            "records": records,
            "losses": np.stack(losses),
            "control": np.stack(control),
        }
    return runs


def _buckets(length: int) -> list[tuple[int, int]]:
    """Position buckets [a, b) of metrics.POSITION_EDGES within a window of `length` frames."""
    edges = [e for e in POSITION_EDGES if e < length] + [length]
    return list(zip(edges, edges[1:], strict=False))


def analyse(preset: Preset, runs: dict, per_step: dict[int, float] | None = None) -> dict:
    """Every figure of the report, as plain data. `per_step`: {L: seconds per step} measured
    with the lengths interleaved (runs.time_steps); wall time at an evaluation is its step
    times that. Without it, the runs' own clocks (each run measured at its own time)."""
    lengths = list(preset.lengths)
    rng = np.random.default_rng(0)
    windows = runs[lengths[0]]["losses"].shape[2]
    # per L: [seeds, evals, windows] mean loss over positions of each window
    per_window = {length: runs[length]["losses"].mean(-1) for length in lengths}
    fits = []
    for k, step in enumerate(preset.eval_steps):
        means = [float(per_window[length][:, k].mean()) for length in lengths]
        a, alpha, r2 = fit_power_law(lengths, means)
        samples = []
        for _ in range(BOOTSTRAP):
            w = rng.integers(0, windows, windows)
            boot = []
            for length in lengths:
                seeds = per_window[length].shape[0]
                s = rng.integers(0, seeds, seeds)
                boot.append(per_window[length][s][:, k][:, w].mean())
            samples.append(fit_power_law(lengths, boot)[1])
        low, high = np.percentile(samples, [2.5, 97.5])
        fits.append(
            {
                "step": step,
                "frames_seen": step * preset.frames_per_step,
                "losses": dict(zip(map(str, lengths), _rounded(means), strict=True)),
                "A": round(a, 4),
                "alpha": round(alpha, 4),
                "alpha_95": [round(float(low), 4), round(float(high), 4)],
                "r2": round(r2, 4),
            }
        )
    wall = {}
    for length in lengths:
        records = runs[length]["records"]
        measured = np.mean([[e["train_seconds"] for e in r["evals"]] for r in records], 0)
        own = float(measured[-1] / preset.steps)
        step_seconds = per_step[length] if per_step else own
        wall[str(length)] = {
            "seconds": _rounded(np.asarray(preset.eval_steps) * step_seconds),
            "loss": _rounded(per_window[length].mean((0, 2))),
            "seconds_per_step": round(step_seconds, 4),
            "run_seconds_per_step": round(own, 4),  # the run's own clock
        }
    positions, control = {}, {}
    buckets = _buckets(preset.eval_length)
    for length in lengths:
        last = runs[length]["losses"][:, -1]  # [seeds, windows, T] at the last evaluation
        cut = runs[length]["control"]
        positions[str(length)] = {
            f"{a}-{b - 1}": round(float(last[..., a:b].mean()), 4) for a, b in buckets
        }
        control[str(length)] = {
            f"{a}-{b - 1}": round(float(cut[..., a:b].mean()), 4) for a, b in buckets
        }
    first = runs[lengths[0]]["records"][0]
    return {
        "preset": preset.name,
        "lengths": lengths,
        "seeds": list(preset.seeds),
        "frames_per_step": preset.frames_per_step,
        "steps": preset.steps,
        "eval_windows": windows,
        "eval_length": preset.eval_length,
        "control_context": preset.control_context,
        "parameters": first["parameters"],
        "train_frames": {str(n): runs[n]["records"][0]["train_frames"] for n in lengths},
        "frames_per_run": preset.steps * preset.frames_per_step,
        "repeated_frames": max(r["repeated_frames"] for n in lengths for r in runs[n]["records"]),
        "fits": fits,
        "wall_time": wall,
        "positions": positions,
        "control": control,
        "paper": PAPER,
    }


def _rounded(values) -> list[float]:
    return [round(float(v), 4) for v in values]


# -- the report ---------------------------------------------------------------------------------


def markdown(report: dict, extra: dict | None = None) -> str:
    """The report as Markdown tables (the README shows the quick preset's)."""
    lengths = report["lengths"]
    lines = [
        f"# Loss against trained sequence length ({report['preset']} preset)",
        "",
        f"{report['parameters']:,} parameters; batch x L = {report['frames_per_step']} frames "
        f"per step, {report['steps']} steps ({report['frames_per_run']:,} frames per run, "
        f"{report['repeated_frames']:,} seen twice); seeds {', '.join(map(str, report['seeds']))}; "
        f"held-out: {report['eval_windows']} windows of {report['eval_length']} frames"
        + (f" from {extra['held_out']}" if extra and extra.get("held_out") else "")
        + ".",
        "",
        "## Held-out loss by trained L, and the power-law fit loss = A * L^-alpha",
        "",
        "| step | frames | " + " | ".join(f"L={n}" for n in lengths) + " | A | alpha [95%] | R^2 |",
        "|---:|---:|" + "---:|" * len(lengths) + "---:|---|---:|",
    ]
    for fit in report["fits"]:
        low, high = fit["alpha_95"]
        lines.append(
            f"| {fit['step']} | {fit['frames_seen']:,} | "
            + " | ".join(f"{fit['losses'][str(n)]:.4f}" for n in lengths)
            + f" | {fit['A']:.3f} | {fit['alpha']:.4f} [{low:.4f}, {high:.4f}] | {fit['r2']:.3f} |"
        )
    lines += [
        "",
        "## Wall time (training only; evaluation not counted)",
        "",
        "s/step: measured with the lengths interleaved (the run's own clock beside it); "
        "seconds at an evaluation = its step x s/step.",
        "",
        "| L | batch | s/step | run's s/step | "
        + " | ".join(f"loss @ eval {i + 1}" for i in range(len(report["fits"])))
        + " | seconds at each eval |",
        "|---:|---:|---:|---:|" + "---:|" * len(report["fits"]) + "---|",
    ]
    for n in lengths:
        wall = report["wall_time"][str(n)]
        lines.append(
            f"| {n} | {report['frames_per_step'] // n} | {wall['seconds_per_step']:.3f} | "
            f"{wall['run_seconds_per_step']:.3f} | "
            + " | ".join(f"{v:.4f}" for v in wall["loss"])
            + " | "
            + ", ".join(f"{s:.0f}" for s in wall["seconds"])
            + " |"
        )
    buckets = list(report["positions"][str(lengths[0])])
    lines += [
        "",
        "## Held-out loss by position in the window (last evaluation)",
        "",
        f"Full context, and (control) the state reset every {report['control_context']} frames.",
        "",
        "| L | " + " | ".join(buckets) + " | " + " | ".join(f"control {b}" for b in buckets) + " |",
        "|---:|" + "---:|" * (2 * len(buckets)),
    ]
    for n in lengths:
        full, cut = report["positions"][str(n)], report["control"][str(n)]
        lines.append(
            f"| {n} | "
            + " | ".join(f"{full[b]:.4f}" for b in buckets)
            + " | "
            + " | ".join(f"{cut[b]:.4f}" for b in buckets)
            + " |"
        )
    lines += ["", "## The paper's claims", ""]
    lines += [f"- {claim}" for claim in report["paper"].values()]
    return "\n".join(lines) + "\n"


def plot(report: dict, folder: Path) -> list[Path]:
    """loss_vs_length.png, loss_vs_time.png, loss_by_position.png under `folder`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    lengths = report["lengths"]
    paths = []
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for fit in report["fits"]:
        losses = [fit["losses"][str(n)] for n in lengths]
        (line,) = ax.plot(lengths, losses, "o", label=f"step {fit['step']}")
        xs = np.geomspace(lengths[0], lengths[-1], 50)
        ax.plot(
            xs,
            fit["A"] * xs ** -fit["alpha"],
            "-",
            color=line.get_color(),
            label=f"  alpha {fit['alpha']:.3f}",
        )
    ax.set(xscale="log", yscale="log", xlabel="trained sequence length L", ylabel="held-out loss")
    ax.minorticks_off()
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2f"))
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6))
    ax.legend(fontsize=7)
    ax.set_title(f"held-out loss against L ({report['preset']})")
    paths.append(_save(fig, folder / "loss_vs_length.png"))

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for n in lengths:
        wall = report["wall_time"][str(n)]
        ax.plot(wall["seconds"], wall["loss"], "o-", label=f"L={n}")
    ax.set(xlabel="training wall time (s)", ylabel="held-out loss")
    ax.legend(fontsize=7)
    ax.set_title("held-out loss against wall time")
    paths.append(_save(fig, folder / "loss_vs_time.png"))

    fig, ax = plt.subplots(figsize=(6, 4.2))
    buckets = list(report["positions"][str(lengths[0])])
    for n in lengths:
        (line,) = ax.plot(buckets, [report["positions"][str(n)][b] for b in buckets], "o-")
        line.set_label(f"L={n}")
        ax.plot(
            buckets,
            [report["control"][str(n)][b] for b in buckets],
            ":",
            color=line.get_color(),
        )
    ax.set(xlabel="position in the held-out window", ylabel="held-out loss")
    ax.legend(fontsize=7, title=f"dotted: reset every {report['control_context']}")
    ax.set_title("held-out loss by position (last evaluation)")
    paths.append(_save(fig, folder / "loss_by_position.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
