"""
Tests of ``twistd mnemic`` run as a child process, signals included.
"""

from __future__ import annotations

import os
import signal
import time

import psutil
from twisted.trial.unittest import SynchronousTestCase

from ._postgres import new_name, query, test_dsn
from ._sending import Sender, announcement, new_run_id, sample
from ._twistd import TwistdProcess, wait_until


class SignalTests(SynchronousTestCase):
    """
    SIGINT and SIGTERM stop the service only after it has stored everything
    it received.
    """

    def check_signal_flushes(self, signal_number: int) -> None:
        service = TwistdProcess("--postgres", test_dsn(), "--flush-interval", "30",
                                "--batch-rows", "1000000")
        self.addCleanup(service.kill)
        # Once connected, the writer flushes only after --flush-interval.
        wait_until(lambda: service.metric("mnemic_db_connected") == 1)
        sender = Sender(service.udp_port)
        self.addCleanup(sender.close)
        run_id = new_run_id()
        sender.send(announcement(run_id, new_name("signal"), ["a", "b"]))
        for seq in range(3000):
            sender.send(sample(run_id, seq, [seq, 1.5]))
        wait_until(lambda: service.metric("mnemic_datagrams_received_total") >= 3001)
        self.assertEqual(service.metric("mnemic_queue_rows"), 3000)

        status = service.stop(signal_number)

        # twistd ends by re-raising the signal, so its status names the signal.
        self.assertIn(status, (0, -signal_number), service.log)
        stored = query("SELECT count(DISTINCT seq) FROM samples WHERE run_id = %s",
                       (run_id,))
        self.assertEqual(stored[0][0], 3000)
        self.assertIn("Writing 3000 queued rows before exit", service.log)

    def test_sigint_writes_queued_rows(self) -> None:
        """
        Ctrl-C (SIGINT) writes every received row before the process exits.
        """
        self.check_signal_flushes(signal.SIGINT)

    def test_sigterm_writes_queued_rows(self) -> None:
        """
        SIGTERM writes every received row before the process exits.
        """
        self.check_signal_flushes(signal.SIGTERM)


class SecondSignalTests(SynchronousTestCase):
    """
    A second SIGINT while the service waits for its database ends it without
    the rows it could not write.
    """

    def test_second_sigint_abandons_queue(self) -> None:
        """
        With the database unreachable, the first SIGINT starts the wait for
        it and the second one ends the process at once, logging the rows not
        written.
        """
        # Nothing listens on port 1 of the loopback address.
        service = TwistdProcess("--postgres", "postgresql://mnemic@127.0.0.1:1/x",
                                "--shutdown-timeout", "60")
        self.addCleanup(service.kill)
        sender = Sender(service.udp_port)
        self.addCleanup(sender.close)
        run_id = new_run_id()
        sender.send(*(sample(run_id, seq, [seq]) for seq in range(20)))
        wait_until(lambda: service.metric("mnemic_queue_rows") == 20)

        service.process.send_signal(signal.SIGINT)
        wait_until(lambda: "send the signal again" in service.log,
                   message="no hint about a second signal")
        started = time.monotonic()
        status = service.stop(signal.SIGINT, timeout=20)

        self.assertLess(time.monotonic() - started, 20)
        self.assertIn(status, (0, 1, -signal.SIGINT), service.log)
        self.assertIn("Shutdown interrupted: 20 rows not written", service.log)
        self.assertNotIn("ReactorNotRunning", service.log)


class EmbeddedDatabaseTests(SynchronousTestCase):
    """
    With no database configured, twistd mnemic runs its own PostgreSQL.
    """

    def test_embedded_server_keeps_data_across_restarts(self) -> None:
        """
        Samples stored by one run of the service are served by the next one,
        started on the same --data-dir.
        """
        data_dir = os.path.abspath(self.mktemp())
        run_id = new_run_id()
        name = new_name("embedded")
        service = TwistdProcess("--data-dir", data_dir)
        self.addCleanup(service.kill)
        sender = Sender(service.udp_port)
        self.addCleanup(sender.close)
        sender.send(announcement(run_id, name, ["x"]), sample(run_id, 0, [1.0]))
        wait_until(lambda: service.metric("mnemic_rows_written_total") >= 1)
        self.assertIn(service.stop(signal.SIGTERM), (0, -signal.SIGTERM), service.log)

        again = TwistdProcess("--data-dir", data_dir)
        self.addCleanup(again.kill)
        self.assertIn(f'"name": "{name}"', again.get("/api/tracers"))
        self.assertIn(again.stop(signal.SIGTERM), (0, -signal.SIGTERM), again.log)

    def test_embedded_server_stops_after_crash(self) -> None:
        """
        After a mnemic killed with SIGKILL, the next mnemic on the same
        --data-dir still stops the embedded server when it exits.
        """
        data_dir = os.path.abspath(self.mktemp())
        crashed = TwistdProcess("--data-dir", data_dir)
        self.addCleanup(crashed.kill)
        crashed.process.kill()
        crashed.process.wait()

        service = TwistdProcess("--data-dir", data_dir)
        self.addCleanup(service.kill)
        with open(os.path.join(data_dir, "postmaster.pid"), encoding="utf-8") as file:
            postmaster = int(file.readline())
        self.assertTrue(psutil.pid_exists(postmaster), service.log)
        self.assertIn(service.stop(signal.SIGTERM), (0, -signal.SIGTERM), service.log)

        wait_until(lambda: not psutil.pid_exists(postmaster), timeout=60,
                   message="the embedded PostgreSQL is still running:\n" + service.log)
