"""
Tests of ``twistd mnemic`` run as a daemon: no -n, a pidfile and a logfile.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request

from twisted.trial.unittest import SynchronousTestCase

from ._postgres import new_name, query, test_dsn
from ._sending import Sender, announcement, new_run_id, sample
from ._twistd import wait_until

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# \S, not [^ ], because these search the whole logfile, not one line.
_UDP_LINE = re.compile(r"Listening for samples on UDP \S+:(\d+)$", re.MULTILINE)
_HTTP_LINE = re.compile(r"Web UI on http://\S+:(\d+)/$", re.MULTILINE)


def _start_daemon(pidfile: str, logfile: str,
                  *arguments: str) -> subprocess.CompletedProcess[str]:
    """
    Run ``twistd --pidfile PIDFILE --logfile LOGFILE mnemic ARGUMENTS``.

    twistd forks the daemon and exits once the service has started (status
    0) or has failed to start (status 1).
    """
    environment = dict(os.environ)
    # The plugin file is found through twisted/plugins in the source checkout.
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [_ROOT, environment.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
         "--pidfile", pidfile, "--logfile", logfile, "mnemic", *arguments],
        capture_output=True, text=True, env=environment, cwd=_ROOT, timeout=60,
    )


def _running(pid: int) -> bool:
    """
    Return whether process ``pid`` exists and has not exited.

    The daemon is not our child, so it cannot be waited for. An exited
    process that its parent has not reaped yet shows state Z in /proc and
    counts as ended.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # The state follows the command name, which is in parentheses.
            state = stat.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


class DaemonTests(SynchronousTestCase):
    """
    ``twistd mnemic --pidfile PATH --logfile PATH`` runs in the background,
    logs to the file, and writes its queued rows when stopped with
    ``kill $(cat PATH)``.
    """

    def setUp(self) -> None:
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.pidfile = os.path.join(directory, "mnemic.pid")
        self.logfile = os.path.join(directory, "mnemic.log")

    def start(self, *arguments: str) -> int:
        """
        Start the daemon with the options in ``arguments`` and return its pid.
        """
        launched = _start_daemon(self.pidfile, self.logfile, *arguments)
        self.assertEqual(launched.returncode, 0,
                         launched.stderr + launched.stdout)
        pid = int(_read(self.pidfile))
        self.addCleanup(self.kill, pid)
        return pid

    def kill(self, pid: int) -> None:
        """
        Kill the daemon if a failed test left it running.
        """
        if _running(pid):
            os.kill(pid, signal.SIGKILL)

    def port(self, line: re.Pattern[str]) -> int:
        """
        Wait for the logfile to name a listening port and return it.
        """
        wait_until(lambda: line.search(_read(self.logfile)) is not None,
                   message=f"no {line.pattern!r} in the logfile")
        match = line.search(_read(self.logfile))
        assert match is not None
        return int(match.group(1))

    def test_kill_by_pidfile_writes_queued_rows(self) -> None:
        """
        SIGTERM sent to the pid in the pidfile makes the daemon write every
        row it has queued, log that, remove the pidfile and exit.
        """
        pid = self.start("--postgres", test_dsn(), "--udp-port", "0",
                         "--http-port", "0", "--flush-interval", "30",
                         "--batch-rows", "1000000")
        udp_port = self.port(_UDP_LINE)
        http_port = self.port(_HTTP_LINE)

        def metric(name: str) -> float:
            url = f"http://127.0.0.1:{http_port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read().decode("utf-8")
            for metric_line in text.splitlines():
                if metric_line.startswith(name + " "):
                    return float(metric_line.split()[1])
            raise AssertionError(f"{name} not in /metrics")

        # The writer flushes at once when its first connection opens, so the
        # samples must arrive after it.
        wait_until(lambda: metric("mnemic_db_connected") == 1)
        sender = Sender(udp_port)
        self.addCleanup(sender.close)
        run_id = new_run_id()
        sender.send(announcement(run_id, new_name("daemon"), ["a", "b"]))
        for seq in range(2000):
            sender.send(sample(run_id, seq, [seq, 0.5]))

        wait_until(lambda: metric("mnemic_datagrams_received_total") >= 2001)
        # A 30 s flush interval keeps every row queued until the signal.
        self.assertEqual(metric("mnemic_queue_rows"), 2000)

        os.kill(int(_read(self.pidfile)), signal.SIGTERM)
        wait_until(lambda: not _running(pid), timeout=60,
                   message="the daemon did not exit after SIGTERM")

        stored = query("SELECT count(DISTINCT seq) FROM samples WHERE run_id = %s",
                       (run_id,))
        self.assertEqual(stored[0][0], 2000)
        log = _read(self.logfile)
        self.assertIn("Writing 2000 queued rows before exit", log)
        self.assertIn("Stopped; 2000 rows written in all", log)
        self.assertFalse(os.path.exists(self.pidfile))

    def test_failed_start_reported_by_launcher(self) -> None:
        """
        When the service cannot start, here because its UDP port is taken,
        the launching command exits with status 1 and the pidfile is removed.
        """
        occupied = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(occupied.close)
        occupied.bind(("127.0.0.1", 0))
        udp_port = occupied.getsockname()[1]

        launched = _start_daemon(self.pidfile, self.logfile, "--postgres",
                                 test_dsn(), "--udp-port", str(udp_port),
                                 "--http-port", "0")

        self.assertEqual(launched.returncode, 1, launched.stderr + launched.stdout)
        self.assertIn("An error has occurred", launched.stderr)
        self.assertFalse(os.path.exists(self.pidfile))
