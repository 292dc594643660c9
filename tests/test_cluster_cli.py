"""The shared Ray flags fail fast with one line, and one writer at a time holds a DATA folder."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from ghframes import cli
from ghframes.errors import GhframesError
from ghframes.store import lock


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(argv: list[str]) -> int:
    try:
        return cli.main(argv, env={})
    except SystemExit as exc:  # argparse's errors
        return exc.code


@pytest.fixture
def local_repo(make_repo):
    repo = make_repo("good")
    repo.commit("one", {"a.py": "x = 1\n"})
    return repo.path


def _argv(command: str, repo, data) -> list[str]:
    if command == "crawl":
        return ["crawl", str(repo), "--out", str(data), "--no-progress"]
    return ["render", str(data), "--no-progress"]


@pytest.mark.parametrize("command", ["crawl", "render"])
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num-cpus", "0"], "argument --num-cpus: 0: not a positive integer"),
        (["--num-cpus", "-1"], "argument --num-cpus: -1: not a positive integer"),
        (["--num-cpus", "two"], "argument --num-cpus: two: not a positive integer"),
        (["--ray-timeout", "0"], "argument --ray-timeout: 0: not a finite number of seconds"),
        (["--ray-address", "nowhere"], "argument --ray-address: nowhere: not `auto`, `local`"),
    ],
)
def test_bad_ray_flags_are_one_line_before_anything_starts(
    command, flags, message, local_repo, tmp_path, capsys
):
    data = tmp_path / "data"
    started = time.monotonic()
    assert run_cli([*_argv(command, local_repo, data), *flags]) == 2
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert err.startswith(f"ghframes: error: {message}") and err.count("\n") == 1, err
    assert not data.exists()


@pytest.mark.parametrize("command", ["crawl", "render"])
def test_an_address_that_does_not_answer_is_one_line_within_the_timeout(
    command, local_repo, tmp_path, capsys
):
    data = tmp_path / "data"
    if command == "render":
        data.mkdir()
    address = f"127.0.0.1:{closed_port()}"
    started = time.monotonic()
    argv = [*_argv(command, local_repo, data), "--ray-address", address, "--ray-timeout", "2"]
    assert run_cli(argv) == 2
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert err.startswith(
        f"ghframes: error: --ray-address {address}: {address} did not accept a connection "
        "within 2 s"
    )
    assert err.count("\n") == 1, err
    assert not data.exists() or not any(data.iterdir())


@pytest.fixture
def silent_port():
    """A loopback port that never answers: a listener whose accept queue is full drops SYNs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    clients = []
    for _ in range(8):
        client = socket.socket()
        client.settimeout(0.5)
        clients.append(client)
        try:
            client.connect(("127.0.0.1", port))
        except TimeoutError:
            break
    else:
        pytest.skip("this kernel accepts past a full backlog")
    yield port
    for s in [*clients, server]:
        s.close()


def test_an_address_that_never_answers_gives_up_after_the_timeout(
    silent_port, local_repo, tmp_path, capsys
):
    address = f"127.0.0.1:{silent_port}"
    started = time.monotonic()
    argv = [*_argv("crawl", local_repo, tmp_path / "d"), "--ray-address", address]
    assert run_cli([*argv, "--ray-timeout", "1"]) == 2
    assert 0.9 < time.monotonic() - started < 4
    assert capsys.readouterr().err == (
        f"ghframes: error: --ray-address {address}: {address} did not accept a connection "
        "within 1 s (no answer); is the Ray head running there? (--ray-timeout)\n"
    )


def test_a_client_address_is_probed_at_its_client_port(local_repo, tmp_path, capsys):
    port = closed_port()
    argv = [*_argv("crawl", local_repo, tmp_path / "d"), "--ray-address", f"ray://[::1]:{port}"]
    assert run_cli([*argv, "--ray-timeout", "1"]) == 2
    assert f"ray://[::1]:{port}: ::1:{port} did not accept" in capsys.readouterr().err


