"""
SIGTERM and SIGINT while samples are still arriving: ``twistd mnemic`` writes
every row it received before it exits, or gives up after its time limit and
logs how many rows it could not write.
"""

from __future__ import annotations

import re
import signal
import socket
import threading
import time

from twisted.trial.unittest import SynchronousTestCase

from bench._pgcontrol import RestartablePostgres

from ._postgres import new_name, query, test_dsn
from ._sending import announcement, new_run_id, sample
from ._twistd import TwistdProcess, wait_until

_QUEUED_LINE = re.compile(r"Writing (\d+) queued rows before exit")
_WRITTEN_LINE = re.compile(r"Stopped; (\d+) rows written in all")


class SteadySender(threading.Thread):
    """
    Sends samples of one run to a port at about ``rate`` a second until
    stopped, whether or not anything still listens.
    """

    def __init__(self, port: int, rate: float) -> None:
        super().__init__(name="steady sender", daemon=True)
        self.port = port
        self.rate = rate
        self.run_id = new_run_id()
        self.sent = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        """
        Send the announcement, then samples in bursts every millisecond.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        address = ("127.0.0.1", self.port)
        sock.sendto(announcement(self.run_id, new_name("shutdown"), ["a"]), address)
        started = time.monotonic()
        while not self.stopping.is_set():
            due = started + self.sent / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(sample(self.run_id, self.sent, [1.0]), address)
            self.sent += 1
        sock.close()


class ShutdownUnderLoadTests(SynchronousTestCase):
    """
    Signals that arrive while datagrams keep coming in.
    """

    def start_service(self, dsn: str, *arguments: str) -> TwistdProcess:
        """
        Start twistd mnemic on ``dsn``; rows wait in its queue for 60 s
        unless ``arguments`` set other options.
        """
        service = TwistdProcess("--postgres", dsn, "--flush-interval", "60",
                                "--batch-rows", "1000000", *arguments)
        self.addCleanup(service.kill)
        return service

    def start_sender(self, service: TwistdProcess) -> SteadySender:
        """
        Start sending 5,000 samples a second, and wait until some arrived.
        """
        sender = SteadySender(service.udp_port, 5000)
        sender.start()
        self.addCleanup(sender.stopping.set)
        wait_until(lambda: service.metric("mnemic_queue_rows") >= 3000)
        return sender

    def check_signal_under_load(self, signal_number: int) -> None:
        """
        Send ``signal_number`` while samples arrive, and check that the rows
        queued at that moment are written: the stored sequence numbers have
        no gap, and the service wrote as many rows as it logs.
        """
        service = self.start_service(test_dsn())
        sender = self.start_sender(service)

        status = service.stop(signal_number)
        sender.stopping.set()
        sender.join()

        self.assertIn(status, (0, -signal_number), service.log)
        queued = _QUEUED_LINE.search(service.log)
        written = _WRITTEN_LINE.search(service.log)
        assert queued is not None and written is not None, service.log
        rows = query("SELECT seq FROM samples WHERE run_id = %s ORDER BY seq",
                     (sender.run_id,))
        # Rows that arrived before the writer's first connection were
        # written then, so the queue at the signal contains the rest.
        self.assertGreaterEqual(int(queued.group(1)), 3000)
        self.assertEqual(int(written.group(1)), len(rows))
        self.assertEqual([row[0] for row in rows], list(range(len(rows))))
        self.assertGreater(sender.sent, len(rows))
        self.assertNotIn("Shutdown timed out", service.log)

    def test_sigterm_under_load(self) -> None:
        """
        SIGTERM under load writes every row received before it.
        """
        self.check_signal_under_load(signal.SIGTERM)

    def test_sigint_under_load(self) -> None:
        """
        SIGINT under load writes every row received before it.
        """
        self.check_signal_under_load(signal.SIGINT)

    def test_time_limit_with_database_down(self) -> None:
        """
        With the database down, the service still exits after
        --shutdown-timeout and logs how many rows it could not write.
        """
        test_dsn()
        database = RestartablePostgres()
        self.addCleanup(database.close)
        service = self.start_service(database.dsn, "--shutdown-timeout", "2")
        sender = self.start_sender(service)
        sender.stopping.set()
        sender.join()
        wait_until(lambda: service.metric("mnemic_datagrams_received_total")
                   == sender.sent + 1)
        queued = int(service.metric("mnemic_queue_rows"))
        database.stop()

        status = service.stop(signal.SIGTERM, timeout=30)

        self.assertIn(status, (0, -signal.SIGTERM), service.log)
        self.assertIn(
            f"Shutdown timed out after 2.0 s: {queued} rows not written",
            service.log,
        )
