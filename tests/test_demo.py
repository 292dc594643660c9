"""`make demo` end to end, with a short training run: every stage runs, and the commands it
prints at the end work as printed."""

from __future__ import annotations

import json
import shlex

from ghframes import cli, demo, open_dataset
from ghframes.crawl.sources import parse_source


def printed(out: str, prefix: str) -> list[str]:
    """The command printed on the line starting with ``prefix``, as argv without `ghframes`."""
    line = next(line for line in out.splitlines() if line.startswith(prefix))
    argv = shlex.split(line[len(prefix) :])
    assert argv[0] == "ghframes", line
    return argv[1:]


def test_demo_runs_every_stage_and_prints_commands_that_work(
    tmp_path, ray_local, capfd, monkeypatch
):
    data = tmp_path / "data"
    assert demo.main(["--out", str(data), "--train-steps", "2"]) == 0
    out = capfd.readouterr().out

    sessions = open_dataset(str(data)).sessions()
    names = {parse_source(str(data / folder)).repo for folder in ("sample-repo", "corpus-repo")}
    assert {s.repo for s in sessions} == names
    assert (data / "frame.png").read_bytes()[:4] == b"\x89PNG"
    assert (data / "train" / "checkpoint.pt").stat().st_size > 0
    metrics = [json.loads(line) for line in (data / "train" / "metrics.jsonl").open()]
    held_out = [m for m in metrics if m["split"] == "eval"]
    assert held_out and held_out[0]["step"] == 0 and held_out[0]["loss"] > 0

    view = printed(out, "watch a session:   ")
    assert view[:2] == ["view", str(data)]
    assert view[view.index("--session") + 1] in {s.id for s in sessions}
    monkeypatch.chdir(tmp_path)  # the export lines write into the current folder
    for prefix, name in (
        ("or in a browser:   ", "session.html"),
        ("or with asciinema: ", "session.cast"),
    ):
        assert cli.main(printed(out, prefix)) == 0
        assert (tmp_path / name).stat().st_size > 0
    header = json.loads((tmp_path / "session.cast").open().readline())
    assert (header["width"], header["height"]) == (160, 48)
