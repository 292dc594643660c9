"""A sweep's report: accuracy by model and depth as table.md and as accuracy_vs_depth.png; and
repl_frames' table and plot (frames_markdown, frames_plot)."""

from __future__ import annotations

from pathlib import Path


def model_label(run: dict, budgets: int = 1) -> str:
    """``transformer x4``; with more than one budget in the sweep, ``transformer x4 @20k``."""
    label = f"{run['backbone']} x{run['n_layers']}"
    if budgets > 1:
        label += f" @{run['param_budget'] / 1000:g}k"
    return label


def budget_count(results: dict) -> int:
    return len(results["config"].get("param_budgets", ())) or 1


def axis(cfg: dict) -> str:
    """What the sweep's lengths count: ``serial depth`` unless the config says (``axis``)."""
    return cfg.get("axis", "serial depth")


def cell(run: dict, depth: str) -> str:
    """Accuracy (%), and for a mean over seeds its range: ``87 (84-90)``."""
    text = f"{100 * run['accuracy'][depth]:.0f}"
    if "accuracy_range" in run:
        lo, hi = run["accuracy_range"][depth]
        text += f" ({100 * lo:.0f}–{100 * hi:.0f})"
    return text


def markdown_table(results: dict) -> str:
    """Accuracy (%) by model and depth, one table per task; depths beyond training are starred.
    Rows averaged over seeds (``seeds``, ``accuracy_range``) show the mean and the range."""
    cfg = results["config"]
    lines = []
    for task_name, info in results["tasks"].items():
        runs = [r for r in results["runs"] if r["task"] == task_name]
        if not runs:
            continue
        depths = list(runs[0]["accuracy"])
        header = [f"{d}*" if int(d) > cfg["train_max_depth"] else d for d in depths]
        lines += [
            f"**{task_name}** (sequence length {info['seq_len']}, {cfg['steps'][task_name]} steps of "
            f"{cfg['batch_size']}, chance {100 * info['chance']:.0f}%"
            + (
                f"; {100 * info['group_chance']:.0f}% knowing the group and the first assignment"
                if info.get("group_chance", 0) > info["chance"] + 1e-9
                else ""
            )
            + ")",
            "",
            "| model | d_model | params | " + " | ".join(header) + " |",
            "|---|---:|---:|" + "---:|" * len(depths),
        ]
        for r in runs:
            cells = " | ".join(cell(r, d) for d in depths)
            label = model_label(r, budget_count(results))
            lines.append(f"| {label} | {r['d_model']} | {r['params']:,} | {cells} |")
        lines.append("")
    seeds = max((len(r.get("seeds", ())) for r in results["runs"]), default=0)
    lines.append(
        f"Final-answer accuracy (%) by {axis(cfg)}, {cfg['eval_samples']} sequences per cell"
        + (f", mean of {seeds} seeds (min–max)" if seeds > 1 else "")
        + f". Trained on {axis(cfg)}s 1..{cfg['train_max_depth']}; starred ones are longer than any"
        " seen in training."
    )
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """Accuracy against depth, one panel per task, one line per model (PNG). With several
    parameter budgets, line styles tell the budgets apart (solid: the largest); rows averaged
    over seeds are drawn as their mean with the range shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in results["tasks"] if any(r["task"] == t for r in results["runs"])]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    families = {
        "transformer": plt.cm.Blues,
        "mamba": plt.cm.Greens,
        "lstm": plt.cm.Reds,
        "residual_lstm": plt.cm.Purples,
        "deltanet": plt.cm.Oranges,
        "deltanet_neg": plt.cm.Greys,
    }
    budgets = sorted({r.get("param_budget") for r in results["runs"]}, key=lambda b: b or 0)
    styles = ["-", "--", ":", "-."]
    for ax, task_name in zip(axes[0], tasks, strict=True):
        runs = [r for r in results["runs"] if r["task"] == task_name]
        for r in runs:
            style = styles[(len(budgets) - 1 - budgets.index(r.get("param_budget"))) % len(styles)]
            sizes = sorted({x["n_layers"] for x in runs if x["backbone"] == r["backbone"]})
            shade = 0.45 + 0.55 * (sizes.index(r["n_layers"]) + 1) / len(sizes)  # deeper = darker
            color = families.get(r["backbone"], plt.cm.Greys)(shade)
            depths = [int(d) for d in r["accuracy"]]
            accuracy = [100 * a for a in r["accuracy"].values()]
            ax.plot(
                depths,
                accuracy,
                style,
                marker="o",
                ms=3,
                color=color,
                label=model_label(r, len(budgets)),
            )
            if "accuracy_range" in r:
                lo, hi = zip(*(r["accuracy_range"][d] for d in r["accuracy"]), strict=True)
                ax.fill_between(
                    depths, [100 * x for x in lo], [100 * x for x in hi], color=color, alpha=0.15
                )
        info = results["tasks"][task_name]
        ax.axhline(100 * info["chance"], color="grey", ls=":", label="chance")
        if info.get("group_chance", 0) > info["chance"] + 1e-9:
            ax.axhline(100 * info["group_chance"], color="grey", ls="-.", label="knowing the group")
        ax.axvline(
            results["config"]["train_max_depth"],
            color="grey",
            ls="--",
            lw=0.8,
            label="longest trained",
        )
        ax.set_xscale("log", base=2)
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.minorticks_off()
        ax.set_xlabel(axis(results["config"]))
        ax.set_ylabel("final-answer accuracy (%)")
        ax.set_ylim(0, 102)
        ax.set_title(task_name)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower left", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def frames_markdown(results: dict) -> str:
    """repl_frames' table: accuracy (%) by density and trace length; lengths beyond training
    starred."""
    cfg = results["config"]
    lo, hi = cfg["train_lengths"]
    lines = [
        f"REPL traces as frames: {cfg['group']}, {cfg['n_vars']} variables"
        + (", the screen cleared after every entry" if cfg.get("clear") else "")
        + (f", seed {cfg['seed']}" if cfg.get("seed") else "")
        + f", trained on {lo}..{hi} swaps, {cfg['steps']} steps of {cfg['batch_size']} traces; "
        f"{cfg['eval_traces']} fresh traces per length. Model (state-blind predictor) in %.",
        "",
    ]
    for r in results["runs"]:
        lengths = list(r["by_length"])
        header = [f"{n}*" if int(n) > hi else n for n in lengths]
        lines += [
            f"**reveal density {r['density']}** ({r['params']:,} parameters, "
            f"{r['train_frames']:,} training frames in {r['train_seconds']:.0f} s, "
            f"final loss {r['final_train_loss']})",
            "",
            "| swaps | " + " | ".join(header) + " |",
            "|---|" + "---:|" * len(lengths),
        ]
        for name, key in (
            ("answer keys, all reveals", "key"),
            ("answer keys, final reveal", "final_key"),
            ("whole final answer", "final_answer"),
        ):
            cells = [
                f"{100 * s[key]:.0f} ({100 * s['chance_' + key]:.0f})"
                for s in r["by_length"].values()
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        if "screen_final_key" in next(iter(r["by_length"].values())):
            cells = [f"{100 * s['screen_final_key']:.0f}" for s in r["by_length"].values()]
            lines.append("| final-reveal keys, screen only | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        "Starred lengths are longer than any trained on. Screen only: the same model with its "
        "state reset at every frame, so that it reads the current screen alone. "
        f"Wall time {results['wall_seconds']:.0f} s."
    )
    return "\n".join(lines) + "\n"


def frames_plot(results: dict, path: Path) -> None:
    """repl_frames' plot: final-reveal answer-key accuracy against trace length, one line per
    density, with the state-blind predictor dashed and the screen-only control dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results["runs"]:
        xs = [int(n) for n in r["by_length"]]
        line = ax.plot(xs, [s["final_key"] for s in r["by_length"].values()], "o-")[0]
        ax.plot(
            xs, [s["chance_final_key"] for s in r["by_length"].values()], "--",
            color=line.get_color(), alpha=0.6,
        )  # fmt: skip
        if "screen_final_key" in next(iter(r["by_length"].values())):
            ax.plot(
                xs, [s["screen_final_key"] for s in r["by_length"].values()], ":", marker="x",
                color=line.get_color(), alpha=0.8,
            )  # fmt: skip
        line.set_label(f"density {r['density']}")
    ax.axvline(results["config"]["train_lengths"][1], color="grey", lw=0.8)
    ax.set_xlabel("swaps in the trace")
    ax.set_ylabel("final-reveal answer-key accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend()
    ax.set_title("REPL traces as frames (dashed: state-blind; dotted: screen only)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
