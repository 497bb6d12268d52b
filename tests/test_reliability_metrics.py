"""
Tests for the counters in /metrics that the reliability checks rely on: the
kernel's UDP counters, and every family of a running service.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import treq
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase

from mnemic._metrics import Metrics
from mnemic._service import MnemicService, Settings
from mnemic._udpstats import socket_counters

from ._postgres import new_name, test_dsn
from ._sending import Sender, announcement, new_run_id, sample
from .test_service import wait_for

# A /proc/net/udp table with one IPv4 socket: inode 4242, 0x300 bytes queued,
# 17 drops.
TABLE = (
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when"
    " retrnsmt   uid  timeout inode ref pointer drops\n"
    " 2748: 0100007F:ECDB 00000000:0000 07 00000000:00000300 00:00000000"
    " 00000000     0        0 4242 2 00000000b3acf98d 17\n"
)


class SocketCountersTests(SynchronousTestCase):
    """
    socket_counters reads one socket's line of the kernel's UDP tables.
    """

    def write_table(self, text: str) -> str:
        """
        Write a table file and return its path.
        """
        path = self.mktemp()
        with open(path, "w") as table:
            table.write(text)
        return path

    def test_counters_of_listed_socket(self) -> None:
        """
        The queue column is hex bytes and the drops column a decimal count.
        """
        path = self.write_table(TABLE)

        self.assertEqual(socket_counters(4242, (path,)), (0x300, 17))

    def test_unlisted_socket_or_missing_table(self) -> None:
        """
        A socket that no table lists, or tables that do not exist, give None.
        """
        path = self.write_table(TABLE)
        missing = self.mktemp()

        self.assertIsNone(socket_counters(4243, (path,)))
        self.assertIsNone(socket_counters(4242, (missing,)))

    def test_second_table_searched(self) -> None:
        """
        A socket missing from the first table is looked up in the next one,
        as an IPv6 socket is found in /proc/net/udp6.
        """
        first = self.write_table(TABLE.splitlines()[0] + "\n")
        second = self.write_table(TABLE)

        self.assertEqual(socket_counters(4242, (first, second)), (0x300, 17))

    def test_real_socket_overflow_counted(self) -> None:
        """
        Datagrams sent to a socket that is never read fill its buffer, and the
        kernel's drop counter then counts the rest.
        """
        if not sys.platform.startswith("linux"):
            self.skipTest("/proc/net/udp exists on Linux only")
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(receiver.close)
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        receiver.bind(("127.0.0.1", 0))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sender.close)
        inode = os.fstat(receiver.fileno()).st_ino
        self.assertEqual(socket_counters(inode), (0, 0))

        for _ in range(200):
            sender.sendto(b"x" * 1000, receiver.getsockname())

        counters = socket_counters(inode)
        assert counters is not None
        queued, drops = counters
        self.assertGreater(queued, 0)
        self.assertGreater(drops, 0)


class CounterRenderTests(SynchronousTestCase):
    """
    Counters registered with Metrics.add_counter render as counters.
    """

    def test_counter_type_and_value(self) -> None:
        """
        A registered counter has the counter type and its current reading.
        """
        metrics = Metrics()
        readings = iter([3.0, 8.0])
        metrics.add_counter("mnemic_test_total", "A test.", lambda: next(readings))

        first = metrics.render()
        second = metrics.render()

        self.assertIn("# TYPE mnemic_test_total counter\n", first)
        self.assertIn("\nmnemic_test_total 3.0\n", first)
        self.assertIn("\nmnemic_test_total 8.0\n", second)


class ServiceMetricsTests(TestCase):
    """
    /metrics of a running service exposes every counter the reliability
    checks read, with the values of what was sent.
    """

    timeout = 60

    @inlineCallbacks
    def test_every_family_present(self) -> Any:
        """
        After valid, invalid and rejected datagrams, /metrics has received,
        invalid by reason, rejected by reason, rows written and dropped,
        queue depth, flush latency, reconnects and the kernel's counters.
        """
        service = MnemicService(Settings(udp_port=0, http_port=0, dsn=test_dsn(),
                                         flush_interval=0.05), reactor)
        service.startService()
        self.addCleanup(service.stopService)
        assert service.writer is not None and service.udp_port is not None
        assert service.http_port is not None
        yield service.writer.wait_connected()
        sender = Sender(service.udp_port.getHost().port)
        self.addCleanup(sender.close)
        run_id = new_run_id()
        sender.send(announcement(run_id, new_name("metrics"), ["a"]),
                    sample(run_id, 0, [1.0]), sample(run_id, 1, [1.0, 2.0]),
                    b"{", sample(run_id, 2, [3.0]))
        yield wait_for(lambda: service.metrics.rows_written >= 2)

        url = f"http://127.0.0.1:{service.http_port.getHost().port}/metrics"
        response = yield treq.get(url, persistent=False)
        text = yield response.text()
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

        self.assertEqual(samples[("mnemic_datagrams_received_total", ())], 5)
        self.assertEqual(
            samples[("mnemic_datagrams_invalid_total", (("reason", "not_json"),))], 1)
        self.assertEqual(
            samples[("mnemic_datagrams_rejected_total",
                     (("reason", "column_count"),))], 1)
        self.assertEqual(samples[("mnemic_rows_written_total", ())], 2)
        self.assertEqual(samples[("mnemic_rows_dropped_total", ())], 0)
        self.assertEqual(samples[("mnemic_queue_rows", ())], 0)
        self.assertGreaterEqual(samples[("mnemic_flush_seconds_count", ())], 1)
        self.assertGreater(samples[("mnemic_flush_seconds_sum", ())], 0)
        self.assertEqual(samples[("mnemic_db_reconnects_total", ())], 0)
        self.assertEqual(samples[("mnemic_udp_kernel_drops_total", ())], 0)
        self.assertEqual(samples[("mnemic_udp_receive_queue_bytes", ())], 0)
