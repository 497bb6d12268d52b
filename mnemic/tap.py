"""
The ``twistd mnemic`` command: its options and the service they build.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

from twisted.application.service import IService
from twisted.python import usage

from ._embedded import default_data_dir
from ._service import MnemicService, Settings
from ._signing import SecretError, read_secret_file, secret_from_environment


def _port(source: str) -> Callable[[str], int]:
    # source is the option or environment variable that the value came from.
    # The error message names it, so the user sees what to change.
    def coerce(value: str) -> int:
        try:
            port = int(value)
        except ValueError:
            raise usage.UsageError(
                f"{source} must be a port number, not {value!r}"
            ) from None
        if not 0 <= port <= 65535:
            raise usage.UsageError(f"{source} must be between 0 and 65535, not {port}")
        return port

    return coerce


def _positive(option: str, kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def coerce(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise usage.UsageError(
                f"--{option} must be a number, not {value!r}"
            ) from None
        if not number > 0:
            raise usage.UsageError(f"--{option} must be greater than 0, not {value}")
        return number

    return coerce


def _env_port(name: str, default: int) -> int:
    # The earlier release's containers were configured by these variables.
    value = os.environ.get(name)
    return _port(f"environment variable {name}")(value) if value else default


def _read_secret(path: Optional[str]) -> Optional[bytes]:
    # A secret on the command line would show in ps, so there is no option
    # that takes the secret itself.
    try:
        if path is not None:
            return read_secret_file(path)
        return secret_from_environment()
    except SecretError as error:
        option = "--secret-file" if path is not None else "MNEMIC_SECRET"
        raise usage.UsageError(f"{option}: {error}") from None


class Options(usage.Options):
    """
    Command-line options of ``twistd mnemic``.
    """

    synopsis = "[options]"
    longdesc = (
        "Receive samples from programs traced with dolon over UDP, store them in"
        " PostgreSQL and show them in a browser. Without --postgres or"
        " POSTGRES_CONN_STR, an embedded PostgreSQL server is started in --data-dir."
    )

    optParameters = [
        ["udp-port", "u", None,
         "UDP port for samples [default: $BACK_END_PORT or 12013].",
         _port("--udp-port")],
        ["http-port", "p", None,
         "HTTP port of the web UI [default: $FRONT_END_PORT or 12111].",
         _port("--http-port")],
        ["interface", "i", "127.0.0.1",
         "Address both listeners bind to; 0.0.0.0 or :: to accept other hosts."],
        ["postgres", None, None,
         "libpq connection string or URI of the database to use"
         " [default: $POSTGRES_CONN_STR, else an embedded server]."],
        ["data-dir", None, None,
         "Directory of the embedded server's files [default: a per-user data"
         " directory]."],
        ["batch-rows", None, 20000, "Most sample rows written by one statement.",
         _positive("batch-rows", int)],
        ["flush-interval", None, 0.2,
         "Seconds a sample may wait for its batch to fill.",
         _positive("flush-interval", float)],
        ["buffer-rows", None, 1_000_000,
         "Most rows held while the database is slow or down; beyond it rows are"
         " dropped and counted.", _positive("buffer-rows", int)],
        ["shutdown-timeout", None, 30.0,
         "Seconds to keep writing queued rows after SIGTERM or SIGINT.",
         _positive("shutdown-timeout", float)],
        ["secret-file", None, None,
         "File containing the shared secret that clients sign datagrams with"
         " (HMAC-SHA256); unsigned datagrams are then rejected"
         " [default: $MNEMIC_SECRET, else datagrams are not signed]."],
        ["retention-days", None, None,
         "Delete runs whose last sample is older than this many days; checked"
         " at start and then once a day [default: keep every run].",
         _positive("retention-days", float)],
    ]

    optFlags = [
        ["no-web", None, "Do not serve the web UI (an ingest-only node)."],
        ["no-udp", None, "Do not listen for samples (a web-only node)."],
        ["reuse-port", None,
         "Set SO_REUSEPORT on the UDP socket, so that several mnemic processes"
         " share --udp-port and the kernel spreads datagrams between them."],
    ]

    #: The shared secret read by postOptions, kept out of the option values so
    #: that printing the options never shows it.
    secret: Optional[bytes] = None

    def postOptions(self) -> None:
        """
        Fill in defaults from the environment and check option combinations.
        """
        self.secret = _read_secret(self["secret-file"])
        if self["udp-port"] is None:
            self["udp-port"] = _env_port("BACK_END_PORT", 12013)
        if self["http-port"] is None:
            self["http-port"] = _env_port("FRONT_END_PORT", 12111)
        if self["postgres"] is None:
            self["postgres"] = os.environ.get("POSTGRES_CONN_STR") or None
        if self["postgres"] is not None and self["data-dir"] is not None:
            raise usage.UsageError(
                "--data-dir is for the embedded server; drop it when using --postgres"
                " or POSTGRES_CONN_STR"
            )
        if self["no-web"] and self["no-udp"]:
            raise usage.UsageError(
                "--no-web and --no-udp together leave nothing to run"
            )
        if self["postgres"] is None and self["data-dir"] is None:
            self["data-dir"] = default_data_dir()

    def settings(self) -> Settings:
        """
        Return the parsed options as service settings.
        """
        return Settings(
            udp_port=self["udp-port"],
            http_port=self["http-port"],
            interface=self["interface"],
            dsn=self["postgres"],
            data_dir=self["data-dir"],
            batch_rows=self["batch-rows"],
            flush_interval=self["flush-interval"],
            buffer_rows=self["buffer-rows"],
            shutdown_timeout=self["shutdown-timeout"],
            web=not self["no-web"],
            udp=not self["no-udp"],
            reuse_port=bool(self["reuse-port"]),
            retention_days=self["retention-days"],
            secret=self.secret,
        )


def makeService(options: Options, reactor: Optional[Any] = None) -> IService:
    """
    Build the mnemic service from parsed options.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    settings = options.settings()
    settings.interruptible_shutdown = True
    return MnemicService(settings, reactor)
