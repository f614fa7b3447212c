"""A real ``dagster dev`` (webserver + daemon) on 127.0.0.1 for end-to-end tests and benchmarks.

Started with SIGINT/SIGTERM reset to their defaults (a background ``dagster dev`` inherits SIGINT as ignored
and would not stop: FIELD_NOTES), in its own process group, with a temporary ``DAGSTER_HOME`` holding the
project's dagster.yaml. ``stop()`` sends SIGTERM to the group and waits; only a hung server is killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from medallion_pipeline.settings import PROJECT_ROOT

# Reset the signals a background shell leaves ignored, then become dagster dev.
EXEC_WITH_DEFAULT_SIGNALS = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DagsterDev:
    """``instance`` (a dagster.yaml) defaults to the project's, ``workspace`` to its workspace.yaml."""

    def __init__(self, home: Path, env: dict[str, str], log_path: Path | None = None, *,
                 instance: Path | None = None, workspace: Path | None = None):
        self.home = Path(home)
        self.instance = instance or PROJECT_ROOT / "dagster.yaml"
        self.workspace = workspace or PROJECT_ROOT / "workspace.yaml"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or self.home / "dagster_dev.log"
        # Only what the code location needs: nothing from the caller's AWS or MEDALLION_* environment leaks in.
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION_", "AWS_", "DAGSTER_"))}
        self.env = {**base, **env, "DAGSTER_HOME": str(self.home)}
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 120) -> DagsterDev:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.instance.resolve() != (self.home / "dagster.yaml").resolve():
            shutil.copy(self.instance, self.home / "dagster.yaml")
        dagster = str(Path(sys.executable).parent / "dagster")
        command = [sys.executable, "-c", EXEC_WITH_DEFAULT_SIGNALS, dagster, "dev",
                   "-w", str(self.workspace), "-h", "127.0.0.1", "-p", str(self.port)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, env=self.env, cwd=PROJECT_ROOT, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"dagster dev did not answer within {timeout_s} s:\n{self.log_tail()}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 60) -> int | None:
        """SIGTERM to the whole group (webserver, daemon, code server, runs); SIGKILL only if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            raise RuntimeError(f"dagster dev did not stop on SIGTERM within {timeout_s} s")

    def __enter__(self) -> DagsterDev:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
