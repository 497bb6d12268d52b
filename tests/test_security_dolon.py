"""
Tests for signing in dolon: a tracer given mnemic's shared secret signs every
datagram so that mnemic's SignedDecoder accepts it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import unittest
import uuid
from typing import Any
from unittest import mock

from dolon import trace_client
from dolon._protocol import MAX_DATAGRAM_BYTES, largest_sample_size
from dolon._signing import SIGNATURE_BYTES, resolve_secret
from mnemic._protocol import Announcement, Sample
from mnemic._signing import SignedDecoder

SECRET = "tracer secret \u00e9"
INTERVAL = 0.02
RECEIVE_TIMEOUT = 5.0


def constant() -> float:
    """
    A diagnostic that always returns 2.5.
    """
    return 2.5


class Receiver:
    """
    A UDP socket on a free loopback port that returns raw datagrams.
    """

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(RECEIVE_TIMEOUT)
        self.port: int = self.socket.getsockname()[1]

    async def receive(self, count: int) -> list[bytes]:
        """
        Return the next ``count`` datagrams, read in a worker thread.
        """
        loop = asyncio.get_running_loop()
        return [await loop.run_in_executor(None, self.socket.recv, 65536)
                for _ in range(count)]

    def close(self) -> None:
        """
        Close the socket.
        """
        self.socket.close()


class SigningTestCase(unittest.IsolatedAsyncioTestCase):
    """
    Runs tracers against a receiver, with DOLON_SECRET removed.
    """

    def setUp(self) -> None:
        """
        Open the receiver and hide the host's DOLON_SECRET.
        """
        self.receiver = Receiver()
        self.addCleanup(self.receiver.close)
        patcher = mock.patch.dict(os.environ)
        patcher.start()
        self.addCleanup(patcher.stop)
        os.environ.pop("DOLON_SECRET", None)

    async def trace(self, count: int, **kwargs: Any) -> list[bytes]:
        """
        Run a tracer with ``kwargs`` until ``count`` datagrams arrived, and
        return them.
        """
        task = asyncio.ensure_future(trace_client.start_tracer(
            "signed", INTERVAL, "127.0.0.1", self.receiver.port, constant, **kwargs
        ))
        try:
            return await self.receiver.receive(count)
        finally:
            task.cancel()
            await asyncio.wait({task})


class TracerSigningTests(SigningTestCase):
    """
    start_tracer signs with the ``secret`` argument or DOLON_SECRET.
    """

    async def test_secret_argument_signs(self) -> None:
        """
        With ``secret=``, the announcement and every sample verify with the
        same secret on the server, and samples are numbered from 0.
        """
        decoder = SignedDecoder(SECRET.encode("utf-8"))

        datagrams = await self.trace(4, secret=SECRET)

        messages = [decoder(datagram, time.time()) for datagram in datagrams]
        self.assertIsInstance(messages[0], Announcement)
        samples = [m for m in messages if isinstance(m, Sample)]
        self.assertEqual([s.seq for s in samples], [0, 1, 2])
        self.assertEqual(samples[0].values, (2.5,))

    async def test_environment_variable_signs(self) -> None:
        """
        Without ``secret=``, DOLON_SECRET is the secret.
        """
        os.environ["DOLON_SECRET"] = "from-environment\n"
        decoder = SignedDecoder(b"from-environment")

        datagrams = await self.trace(2)

        for datagram in datagrams:
            decoder(datagram, time.time())

    async def test_argument_wins_over_environment(self) -> None:
        """
        ``secret=`` takes precedence over DOLON_SECRET.
        """
        os.environ["DOLON_SECRET"] = "from-environment"
        decoder = SignedDecoder(b"from-argument")

        datagrams = await self.trace(2, secret=b"from-argument")

        for datagram in datagrams:
            decoder(datagram, time.time())

    async def test_unsigned_without_secret(self) -> None:
        """
        Without a secret, datagrams carry no signature member.
        """
        datagrams = await self.trace(2)

        for datagram in datagrams:
            self.assertNotIn("sig", json.loads(datagram))

    async def test_columns_too_many_when_signed(self) -> None:
        """
        Columns whose longest sample fits a datagram unsigned but not with a
        signature keep a signed tracer from starting, with an error naming
        the limit.
        """
        run = str(uuid.uuid4())
        count = next(n for n in range(1, 1001)
                     if largest_sample_size(run, n) > MAX_DATAGRAM_BYTES
                     - SIGNATURE_BYTES)
        self.assertLessEqual(largest_sample_size(run, count), MAX_DATAGRAM_BYTES)
        diagnostics = [_named(f"c{i}") for i in range(count)]
        tracer = trace_client.Tracer("wide", 1, "127.0.0.1", self.receiver.port,
                                     *diagnostics, secret="s")

        with self.assertLogs("dolon", logging.ERROR) as logs:
            await asyncio.wait_for(tracer.run(), RECEIVE_TIMEOUT)

        self.assertIn(f"more than the {MAX_DATAGRAM_BYTES - SIGNATURE_BYTES}-byte"
                      " limit of a signed datagram", logs.output[0])

    async def test_thread_tracer_signs(self) -> None:
        """
        start_thread_tracer passes ``secret=`` on to its tracer.
        """
        decoder = SignedDecoder(b"threaded")
        handle = trace_client.start_thread_tracer(
            "signed-thread", INTERVAL, "127.0.0.1", self.receiver.port, constant,
            secret="threaded",
        )
        try:
            datagrams = await self.receiver.receive(2)
        finally:
            handle.stop()

        for datagram in datagrams:
            decoder(datagram, time.time())


class ResolveSecretTests(unittest.TestCase):
    """
    resolve_secret checks the secret when the tracer is made.
    """

    def test_invalid_secrets(self) -> None:
        """
        Empty secrets, secrets of other types and text that is not valid
        Unicode raise ConfigurationError naming the argument.
        """
        cases: list[Any] = ["", b"  \n", 42, "\ud800"]
        for secret in cases:
            with self.assertRaises(trace_client.ConfigurationError) as caught:
                trace_client.Tracer("t", 1, "127.0.0.1", 1, constant, secret=secret)
            self.assertTrue(str(caught.exception).startswith("secret "), secret)

    def test_empty_environment_variable(self) -> None:
        """
        An empty DOLON_SECRET raises ConfigurationError naming the variable.
        """
        with mock.patch.dict(os.environ, {"DOLON_SECRET": ""}):
            with self.assertRaises(trace_client.ConfigurationError) as caught:
                resolve_secret(None)

        self.assertIn("DOLON_SECRET is empty", str(caught.exception))

    def test_text_and_bytes_equal(self) -> None:
        """
        A text secret is its UTF-8 bytes, without surrounding whitespace.
        """
        self.assertEqual(resolve_secret(" caf\u00e9\n"), "caf\u00e9".encode())
        self.assertEqual(resolve_secret(b"caf\xc3\xa9"), "caf\u00e9".encode())


def _named(name: str) -> Any:
    def diagnostic() -> float:
        return 1.0

    diagnostic.__name__ = name
    return diagnostic
