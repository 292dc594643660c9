"""The scaling experiment (training/scaling): fits, the context control, the whole run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ghframes import open_dataset
from ghframes.errors import GhframesError
from ghframes.training.scaling import PRESETS, Preset
from ghframes.training.scaling.__main__ import main, run
from ghframes.training.scaling.analysis import analyse, fit_power_law
from ghframes.training.scaling.runs import HeldOutWindows, _cut, model_for, run_config
from ghframes.training.train import build_model, make_loader


def test_power_law_fit_recovers_a_and_alpha():
    lengths = [16, 32, 64, 128, 256]
    a, alpha, r2 = fit_power_law(lengths, [3.1 * n**-0.2 for n in lengths])
    assert a == pytest.approx(3.1) and alpha == pytest.approx(0.2) and r2 == pytest.approx(1)
    # a loss that does not fall with L has alpha 0, one that rises a negative alpha
    assert fit_power_law(lengths, [2.0] * 5)[1] == pytest.approx(0, abs=1e-12)
    assert fit_power_law(lengths, [n**0.1 for n in lengths])[1] == pytest.approx(-0.1)


def _fake_runs(preset: Preset, alphas: list[float], noise: float) -> dict:
    """Runs whose held-out window losses follow A * L^-alpha(eval) with per-window noise."""
    rng = np.random.default_rng(1)
    runs = {}
    windows, t = 40, preset.eval_length
    for length in preset.lengths:
        seeds = []
        for _ in preset.seeds:
            per_eval = [
                3.0 * length**-alpha * np.exp(rng.normal(0, noise, (windows, 1)))
                + np.zeros((windows, t))
                for alpha in alphas
            ]
            seeds.append(np.stack(per_eval))
        records = [
            {
                "parameters": 1,
                "train_frames": 10**6,
                "repeated_frames": 0,
                "steps": preset.steps,
                "evals": [{"train_seconds": 1.0 + k} for k in range(len(alphas))],
            }
            for _ in preset.seeds
        ]
        runs[length] = {
            "records": records,
            "losses": np.stack(seeds).astype(np.float32),
            "control": np.stack(seeds)[:, -1].astype(np.float32),
        }
    return runs


def test_analysis_fits_each_evaluation_with_an_interval_that_holds_the_truth():
    preset = dataclasses.replace(PRESETS["test"], lengths=(4, 8, 16), steps=3, eval_points=3)
    preset = dataclasses.replace(preset, frames_per_step=16, control_context=4)
    alphas = [0.1, 0.2, 0.3]
    report = analyse(preset, _fake_runs(preset, alphas, noise=0.05))
    assert [f["step"] for f in report["fits"]] == preset.eval_steps == [1, 2, 3]
    for fit, truth in zip(report["fits"], alphas, strict=True):
        low, high = fit["alpha_95"]
        assert low <= truth <= high and low <= fit["alpha"] <= high
        assert fit["alpha"] == pytest.approx(truth, abs=0.05)
        assert high - low < 0.2
    # no noise: the interval closes on the value
    exact = analyse(preset, _fake_runs(preset, alphas, noise=0.0))
    for fit, truth in zip(exact["fits"], alphas, strict=True):
        assert fit["alpha_95"][0] == pytest.approx(truth, abs=1e-3)
        assert fit["alpha_95"][1] == pytest.approx(truth, abs=1e-3)


def test_presets_refuse_a_batch_that_does_not_divide():
    with pytest.raises(GhframesError, match="frames_per_step 100 is not a multiple of L = 16"):
        dataclasses.replace(PRESETS["quick"], frames_per_step=100)
    with pytest.raises(GhframesError, match="control_context 48 must divide"):
        dataclasses.replace(PRESETS["quick"], control_context=48)
    for preset in PRESETS.values():  # every L trains on the same frames per step
        assert {preset.batch_size(n) * n for n in preset.lengths} == {preset.frames_per_step}
        assert preset.eval_steps[-1] == preset.steps


@pytest.fixture(scope="module")
def scaling_data(tmp_path_factory):
    """The test preset's corpus, crawled and rendered by `python -m ghframes` subprocesses."""
    from conftest import short_tmpdir
    from ghframes.training.scaling.corpus import build_data

    data = str(tmp_path_factory.mktemp("scaling") / "data")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_TMPDIR", short_tmpdir())
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")
        return build_data(PRESETS["test"], data, log=lambda _: None)


def test_the_context_control_scores_the_same_frames_cut_into_pieces(scaling_data):
    preset = PRESETS["test"]
    held = HeldOutWindows(preset, scaling_data, torch.device("cpu"))
    cfg = run_config(preset, scaling_data, Path("."), 8, 0)
    model_cfg = model_for(preset, make_loader(cfg, "train", 0, 1))
    model, _ = build_model(cfg, model_cfg, torch.device("cpu"))
    full = held.losses(model, 4)
    assert full.shape == (held.count, preset.eval_length)
    # cut at the window's own length, the control is the same computation
    np.testing.assert_array_equal(held.losses(model, 4, context=preset.eval_length), full)
    cut = held.losses(model, 4, context=4)
    # the first piece of each window starts fresh in both; later ones differ in context
    np.testing.assert_allclose(cut[:, :4], full[:, :4], rtol=1e-5, atol=1e-6)
    assert not np.allclose(cut[:, 4:], full[:, 4:])
    pieces = _cut(held.batch, 4)
    assert pieces["frames"].shape[:2] == (held.count * 2, 4) and pieces["reset"][:, 0].all()


