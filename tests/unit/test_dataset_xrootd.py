"""A production read by root:// URL through a real XRootD server gives the same dataset.

The fixture starts Debian's xrootd-server (``.ci/xrootd.sh`` installs it) on a free localhost
port, exporting ``/eos`` from a scratch folder, as EOS would serve
``root://host//eos/user/...``. Without the server binary the test is skipped locally and fails
in CI (``CI=true``), so a broken install cannot pass unnoticed; a server that is installed but
does not start fails the test everywhere.

Chunks are built by URL in a separate ``edtrain chunk`` process, as the workflow runs them: the
test session has imported TensorFlow (other test modules), and the XRootD client crashes when
loaded after it (``edtrain.dataset.storage``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_dataset import load, make_production, run

STARTUP_S = 20


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"XRootD server needed in CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    server.kill()
    logs = "".join(p.read_text(errors="replace") for p in log.parent.glob("*"))
    pytest.fail(f"xrootd is installed but did not start on port {port}:\n{logs[-2000:]}")


@pytest.fixture(scope="module")
def xrootd() -> Iterator[tuple[str, Path]]:
    """(server URL, the local folder it serves as /eos)."""
    binary = shutil.which("xrootd")
    if binary is None:
        _unavailable("no xrootd binary (install xrootd-server: bash .ci/xrootd.sh)")
    base = Path(tempfile.mkdtemp(prefix="edtrain-xrootd-"))
    try:
        base.chmod(0o755)  # the server drops to the xrootd user: it must read and log here
        (base / "eos").mkdir()
        (base / "log").mkdir()
        user = ["-R", "xrootd"] if os.geteuid() == 0 else []  # as root it refuses without -R
        if user:
            os.chown(base / "log", pwd.getpwnam("xrootd").pw_uid, -1)
        config = base / "xrootd.cfg"
        config.write_text(f"all.export /eos\noss.localroot {base}\n")
        port = _free_port()
        command = [binary, *user, "-p", str(port), "-c", str(config), "-l", str(base / "log/x")]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            _wait_for(port, server, base / "log" / "x")
            yield f"root://localhost:{port}", base
        finally:
            server.terminate()
            server.wait(timeout=10)
    finally:
        shutil.rmtree(base)


def _chunk(inputs: str, chunk: int, chunks: int, out: Path) -> subprocess.CompletedProcess[str]:
    """``edtrain chunk`` in its own process (module docstring)."""
    command = [sys.executable, "-m", "edtrain.cli", "chunk", "--inputs", inputs]
    command += ["--chunk", str(chunk), "--chunks", str(chunks), "--out", str(out)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _build(tmp_path: Path, name: str, inputs: str, chunks: int) -> Path:
    """chunk (each in its own process) and assemble; returns the dataset directory."""
    dirs = [tmp_path / f"{name}_chunk{i}" for i in range(chunks)]
    for i, d in enumerate(dirs):
        done = _chunk(inputs, i, chunks, d)
        assert done.returncode == 0, done.stderr
    out = tmp_path / name
    assert run("assemble", "--chunks", *dirs, "--out", out, "--test-fraction", 0.2) == 0
    return out


def _inputs_without_paths(manifest: dict) -> list[dict]:
    return [{k: v for k, v in i.items() if k != "path"} for i in manifest["inputs"]]


@pytest.mark.parametrize("layout", ["flat", "per-plane"])
def test_url_gives_the_dataset_of_the_path(tmp_path, xrootd, layout):
    server, base = xrootd
    folder = f"eos/user/e/edtrain/{layout}/cluster_images_nov11"
    expected = make_production(base / folder, range(5), layout=layout, width=18)
    by_path = _build(tmp_path, "path", str(base / folder), chunks=1)
    by_url = _build(tmp_path, "url", f"{server}//{folder}/", chunks=2)
    t_path, images_path, m_path = load(by_path)
    t_url, images_url, m_url = load(by_url)
    assert len(t_url) == expected
    pd.testing.assert_frame_equal(t_path.drop(columns="source"), t_url.drop(columns="source"))
    assert t_url["source"].str.startswith(f"{server}//{folder}/").all()
    assert np.asarray(images_path).tobytes() == np.asarray(images_url).tobytes()
    assert _inputs_without_paths(m_path) == _inputs_without_paths(m_url)
    assert all(i["path"].startswith(server) for i in m_url["inputs"])
    for key in ("counts", "test_set_hash", "samples", "skipped_rows", "skipped_files"):
        assert m_path[key] == m_url[key]


def test_missing_url_folder_exits_2(tmp_path, xrootd):
    server, _ = xrootd
    url = f"{server}//eos/user/e/edtrain/nowhere"
    done = _chunk(url, 0, 1, tmp_path / "c")
    assert done.returncode == 2
    assert f"input directory not found: {url}" in done.stderr


def test_url_in_a_process_with_tensorflow_is_a_clear_error(xrootd, monkeypatch):
    from edtrain.dataset.storage import XRootDStorage

    server, _ = xrootd
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow", sys))
    monkeypatch.delitem(sys.modules, "XRootD.client", raising=False)
    with pytest.raises(RuntimeError, match="without it"):
        XRootDStorage(server)
