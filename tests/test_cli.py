"""The command line as a user meets it: help, the console script, errors as one line."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ghframes import cli

COMMANDS = ["crawl", "render", "view", "export", "stats", "verify", "ls"]
REPO = Path(__file__).resolve().parent.parent


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


PARSER = cli.build_parser({})
SUBCOMMANDS = subcommands(PARSER)


def expanded_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help line as --help prints it (`%(default)s` and `%(choices)s` filled in)."""
    params = dict(vars(action), prog=parser.prog)
    if action.choices is not None:
        params["choices"] = ", ".join(map(str, action.choices))
    return action.help % params


def example(parser: argparse.ArgumentParser) -> str:
    """The example command of an epilog: the lines after `example:`, continuations joined."""
    assert parser.epilog and "\nexample:\n" in f"\n{parser.epilog}", parser.prog
    lines = parser.epilog.split("example:\n", 1)[1].splitlines()
    return " ".join(line.strip().removesuffix("\\").strip() for line in lines if line.strip())


def test_every_registered_command_is_tested_and_has_a_handler():
    assert list(SUBCOMMANDS) == COMMANDS
    for name, parser in SUBCOMMANDS.items():
        module, func = parser.get_default("handler").split(":")
        assert callable(getattr(importlib.import_module(module), func)), name


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"], env={})
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: ghframes {command}")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_one_line_description_and_an_example(command):
    parser = SUBCOMMANDS[command]
    description = parser.description or ""
    assert description.strip() and "\n" not in description and len(description) < 80, command
    assert issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter)
    # Printed as written, and the example is a command line this parser accepts.
    assert parser.epilog in parser.format_help()
    argv = shlex.split(example(parser))
    assert argv[:2] == ["ghframes", command]
    PARSER.parse_args(argv[1:])


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_argument_says_its_meaning_default_and_choices(command):
    parser = PARSER if command is None else SUBCOMMANDS[command]
    for action in parser._actions:
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip() and action.help != argparse.SUPPRESS, (
            f"{parser.prog} {name}: no help"
        )
        text = expanded_help(parser, action)
        takes_value = action.option_strings and action.nargs != 0
        if takes_value and not action.required:
            assert "default" in text, f"{parser.prog} {name}: help names no default: {text}"
        for choice in action.choices or ():
            if not isinstance(action, argparse._SubParsersAction):
                assert str(choice) in text, f"{parser.prog} {name}: help omits {choice!r}"


def test_version_is_the_pyproject_version(capsys):
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"], env={})
    assert done.value.code == 0
    assert capsys.readouterr().out == f"ghframes {version}\n"
    script = os.path.join(os.path.dirname(sys.executable), "ghframes")
    done = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"ghframes {version}\n", "")


def test_module_and_console_script_are_the_same_program(tmp_path):
    for argv in (
        [sys.executable, "-m", "ghframes"],
        [os.path.join(os.path.dirname(sys.executable), "ghframes")],
    ):
        done = subprocess.run([*argv, "stats", str(tmp_path)], capture_output=True, text=True)
        assert done.returncode == 2
        assert done.stderr == (
            f"ghframes: error: {tmp_path}: no edits manifest "
            f"(run `ghframes crawl … --out {tmp_path}` first)\n"
        )


def test_flags_override_the_environment():
    parser = cli.build_parser(
        {"RAY_ADDRESS": "ray://env:10001", "GITHUB_API_URL": "https://ghe/api/v3"}
    )
    args = parser.parse_args(["crawl", "x", "--out", "d"])
    assert (args.ray_address, args.api_url) == ("ray://env:10001", "https://ghe/api/v3")
    args = parser.parse_args(["crawl", "x", "--out", "d", "--ray-address", "ray://flag:1"])
    assert args.ray_address == "ray://flag:1"
