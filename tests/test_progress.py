"""Progress where it runs: plain lines off a terminal (never a carriage return), and Ray's own
log records in DATA/_logs/ray.log instead of the user's terminal."""

from __future__ import annotations

import io
import logging

from ghframes import progress
from ghframes.pipelines.cluster import ray_is_up, route_ray_logs
from ghframes.progress import Progress


def test_off_a_terminal_progress_is_a_line_every_few_seconds_with_counts_and_rate(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(progress, "EVERY", 0.0)
    bar = Progress("render", "frame", stream=out)
    bar.set(1200, 4800)
    bar.set(4800, extra="sessions=2/2")
    bar.close()
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("render: 1,200/4,800 frames (25%), ")
    assert lines[-1].startswith("render: 4,800/4,800 frames (100%), ")
    assert lines[-1].endswith("frames/s, sessions=2/2")


def test_off_a_terminal_progress_stays_quiet_between_its_lines(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(progress, "EVERY", 3600.0)
    bar = Progress("mine", "commit", 10, stream=out)
    for _ in range(10):
        bar.update()
    assert out.getvalue() == ""  # within the interval: nothing yet
    bar.close()
    assert out.getvalue().splitlines() == [out.getvalue().strip()]  # one line at the end
    quiet = io.StringIO()
    bar = Progress("mine", "commit", 10, stream=quiet, enabled=False)
    bar.set(10)
    bar.close()
    assert quiet.getvalue() == ""


def test_rays_log_records_go_to_a_file_under_data_not_to_the_terminal(tmp_path, capsys):
    path = route_ray_logs(str(tmp_path))
    logging.getLogger("ray._private.authentication.authentication_token_setup").warning(
        "Token authentication is enabled for this Ray cluster."
    )
    logging.getLogger("ray").warning("a warning of ray's own")
    assert not (tmp_path / "_logs").exists()  # held until Ray is up: a failed start writes nothing
    ray_is_up()
    assert path == str(tmp_path / "_logs" / "ray.log")
    logged = (tmp_path / "_logs" / "ray.log").read_text()
    assert "Token authentication is enabled" in logged and "a warning of ray's own" in logged
    captured = capsys.readouterr()
    assert "Token authentication" not in captured.err + captured.out
    route_ray_logs("s3://bucket/data")  # remote DATA: dropped, and the file is let go
    logging.getLogger("ray").warning("dropped")
    assert "dropped" not in (tmp_path / "_logs" / "ray.log").read_text()
    assert "dropped" not in capsys.readouterr().err
