"""scripts/setup.sh and its progress lines: what a newcomer sees before any long step."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.testbed import ROOT

SETUP = ROOT / "scripts" / "setup.sh"


def test_progress_lines_name_the_phase_time_and_latest_output(tmp_path):
    script = (f"source {ROOT / 'scripts' / 'progress.sh'}; "
              f"progress_run demo {tmp_path / 'log'} 'counting' "
              "bash -c 'for i in 1 2 3 4; do echo step $i; sleep 1; done'")
    done = subprocess.run(["bash", "-c", script], env={**os.environ, "PROGRESS_EVERY": "1"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    beats = [ln for ln in done.stderr.splitlines() if ln.startswith("demo: counting ... ")]
    assert len(beats) >= 2, done.stderr
    assert all(ln.endswith(")") and " s (step " in ln for ln in beats), beats


def test_progress_run_failure_shows_the_end_of_the_log(tmp_path):
    script = (f"source {ROOT / 'scripts' / 'progress.sh'}; "
              f"progress_run demo {tmp_path / 'log'} 'breaking' bash -c 'echo boom; exit 3'")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "demo: breaking failed" in done.stderr and "boom" in done.stderr


def path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH with every program of this machine except `missing`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep)[::-1]:
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = bin_dir / name
            if name not in missing and os.access(os.path.join(directory, name), os.X_OK):
                target.unlink(missing_ok=True)
                target.symlink_to(os.path.join(directory, name))
    return str(bin_dir)


def test_missing_toolchains_are_named_before_anything_starts(tmp_path):
    env = {**os.environ, "PATH": path_without(tmp_path, "go", "cargo"),
           "KAPACITOR_CACHE": str(tmp_path / "cache"), "VENV": str(tmp_path / "venv")}
    done = subprocess.run(["bash", str(SETUP), "demo"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "Go >= 1.21" in done.stderr and "cargo" in done.stderr, done.stderr
    assert not (tmp_path / "venv").exists() and not (tmp_path / "cache").exists()


def test_without_root_the_apt_command_is_printed_and_nothing_starts():
    if os.getuid() != 0:
        pytest.skip("drops root with setpriv to play a user without it; needs root to do so")
    with tempfile.TemporaryDirectory() as tmp:  # pytest's tmp_path is not the user's to read
        work = Path(tmp)
        work.chmod(0o777)
        env = {**os.environ, "PATH": path_without(work, "influxd", "docker-compose"),
               "VENV": str(work / "venv"), "HOME": str(work)}
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               "bash", str(SETUP), "test"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        command = [ln.split() for ln in done.stderr.splitlines() if "sudo apt-get" in ln]
        assert command and command[0][:4] == ["sudo", "apt-get", "install", "-y"], done.stderr
        assert {"influxdb", "docker-compose"} <= set(command[0][4:]), done.stderr
        assert not (work / "venv").exists()
