"""The trainer's configuration: precedence of defaults, preset, file, environment and flags;
--help of every flag; --data required; bad values named in one line."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest
from test_train import TINY

from ghframes.errors import GhframesError
from ghframes.training.config import TrainConfig, build_parser, resolve
from ghframes.training.model import PRESETS
from ghframes.training.train import main

FAKE = {"GHFRAMES_TRAIN_DATA": "fake"}  # an environment that names the synthetic sessions


def test_config_precedence(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        'preset = "tiny"\n[train]\ndata = "fake"\nsteps = 5\nbatch_size = 3\n[model]\nd_model = 48\nlstm_layers = 3\ncolour = false\n'
    )
    env = {
        "GHFRAMES_TRAIN_STEPS": "7",
        "GHFRAMES_TRAIN_SEQ_LEN": "24",
        "GHFRAMES_MODEL_D_MODEL": "40",
    }
    args = build_parser().parse_args(
        ["--config", str(config), "--steps", "9", "--model-merge-dims", "8,16,32"]
    )
    cfg, model_cfg, preset = resolve(args, env)
    assert (cfg.steps, cfg.batch_size, cfg.seq_len) == (9, 3, 24)  # flag > env > file > default
    assert (model_cfg.d_model, model_cfg.lstm_layers, model_cfg.merge_dims) == (40, 3, (8, 16, 32))
    assert model_cfg.stage_blocks == TINY.stage_blocks and preset == "tiny"
    assert TINY.colour and not model_cfg.colour  # the file's [model] colour = false
    args = build_parser().parse_args(["--config", str(config), "--model-colour"])
    assert resolve(args, {"GHFRAMES_MODEL_COLOUR": "0"})[1].colour  # flag > env > file
    assert not resolve(build_parser().parse_args(["--data", "fake", "--no-model-colour"]), {})[
        1
    ].colour
    args = build_parser().parse_args(["--config", str(config), "--preset", "paper"])
    cfg, model_cfg, _ = resolve(args, {})
    assert (
        model_cfg.merge_dims == PRESETS["paper"].merge_dims and model_cfg.d_model == 48
    )  # file's [model]
    assert (cfg.batch_size, cfg.device) == (3, "cuda")  # the file beats the preset's batch 512
    cfg, _, _ = resolve(build_parser().parse_args(["--preset", "paper"]), FAKE)
    assert (cfg.batch_size, cfg.chunk_len) == (512, 4)


def test_split_by_flag():
    assert resolve(build_parser().parse_args([]), FAKE)[0].split_by == "session"
    args = build_parser().parse_args(["--split-by", "repo"])
    assert resolve(args, FAKE)[0].split_by == "repo"
    env = {**FAKE, "GHFRAMES_TRAIN_SPLIT_BY": "repo"}
    assert resolve(build_parser().parse_args([]), env)[0].split_by == "repo"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--chunk-len", "0"], {}, "train config: chunk_len must be >= 1, got 0"),
        (["--steps", "many"], {}, "--steps: train setting steps must be an integer, got 'many'"),
        (["--bptt", "full"], {}, "train config: unknown bptt 'full'; valid: streaming, plain"),
        (["--split-by", "file"], {}, "train config: unknown split_by 'file'; valid: session, repo"),
        (["--preset", "huge"], {}, "unknown model preset 'huge'; valid presets: paper, tiny"),
        ([], {"GHFRAMES_TRAIN_LR_MUON": "fast"}, "environment GHFRAMES_TRAIN_LR_MUON: train setting lr_muon must be a number, got 'fast'"),
        ([], {"GHFRAMES_TRAIN_STPES": "3"}, "environment GHFRAMES_TRAIN_STPES: unknown train setting 'stpes'; valid: "),
        ([], {"GHFRAMES_MODEL_ACTION_VOCAB": "99"}, "environment GHFRAMES_MODEL_ACTION_VOCAB: model setting action_vocab comes from the data (the loader); it cannot be set"),
        (["--lr-muon", "nan"], {}, "train config: lr_muon must be a finite number, got nan"),
        (["--lr-adamw", "inf"], {}, "train config: lr_adamw must be a finite number, got inf"),
        (["--grad-clip", "nan"], {}, "train config: grad_clip must be a finite number (0: no clipping), got nan"),
        (["--grad-clip=-inf"], {}, "train config: grad_clip must be a finite number (0: no clipping), got -inf"),
        (["--min-lr-ratio", "nan"], {}, "train config: min_lr_ratio must be a finite number, got nan"),
        ([], {"GHFRAMES_TRAIN_WEIGHT_DECAY": "NaN"}, "train config: weight_decay must be a finite number, got nan"),
        (["--muon-weight-decay", "-0.1"], {}, "train config: muon_weight_decay must be >= 0, got -0.1"),
        (["--beta1", "1"], {}, "train config: beta1 must lie in [0, 1), got 1.0"),
        (["--beta2", "inf"], {}, "train config: beta2 must be a finite number, got inf"),
        (["--min-lr-ratio", "1.5"], {}, "train config: min_lr_ratio must lie in [0, 1], got 1.5"),
    ],
)  # fmt: skip
def test_config_errors_name_the_value(argv, env, message, capsys, tmp_path):
    assert main([*argv, "--data", "fake", "--out", str(tmp_path)], env=env) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"train: error: {message}"), err
    assert len(err.strip().splitlines()) == 1


def test_every_number_setting_refuses_nan_and_inf():
    """No float field escapes the finiteness check (a new one would otherwise take nan)."""
    numbers = [f.name for f in dataclasses.fields(TrainConfig) if f.type in (float, "float")]
    assert len(numbers) == 8
    for name in numbers:
        for bad in (float("nan"), float("inf")):
            with pytest.raises(GhframesError, match=f"^train config: {name} must be a finite"):
                TrainConfig(data="fake", **{name: bad})


def test_config_file_errors(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text("[optimizer]\nlr = 1\n")
    assert main(["--config", str(config)], env={}) == 2
    assert capsys.readouterr().err == (
        f"train: error: {config}: unknown config section(s) optimizer; valid: preset, train, model\n"
    )


def test_every_flag_has_help_and_the_help_an_example(capsys):
    """Each flag says its meaning, valid values and default; --help ends with examples."""
    parser = build_parser()
    for action in parser._actions:
        if action.dest == "help":
            continue
        assert action.help and len(action.help) > 20, action.option_strings
        assert "default" in action.help, action.option_strings
    for field in dataclasses.fields(TrainConfig):
        assert field.metadata["help"], field.name
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "\nexamples:\n  python -m ghframes.training.train --data DATA --out runs/x" in text
    flat = " ".join(text.split())
    assert "--seq-len SEQ_LEN timesteps per training sequence; an integer >= 1; default 64" in flat
    assert "--lr-adamw LR_ADAMW peak learning rate of AdamW" in flat
    assert "default 0.003 (preset paper: 0.0003)" in flat  # the default preset, tiny, sets it


def test_every_flag_says_its_meaning_valid_values_and_default():
    """--help of each flag is "meaning; valid values; default ..." (a true/false flag's valid
    values are its --NAME / --no-NAME pair); required flags say so instead of a default."""
    parser = build_parser()
    seen = set()
    for action in parser._actions:
        if action.dest == "help":
            continue
        parts = action.help.split("; ")
        flag = action.option_strings[0]
        seen.add(flag)
        meaning, last = parts[0], parts[-1]
        assert len(meaning) > 10 and not meaning.startswith(
            ("one of", "an integer", "a number", "default")
        ), flag
        assert last.startswith("default ") or last.startswith("required, no default"), flag
        if not isinstance(action, argparse.BooleanOptionalAction):
            assert len(parts) >= 3, (flag, action.help)  # a part that says the valid values
    assert {"--data", "--steps", "--resume", "--reschedule", "--model-d-model"} <= seen
    helps = {a.option_strings[0]: a.help for a in parser._actions}
    assert helps["--data"].endswith("; required, no default (also GHFRAMES_TRAIN_DATA)")
    assert "fake" in helps["--data"]
    for flag in ("--steps", "--resume"):  # where a resumed run's schedule comes from
        assert "--reschedule" in helps[flag], flag
    assert helps["--reschedule"].endswith("; default off")


def test_a_run_without_data_is_one_line_saying_how_to_pass_it(tmp_path, capsys):
    """No silent synthetic default: --data fake is explicit; the file and environment count."""
    no_data = (
        "train: error: no training data: pass --data DATA (rendered frames: a path or an s3:// "
        "URI), or --data fake for the built-in synthetic sessions (or GHFRAMES_TRAIN_DATA, or "
        "data = ... under [train] of --config)"
    )
    assert main(["--out", str(tmp_path / "run"), "--steps", "1"], env={}) == 2
    assert capsys.readouterr().err.strip() == no_data
    assert not (tmp_path / "run").exists()
    assert main(["--data", "", "--out", str(tmp_path / "run")], env={}) == 2
    assert capsys.readouterr().err.strip() == no_data.replace("error: ", "error: train config: ")
    with pytest.raises(TypeError, match="data"):
        TrainConfig()  # the API has no default either
    config = tmp_path / "run.toml"
    config.write_text('[train]\ndata = "fake"\n')
    args = build_parser().parse_args(["--config", str(config)])
    assert resolve(args, {})[0].data == "fake"
    assert resolve(build_parser().parse_args([]), FAKE)[0].data == "fake"


def test_resolve_rejects_unknown_model_setting(tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"model": {"width": 3}}))
    with pytest.raises(
        GhframesError, match=rf"^{config} \[model\]: unknown model setting 'width'; valid: "
    ):
        resolve(build_parser().parse_args(["--config", str(config)]), {})
