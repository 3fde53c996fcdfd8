"""`make lab` (`lenet lab`): JupyterLab in the project's environment, opened on chapters/."""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LENET = Path(sys.executable).with_name("lenet")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str):
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_lab_serves_the_chapters_on_the_projects_kernel(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    # The same command as `make lab`; the test's own settings come in through a config folder,
    # as a user's would: headless, loopback only, a token.
    (tmp_path / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ServerApp": {
                    "ip": "127.0.0.1",
                    "port": port,
                    "port_retries": 0,
                    "open_browser": False,
                    "allow_root": True,  # CI runs as root
                },
                "IdentityProvider": {"token": token},
            }
        )
    )
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path), "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [LENET, "lab"], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            assert server.poll() is None, (tmp_path / "lab.log").read_text()[-3000:]
            try:
                listing = _get(f"{base}/api/contents/chapters", token)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(1)
        else:
            pytest.fail("JupyterLab did not answer within 120 s")
        names = {item["name"] for item in listing["content"]}
        assert names >= {p.name for p in (ROOT / "chapters").glob("*.ipynb")}
        with pytest.raises(urllib.error.HTTPError):  # the token is required
            urllib.request.urlopen(f"{base}/api/contents/chapters", timeout=10)
        specs = _get(f"{base}/api/kernelspecs", token)
        python3 = specs["kernelspecs"]["python3"]["spec"]["argv"][0]
        # The native kernel ("python") runs the server's own interpreter: the project's .venv.
        assert python3 in ("python", "python3", sys.executable), python3
        assert (ROOT / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
