"""
Run ``twistd -n mnemic`` as a child process, as a user would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Callable, Optional

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_UDP_LINE = re.compile(r"Listening for samples on UDP [^ ]+:(\d+)")
_HTTP_LINE = re.compile(r"Web UI on http://[^ ]+:(\d+)/")


class TwistdProcess:
    """
    A mnemic service in a child process, on ports chosen by the kernel.
    """

    def __init__(self, *arguments: str, timeout: float = 60.0,
                 wait_for: tuple[str, ...] = ("udp", "http")) -> None:
        environment = dict(os.environ)
        # The plugin file lives in twisted/plugins beside the packages; this
        # finds it in a source checkout as well as in an installed copy.
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [_ROOT, environment.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "-n", "--pidfile=",
             "mnemic", "--udp-port", "0", "--http-port", "0", *arguments],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=environment, cwd=_ROOT,
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read_rest, daemon=True)
        self.udp_port = 0
        self.http_port = 0
        deadline = time.monotonic() + timeout
        while ("udp" in wait_for and not self.udp_port) or (
            "http" in wait_for and not self.http_port
        ):
            line = self._read_line(deadline)
            if (match := _UDP_LINE.search(line)) is not None:
                self.udp_port = int(match.group(1))
            if (match := _HTTP_LINE.search(line)) is not None:
                self.http_port = int(match.group(1))
        self._reader.start()

    def _read_line(self, deadline: float) -> str:
        assert self.process.stdout is not None
        if time.monotonic() > deadline:
            self.kill()
            raise AssertionError("twistd did not start:\n" + "".join(self.output))
        line = self.process.stdout.readline()
        if not line:
            self.kill()
            raise AssertionError("twistd exited:\n" + "".join(self.output))
        self.output.append(line)
        return line

    def get(self, path: str) -> str:
        """
        Return the body of a GET request to the service's web port.
        """
        url = f"http://127.0.0.1:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode("utf-8"))

    def metric(self, name: str) -> float:
        """
        Return the value of one unlabelled metric from /metrics.
        """
        for line in self.get("/metrics").splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not in /metrics")

    def _read_rest(self) -> None:
        # Runs in a thread from start-up on, so that the log can be read while
        # the process runs without blocking the test.
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self, signal_number: int, timeout: float = 60.0) -> int:
        """
        Send a signal and return the exit status once the process has ended.
        """
        self.process.send_signal(signal_number)
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._reader.join(timeout=10)
        return status

    def kill(self) -> None:
        """
        Kill the process if it is still running.
        """
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._reader.ident is not None:
            self._reader.join(timeout=10)

    @property
    def log(self) -> str:
        """
        Everything the process has written so far.
        """
        return "".join(self.output)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0,
               message: Optional[str] = None) -> None:
    """
    Poll ``condition`` until it returns true, or fail after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message or "condition not met in time")
        time.sleep(0.05)