# --- one writer per DATA ----------------------------------------------------------------------


@pytest.fixture
def child():
    """A live process of this host (its pid stands for another ghframes run)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def _hold(data, pid: int, host: str | None = None) -> dict:
    holder = {
        "command": "render",
        "host": host or socket.gethostname(),
        "pid": pid,
        "started": "2026-01-01T00:00:00Z",
    }
    (data / lock.LOCK).write_text(json.dumps(holder))
    return holder


@pytest.mark.parametrize("command", ["crawl", "render"])
def test_a_second_writer_exits_at_once_naming_the_holder(
    command, child, local_repo, tmp_path, capsys
):
    data = tmp_path / "data"
    data.mkdir()
    _hold(data, child.pid)
    started = time.monotonic()
    assert run_cli(_argv(command, local_repo, data)) == 2
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert err == (
        f"ghframes: error: {data}: in use by render (pid {child.pid} on host "
        f"{socket.gethostname()}, since 2026-01-01T00:00:00Z); wait for it to end, or remove "
        f"{data / lock.LOCK} if that process is gone\n"
    )
    assert sorted(p.name for p in data.iterdir()) == [lock.LOCK]  # nothing else written


def test_a_lock_from_another_host_is_respected(tmp_path):
    _hold(tmp_path, 1, host="elsewhere.example")
    with pytest.raises(GhframesError, match="pid 1 on host elsewhere.example"):
        lock.acquire(str(tmp_path), "crawl")


def test_a_dead_holders_lock_is_taken_over_and_released_even_on_error(tmp_path, capsys, caplog):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    data = tmp_path / "data"
    data.mkdir()
    _hold(data, gone.pid)
    # No edits to render: it fails after taking the lock, and gives the lock back.
    assert run_cli(["render", str(data), "--no-progress"]) == 2
    assert f"taking over the lock of render (pid {gone.pid} on host" in caplog.text
    assert "no edits" in capsys.readouterr().err
    assert list(data.iterdir()) == []


def test_the_lock_is_held_for_the_body_and_only_then(tmp_path):
    with lock.hold(str(tmp_path), "crawl"):
        holder = json.loads((tmp_path / lock.LOCK).read_text())
        assert (holder["command"], holder["pid"]) == ("crawl", os.getpid())
        with pytest.raises(GhframesError, match="in use by crawl"):
            lock.acquire(str(tmp_path), "render")
    assert list(tmp_path.iterdir()) == []
    # A DATA that does not exist is neither made nor locked unless the command creates it,
    # and one made for a body that failed before writing is removed again.
    absent = tmp_path / "absent"
    with lock.hold(str(absent), "render"):
        assert not absent.exists()
    with pytest.raises(GhframesError), lock.hold(str(absent), "crawl", create=True):
        assert (absent / lock.LOCK).exists()
        raise GhframesError("failed before writing")
    assert not absent.exists()


def test_a_port_that_answers_but_is_no_ray_is_one_line_within_the_timeout(local_repo, tmp_path):
    """Ray's own retries are bounded by --ray-timeout, and its C++ core's warnings about them
    stay off the terminal: one error line, nothing else."""
    from conftest import short_tmpdir

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def hang_up() -> None:
        with contextlib.suppress(OSError):
            while True:
                server.accept()[0].close()

    threading.Thread(target=hang_up, daemon=True).start()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    data = tmp_path / "data"
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_TMPDIR=short_tmpdir())
    env.pop("RAY_ADDRESS", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ghframes", "crawl", str(local_repo), "--out", str(data)]
        + ["--no-progress", "--ray-address", address, "--ray-timeout", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    server.close()
    assert time.monotonic() - started < 30  # measured: about 15 s, Ray import included
    assert done.returncode == 2, done.stderr
    errors = done.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith("ghframes: error: "), done.stderr
    assert errors[0].startswith(f"ghframes: error: --ray-address {address}: ")
    assert errors[0].endswith("within 2 s (--ray-timeout)")
    assert not data.exists()
