"""The command line as a user meets it: help, the console script, errors as one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ghframes import cli

COMMANDS = ["crawl", "render", "view", "export", "stats", "verify"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"], env={})
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: ghframes {command}")


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
