"""
Tests for dolon's UDP sender and for tracers facing network and name
resolution failures: the traced program never notices.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
import unittest
from typing import Any
from unittest import mock

from dolon._ratelimit import RateLimitedLog
from dolon._sender import UdpSender, choose_address
from tests.test_dolon_trace_client import (
    INTERVAL,
    RECEIVE_TIMEOUT,
    Receiver,
    TracerTestCase,
    constant,
)


class NetworkFailureTests(TracerTestCase):
    """
    Tests that trouble with the network or the name of the server never
    reaches the program.
    """

    async def test_unreachable_server(self) -> None:
        """
        Sending to a port where nothing listens (ICMP port unreachable) logs
        a warning and the tracer keeps running.
        """
        closed = Receiver()
        port = closed.port
        closed.close()

        with self.assertLogs("dolon", logging.WARNING) as logs:
            task = self.start("lonely", INTERVAL, "127.0.0.1", port, constant)
            await asyncio.sleep(10 * INTERVAL)

        self.assertFalse(task.done())
        self.assertTrue(any("nothing is listening" in line for line in logs.output))
        await self.assert_program_runs(task)

    async def test_server_starts_later(self) -> None:
        """
        Samples reach a server that starts listening after the tracer, and
        the tracer announces the run again within the announce interval.
        """
        port = self.receiver.port
        self.receiver.close()

        with mock.patch("dolon._tracer.ANNOUNCE_INTERVAL", 0.2):
            task = self.start("patient", INTERVAL, "127.0.0.1", port, constant)
            await asyncio.sleep(5 * INTERVAL)
            self.receiver = Receiver(port=port)
            messages = [await self.receiver.receive() for _ in range(8)]

        self.assertFalse(task.done())
        self.assertIn("run", [m["type"] for m in messages])
        self.assertGreater(max(m.get("seq", 0) for m in messages), 4)

    async def test_name_resolution_failure(self) -> None:
        """
        A host that does not resolve logs a warning, the tracer keeps
        running, and it sends once the host resolves.
        """
        loop = asyncio.get_running_loop()
        real_getaddrinfo = loop.getaddrinfo
        failures = 0

        async def flaky_getaddrinfo(*args: Any, **kwargs: Any) -> Any:
            nonlocal failures
            if failures < 1:
                failures += 1
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return await real_getaddrinfo("127.0.0.1", *args[1:], **kwargs)

        with mock.patch.object(loop, "getaddrinfo", flaky_getaddrinfo):
            with self.assertLogs("dolon", logging.WARNING) as logs:
                task = self.start(
                    "unresolved",
                    INTERVAL,
                    "mnemic.invalid",
                    self.receiver.port,
                    constant,
                )
                announcement = await self.receiver.receive()

        self.assertFalse(task.done())
        self.assertEqual(announcement["type"], "run")
        self.assertTrue(any("Cannot resolve" in line for line in logs.output))
        await self.assert_program_runs(task)

    async def test_server_stops_and_returns(self) -> None:
        """
        While the server is stopped (ICMP port unreachable) the tracer logs
        a warning and goes on; when a server listens again it gets the same
        run, announced again, with the sequence numbers of the missed
        samples skipped.
        """
        port = self.receiver.port

        with mock.patch("dolon._tracer.ANNOUNCE_INTERVAL", 0.2):
            task = self.start("restarted", INTERVAL, "127.0.0.1", port, constant)
            announcement = await self.receiver.receive()
            before = await self.receiver.receive_samples(2)
            with self.assertLogs("dolon", logging.WARNING) as logs:
                self.receiver.close()
                await asyncio.sleep(10 * INTERVAL)
            await self.assert_program_runs(task)
            self.receiver = Receiver(port=port)
            self.addCleanup(self.receiver.close)
            messages = [await self.receiver.receive() for _ in range(8)]

        self.assertTrue(any("nothing is listening" in line for line in logs.output))
        runs = [m for m in messages if m["type"] == "run"]
        samples = [m for m in messages if m["type"] == "sample"]
        self.assertGreaterEqual(len(runs), 1)
        self.assertEqual(runs[0]["run"], announcement["run"])
        self.assertEqual({m["run"] for m in samples}, {announcement["run"]})
        self.assertGreater(samples[0]["seq"], before[-1]["seq"] + 5)

    async def test_slow_resolution_off_the_loop(self) -> None:
        """
        A name look-up that blocks for a long time runs outside the event
        loop: the program keeps running, nothing is sent meanwhile, and the
        run starts once the name resolves.
        """
        release = threading.Event()
        self.addCleanup(release.set)
        real_getaddrinfo = socket.getaddrinfo

        def blocking_getaddrinfo(
            host: str, port: int, *args: Any, **kwargs: Any
        ) -> Any:
            release.wait(RECEIVE_TIMEOUT)
            return real_getaddrinfo("127.0.0.1", port, *args, **kwargs)

        with mock.patch("socket.getaddrinfo", blocking_getaddrinfo):
            task = self.start(
                "slow-dns", INTERVAL, "mnemic.invalid", self.receiver.port, constant
            )
            await asyncio.sleep(10 * INTERVAL)
            await self.assert_program_runs(task)
            sent_while_blocked = self.receiver.pending()
            release.set()
            announcement = await self.receiver.receive()

        self.assertEqual(sent_while_blocked, 0)
        self.assertEqual(announcement["type"], "run")
        await self.assert_program_runs(task)

    async def test_resolved_once_for_many_samples(self) -> None:
        """
        The host name is resolved when the run starts, not for every sample.
        """
        loop = asyncio.get_running_loop()
        real_getaddrinfo = loop.getaddrinfo
        hosts: list[str] = []

        async def counting_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
            hosts.append(host)
            return await real_getaddrinfo(host, *args, **kwargs)

        with mock.patch.object(loop, "getaddrinfo", counting_getaddrinfo):
            self.start("once", INTERVAL, "localhost", self.receiver.port, constant)
            samples = await self.receiver.receive_samples(10)

        self.assertEqual(samples[-1]["seq"], 9)
        self.assertEqual(hosts, ["localhost"])

    async def test_unexpected_resolver_error(self) -> None:
        """
        A resolver that raises something other than OSError logs an error
        with the traceback, and the tracer retries and sends.
        """
        loop = asyncio.get_running_loop()
        real_getaddrinfo = loop.getaddrinfo
        failures = 0

        async def broken_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
            nonlocal failures
            if failures < 1:
                failures += 1
                raise RuntimeError("resolver broke")
            return await real_getaddrinfo(host, *args, **kwargs)

        with mock.patch.object(loop, "getaddrinfo", broken_getaddrinfo):
            with self.assertLogs("dolon", logging.ERROR) as logs:
                task = self.start(
                    "resolver", INTERVAL, "127.0.0.1", self.receiver.port, constant
                )
                announcement = await self.receiver.receive()

        self.assertEqual(announcement["type"], "run")
        self.assertIn("failed unexpectedly", logs.output[0])
        self.assertIn("RuntimeError", logs.output[0])
        await self.assert_program_runs(task)

    async def test_ipv6_only_host_name(self) -> None:
        """
        A host name that resolves only to an IPv6 address is sent to over
        IPv6.
        """
        try:
            receiver = Receiver(socket.AF_INET6, "::1")
        except OSError as error:
            self.skipTest(f"IPv6 loopback is not available: {error}")
        self.addCleanup(receiver.close)
        loop = asyncio.get_running_loop()
        real_getaddrinfo = loop.getaddrinfo

        async def ipv6_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
            return await real_getaddrinfo("::1", *args, **kwargs)

        with mock.patch.object(loop, "getaddrinfo", ipv6_getaddrinfo):
            task = self.start("six", INTERVAL, "mnemic.test", receiver.port, constant)
            samples = await receiver.receive_samples(2)

        self.assertEqual(samples[1]["values"], [7.5])
        await self.assert_program_runs(task)


class ChooseAddressTests(unittest.TestCase):
    """
    Tests for the choice among the addresses of a host name.
    """

    def test_prefers_ipv4(self) -> None:
        """
        With IPv6 listed first, the IPv4 address is chosen.
        """
        infos = [
            (socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("::1", 12013, 0, 0)),
            (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("127.0.0.1", 12013)),
        ]

        self.assertEqual(choose_address(infos), (socket.AF_INET, ("127.0.0.1", 12013)))

    def test_ipv6_only(self) -> None:
        """
        Without an IPv4 address, the first IPv6 address is chosen.
        """
        infos = [
            (socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("::1", 12013, 0, 0)),
            (socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("fe80::1", 12013, 0, 1)),
        ]

        self.assertEqual(choose_address(infos), (socket.AF_INET6, ("::1", 12013, 0, 0)))


class FailingSocket:
    """
    A socket whose every send raises ``error``.
    """

    def __init__(self, error: OSError) -> None:
        self.error = error

    def send(self, datagram: bytes) -> int:
        raise self.error

    def close(self) -> None:
        pass


class UdpSenderTests(unittest.TestCase):
    """
    Tests for the datagrams UdpSender drops.
    """

    def sender(self) -> UdpSender:
        """
        Return a sender that logs on the dolon._sender logger.
        """
        return UdpSender(
            "mnemic.test", 12013, RateLimitedLog(logging.getLogger("dolon._sender"))
        )

    def test_unresolved_drops(self) -> None:
        """
        Before the host resolved, a send drops the datagram and returns
        False.
        """
        sender = self.sender()

        self.assertFalse(sender.send(b"{}"))
        self.assertEqual(sender.dropped, 1)
        self.assertEqual(sender.sent, 0)

    def test_send_errors_drop_and_log_once(self) -> None:
        """
        A full send buffer, ICMP port unreachable and an unreachable network
        each drop the datagram and log one warning with the reason, however
        often they repeat.
        """
        cases = {
            "send buffer is full": BlockingIOError(errno.EAGAIN, "busy"),
            "ICMP port unreachable": ConnectionRefusedError(errno.ECONNREFUSED, "x"),
            "Network is unreachable": OSError(
                errno.ENETUNREACH, "Network is unreachable"
            ),
        }
        for reason, error in cases.items():
            with self.subTest(reason=reason):
                sender = self.sender()
                sender._socket = FailingSocket(error)  # type: ignore[assignment]

                with self.assertLogs("dolon", logging.WARNING) as logs:
                    results = [sender.send(b"{}") for _ in range(5)]

                self.assertEqual(results, [False] * 5)
                self.assertEqual(sender.dropped, 5)
                self.assertEqual(len(logs.records), 1)
                self.assertIn(reason, logs.output[0])
                self.assertIn("mnemic.test:12013", logs.output[0])
