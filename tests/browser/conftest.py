"""Fixtures for the browser tests: a private JupyterLab server and a headless Chromium.

The server runs on 127.0.0.1 on a free port, on a temporary *copy* of the notebooks (so it can
never save over the repository's files), with settings that make every cell render in the page
(no windowing), switch autosave off and fetch no news. It is stopped, with every kernel it
started, when the session ends, whether the tests passed or not.

Chromium is the system's (Debian's ``chromium`` package), driven by Playwright through
``executable_path``; nothing downloads a browser. Set ``CHROMIUM`` to use another binary.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Where screenshots go; stable, so CI can keep them (git-ignored).
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", ROOT / "test-artifacts" / "browser"))

_SETTINGS = {
    # every cell in the DOM, so the test (and a screenshot) sees all outputs
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # never write to the notebooks, even the temporary copies
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # no network: no news, no update check
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str
    token: str
    root: Path
    log: Path

    def api(self, method: str, path: str, body: dict | None = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/api/{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    work = Path(tempfile.mkdtemp(prefix="course-browser-"))
    course = work / "course"
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "backups")
    for folder in ("notebooks", "labs"):
        shutil.copytree(ROOT / folder, course / folder, ignore=ignore)
    settings = work / "settings"
    for name, values in _SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))

    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        COURSE_PROFILE=os.environ.get("COURSE_PROFILE", "smoke"),
        COURSE_OFFLINE=os.environ.get("COURSE_OFFLINE", "1"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
    )
    command = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={course}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.extension_manager=readonly",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = work / "jupyterlab.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=course, start_new_session=True
        )
    handle = Lab(f"http://127.0.0.1:{port}", token, course, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{handle.log_tail()}")
            try:
                handle.api("GET", "status")
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 90 s:\n{handle.log_tail()}")
                time.sleep(0.3)
        yield handle
    finally:
        _stop(server, handle)
        shutil.rmtree(work, ignore_errors=True)


def _stop(server: subprocess.Popen, handle: Lab) -> None:
    """Stop the server and every process it started (kernels run in their own sessions)."""
    try:
        processes = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        processes = []
    try:  # the polite way first: kernels get a shutdown request
        for kernel in handle.api("GET", "kernels") or []:
            handle.api("DELETE", f"kernels/{kernel['id']}")
    except Exception:
        pass
    server.terminate()
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(5)
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=5)


def _chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and Path(candidate).exists():
            return candidate
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("no Chromium: install Debian's `chromium` (apt-get install chromium) or set CHROMIUM")
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=_chromium(),
            args=[
                "--no-sandbox",  # as root in a container
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
