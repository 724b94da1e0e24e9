"""The pinned kapacitor and telegraf modules build read-only: go.sum is complete and never
rewritten."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess

import pytest

from tests.conftest import ROOT

MODULE = ROOT / "tools" / "kapacitor"


def _digest() -> str:
    return hashlib.sha256((MODULE / "go.mod").read_bytes() + (MODULE / "go.sum").read_bytes()) \
        .hexdigest()


@pytest.mark.parametrize("script", ["install_kapacitor.sh", "install_telegraf.sh"])
def test_install_script_builds_with_mod_readonly(script):
    script = (ROOT / "scripts" / script).read_text()
    flags = re.findall(r'^\s*export\b[^\n]*\bGOFLAGS="([^"]*)"', script, re.MULTILINE)
    assert flags and all("-mod=readonly" in f and "-mod=mod" not in f for f in flags), flags


def test_module_resolves_every_package_of_the_build_read_only():
    before = _digest()
    result = subprocess.run(
        ["go", "list", "-deps", "github.com/influxdata/kapacitor/cmd/kapacitord",
         "github.com/influxdata/kapacitor/cmd/kapacitor"],
        cwd=MODULE, capture_output=True, text=True, timeout=600,
        env={**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert _digest() == before, "go.mod/go.sum changed under -mod=readonly"
