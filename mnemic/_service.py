"""
The mnemic service: database, writer, UDP listener and web server in order.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any, Optional

from twisted.application.service import Service
from twisted.internet.defer import inlineCallbacks
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.web.server import Site
from txpostgres import txpostgres

from ._embedded import EmbeddedPostgres
from ._ingest import IngestProtocol
from ._metrics import Metrics
from ._pool import ReadPool
from ._retention import Retention
from ._schema import create_schema
from ._signing import SignedDecoder
from ._store import Store
from ._udp import listen_udp
from ._udpstats import watch_udp_socket
from ._web import WebApp
from ._writer import Writer


@dataclass
class Settings:
    """
    The service's configuration, as parsed from the command line.
    """

    udp_port: int = 12013
    http_port: int = 12111
    interface: str = "127.0.0.1"
    dsn: Optional[str] = None
    data_dir: Optional[str] = None
    batch_rows: int = 20000
    flush_interval: float = 0.2
    buffer_rows: int = 1_000_000
    shutdown_timeout: float = 30.0
    udp_receive_buffer: int = 32 * 1024 * 1024
    web: bool = True
    udp: bool = True
    reuse_port: bool = False
    # A second SIGINT or SIGTERM during shutdown abandons the queued rows.
    # Set by twistd's makeService only: tests run the service in a process
    # whose signal handlers belong to the test runner.
    interruptible_shutdown: bool = False
    retention_days: Optional[float] = None
    # Shared secret for signed datagrams; repr=False keeps it out of logs.
    secret: Optional[bytes] = field(default=None, repr=False)


class MnemicService(Service):
    """
    Starts the parts of mnemic in dependency order and stops them in reverse.

    On stop the UDP port closes first, then the writer flushes every queued
    row, and only then does the embedded database stop, so nothing received
    before the signal is lost.
    """

    log = Logger()

    def __init__(self, settings: Settings, reactor: Any) -> None:
        self.settings = settings
        self._reactor = reactor
        self.metrics = Metrics()
        self._embedded: Optional[EmbeddedPostgres] = None
        self.writer: Optional[Writer] = None
        self._pool: Optional[ReadPool] = None
        self.udp_port: Optional[IListeningPort] = None
        self.http_port: Optional[IListeningPort] = None
        self._retention: Optional[Retention] = None
        self.dsn = settings.dsn

    def startService(self) -> None:
        """
        Start the database (when embedded), the writer and both listeners.
        """
        super().startService()
        settings = self.settings
        if self.dsn is None:
            assert settings.data_dir is not None
            self._embedded = EmbeddedPostgres(settings.data_dir)
            try:
                self.dsn = self._embedded.start()
            except Exception as error:
                self.log.error(
                    "Cannot start the embedded PostgreSQL in {data_dir}: {error}."
                    " Choose a writable --data-dir, or use --postgres.",
                    data_dir=settings.data_dir, error=error)
                raise
        assert self.dsn is not None

        self.writer = Writer(self._connect_writer, self.metrics, self._reactor,
                             batch_rows=settings.batch_rows,
                             flush_interval=settings.flush_interval,
                             buffer_rows=settings.buffer_rows)
        self.writer.start()
        if settings.udp:
            protocol = self._ingest_protocol(self.writer)
            try:
                self.udp_port = listen_udp(
                    self._reactor, settings.udp_port, protocol, settings.interface,
                    settings.udp_receive_buffer, reuse_port=settings.reuse_port,
                )
            except OSError as error:
                self.log.error(
                    "Cannot listen for samples on UDP {interface}:{port}: {error}."
                    " Stop the program using the port, choose another --udp-port,"
                    " or start every mnemic that shares it with --reuse-port.",
                    interface=settings.interface, port=settings.udp_port,
                    error=error.strerror or error)
                raise
            watch_udp_socket(self.metrics, self.udp_port)
            self.log.info("Listening for samples on UDP {address}",
                          address=_address(self.udp_port))
        if settings.web or settings.retention_days:
            self._pool = ReadPool(self.dsn)
        if settings.retention_days:
            self._start_retention(settings.retention_days)
        if settings.web:
            assert self._pool is not None
            # The port actually bound, which differs from the setting when it is 0.
            udp_port = (settings.udp_port if self.udp_port is None
                        else self.udp_port.getHost().port)  # type: ignore[attr-defined]
            web = WebApp(Store(self._pool), self.metrics, udp_port=udp_port)
            site = Site(web.resource())
            site.noisy = False
            try:
                self.http_port = self._reactor.listenTCP(
                    settings.http_port, site, interface=settings.interface
                )
            except CannotListenError as error:
                self.log.error(
                    "Cannot serve the web UI on TCP {interface}:{port}: {error}."
                    " Stop the program using the port or choose another"
                    " --http-port.",
                    interface=settings.interface, port=settings.http_port,
                    error=error.socketError)
                raise
            self.log.info("Web UI on http://{address}/",
                          address=_address(self.http_port))

    def _start_retention(self, days: float) -> None:
        assert self._pool is not None and self.writer is not None
        self._retention = Retention(self._pool, days, self._reactor)
        # The first deletion waits for the schema, which the writer creates.
        self.writer.wait_connected().addCallback(
            lambda _: self._retention.start() if self._retention else None
        )

    def _ingest_protocol(self, writer: Writer) -> IngestProtocol:
        if self.settings.secret is None:
            return IngestProtocol(writer, self.metrics, self._reactor)
        self.log.info("Accepting only datagrams signed with the shared secret")
        decode = SignedDecoder(self.settings.secret)
        return IngestProtocol(writer, self.metrics, self._reactor, decode=decode)

    @inlineCallbacks
    def _connect_writer(self) -> Any:
        connection = txpostgres.Connection(reactor=self._reactor)
        yield connection.connect(self.dsn)
        try:
            yield create_schema(connection)
        except Exception:
            connection.close()
            raise
        return connection

    @inlineCallbacks
    def stopService(self) -> Any:
        """
        Stop listening, write every queued row, then stop the database.
        """
        super().stopService()
        if self.udp_port is not None:
            yield self.udp_port.stopListening()
        if self.http_port is not None:
            yield self.http_port.stopListening()
        if self._retention is not None:
            self._retention.stop()
            self._retention = None
        if self.writer is not None:
            queued = self.writer.queued
            self.log.info("Writing {rows} queued rows before exit", rows=queued)
            if queued and self.settings.interruptible_shutdown:
                self._abandon_on_second_signal()
            yield self.writer.stop(self.settings.shutdown_timeout)
        if self._pool is not None:
            yield self._pool.close()
        if self._embedded is not None:
            self._embedded.stop()
        self.log.info("Stopped; {rows} rows written in all",
                      rows=self.metrics.rows_written)


    def _abandon_on_second_signal(self) -> None:
        # twistd stops the reactor on the first SIGINT or SIGTERM, and its
        # handler fails on a second one while the writer is still flushing.
        # A second signal now means: exit without the rows not yet written.
        self.log.info("Waiting up to {timeout} s for the database; send the"
                      " signal again (Ctrl-C) to exit without these rows",
                      timeout=self.settings.shutdown_timeout)

        def handler(number: int, frame: Any) -> None:
            if self.writer is not None:
                self._reactor.callFromThread(self.writer.abandon)

        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, handler)


def _address(port: IListeningPort) -> str:
    host = port.getHost()
    return f"{host.host}:{host.port}"  # type: ignore[attr-defined]