def test_the_held_out_repository_is_never_trained_on(scaling_data):
    preset = PRESETS["test"]
    held = HeldOutWindows(preset, scaling_data, torch.device("cpu"))
    cfg = run_config(preset, scaling_data, Path("."), 4, 0)
    train = make_loader(cfg, "train", 0, 1)
    trained = {train.sessions[i].id for i in train.split_indices}
    repos = {s.repo for s in open_dataset(scaling_data).sessions() if s.id in trained}
    assert held.repos and not repos & set(held.repos)


def test_the_test_preset_runs_reports_and_keeps_finished_runs(scaling_data, tmp_path, capsys):
    out = tmp_path / "scaling"
    report = run("test", str(out), scaling_data)
    preset = PRESETS["test"]
    assert [f["step"] for f in report["fits"]] == preset.eval_steps
    assert report["repeated_frames"] == 0
    for fit in report["fits"]:
        assert set(fit["losses"]) == {str(n) for n in preset.lengths}
        assert all(np.isfinite(v) for v in fit["losses"].values())
        assert fit["alpha_95"][0] <= fit["alpha"] <= fit["alpha_95"][1]
    stored = json.loads((out / "report.json").read_text())
    assert stored["fits"] == report["fits"]
    md = (out / "report.md").read_text()
    assert "alpha [95%]" in md and "0.129 to 0.308" in md
    for name in ("loss_vs_length", "loss_vs_time", "loss_by_position"):
        with Image.open(out / f"{name}.png") as image:
            assert image.format == "PNG" and image.size[0] > 300
    for length in preset.lengths:
        record = json.loads((out / "runs" / f"L{length}-s0.json").read_text())
        assert record["batch_size"] * length == preset.frames_per_step
        assert len(record["train_loss"]) == preset.steps
    timing = json.loads((out / "runs" / "timing.json").read_text())["seconds"]
    for length in preset.lengths:
        wall = report["wall_time"][str(length)]
        assert wall["seconds_per_step"] == pytest.approx(timing[str(length)], abs=1e-4)
        expected = [round(s * wall["seconds_per_step"], 4) for s in preset.eval_steps]
        assert wall["seconds"] == pytest.approx(expected, abs=1e-3)
    capsys.readouterr()
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    again = run("test", str(out), scaling_data)
    assert "done before, kept" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == mtimes
    assert again["fits"] == report["fits"] and again["wall_time"] == report["wall_time"]


def test_bad_data_is_one_line(tmp_path, capsys):
    assert main(["--preset", "test", "--out", str(tmp_path / "o"), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scaling: error: ") and str(tmp_path) in err[0]


def test_throughput_reports_frames_memory_and_flops_on_a_cpu(tmp_path, capsys):
    from ghframes.training.fake_batches import FakeBatches
    from ghframes.training.model import PRESETS, ActionModel
    from ghframes.training.scaling.throughput import flops_per_frame, measure

    small = {"merge_dims": (8, 16, 32), "stage_blocks": (1, 0), "d_model": 32, "heads": 2}
    result = measure("tiny", "cpu", [4, 32], 1, 1, 0, "off", model_overrides=small)
    short, long = result["rows"]
    assert [short["L"], long["L"]] == [4, 32] and result["device"] == "cpu"
    for row in result["rows"]:
        assert row["frames_per_s"] == pytest.approx(
            row["L"] / row["seconds_per_step"], rel=0.01, abs=0.06
        )
        assert row["cells_per_s"] / (48 * 160) == pytest.approx(
            row["frames_per_s"], rel=0.01, abs=0.06
        )
        assert row["mfu"] is None  # no known peak for a CPU
    # streaming BPTT: autograd holds one chunk (16 frames) whatever L beyond it
    assert long["peak_memory_bytes"] < 8 * short["peak_memory_bytes"]
    assert result["memory_long_over_short"] == pytest.approx(
        long["peak_memory_bytes"] / short["peak_memory_bytes"], abs=1e-3
    )
    # a frame's FLOPs: at least forward and backward (3x) of the first 2x2 merge's linear layer
    cfg = dataclasses.replace(PRESETS["tiny"], action_vocab=len(FakeBatches.action_names), **small)
    per_frame = flops_per_frame(ActionModel(cfg), torch.device("cpu"), None)
    assert per_frame == pytest.approx(result["model_flops_per_frame"], rel=1e-6)
    first_merge = 2 * (48 * 160 // 4) * 4 * cfg.merge_dims[0] * cfg.merge_dims[1]
    assert per_frame > 3 * first_merge


def test_throughput_refuses_bad_lengths_in_one_line(capsys):
    from ghframes.training.scaling.throughput import main as throughput

    assert throughput(["--device", "cpu", "--lengths", "16,x"]) == 2
    assert capsys.readouterr().err.strip() == "throughput: error: --lengths 16,x: not integers"
    assert throughput(["--device", "cpu", "--lengths", "0"]) == 2
    assert "positive integers" in capsys.readouterr().err
