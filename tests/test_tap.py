"""
Tests for mnemic.tap: the options of ``twistd mnemic`` and their defaults.
"""

from __future__ import annotations

import os
from unittest import mock

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from mnemic import tap
from mnemic._service import MnemicService, Settings

# The environment variables of the earlier release's containers.
ENVIRONMENT = ("POSTGRES_CONN_STR", "BACK_END_PORT", "FRONT_END_PORT")

DATA_DIR = "/nonexistent/mnemic-test/pgdata"
DSN = "postgresql://mnemic@127.0.0.1:5432/mnemic"


class OptionsTestCase(SynchronousTestCase):
    """
    Parses options with a controlled environment and a fixed data directory.
    """

    def setUp(self) -> None:
        """
        Remove the earlier release's variables and fix the default data
        directory, so the host's settings cannot leak into a test.
        """
        self.set_environment()
        self.patch(tap, "default_data_dir", lambda: DATA_DIR)

    def set_environment(self, **values: str) -> None:
        """
        Set the earlier release's variables to ``values`` and remove the others
        until the test ends.
        """
        patcher = mock.patch.dict(os.environ)
        patcher.start()
        self.addCleanup(patcher.stop)
        for name in ENVIRONMENT:
            os.environ.pop(name, None)
        os.environ.update(values)

    def parse(self, *arguments: str) -> tap.Options:
        """
        Return Options parsed from the command-line ``arguments``.
        """
        options = tap.Options()
        options.parseOptions(list(arguments))
        return options

    def usage_error(self, *arguments: str) -> str:
        """
        Parse ``arguments``, which must fail, and return the error message.
        """
        with self.assertRaises(UsageError) as caught:
            self.parse(*arguments)
        return str(caught.exception)


class OptionsDefaultTests(OptionsTestCase):
    """
    Defaults, from the built-in values and from the environment.
    """

    def test_defaults(self) -> None:
        """
        Without options or environment, mnemic listens on 127.0.0.1, UDP 12013
        and HTTP 12111, and uses an embedded server in the data directory.
        """
        options = self.parse()

        self.assertEqual(options["udp-port"], 12013)
        self.assertEqual(options["http-port"], 12111)
        self.assertEqual(options["interface"], "127.0.0.1")
        self.assertIsNone(options["postgres"])
        self.assertEqual(options["data-dir"], DATA_DIR)
        self.assertFalse(options["no-web"])
        self.assertFalse(options["no-udp"])

    def test_default_settings(self) -> None:
        """
        The default options become the service settings of the same meaning.
        """
        settings = self.parse().settings()

        self.assertEqual(
            settings,
            Settings(
                udp_port=12013,
                http_port=12111,
                interface="127.0.0.1",
                dsn=None,
                data_dir=DATA_DIR,
                batch_rows=20000,
                flush_interval=0.2,
                buffer_rows=1_000_000,
                shutdown_timeout=30.0,
                web=True,
                udp=True,
            ),
        )

    def test_environment_defaults(self) -> None:
        """
        BACK_END_PORT, FRONT_END_PORT and POSTGRES_CONN_STR set the UDP port,
        the HTTP port and the database, and no data directory is used.
        """
        self.set_environment(
            POSTGRES_CONN_STR=DSN, BACK_END_PORT="13013", FRONT_END_PORT="13111"
        )

        options = self.parse()

        self.assertEqual(options["udp-port"], 13013)
        self.assertEqual(options["http-port"], 13111)
        self.assertEqual(options["postgres"], DSN)
        self.assertIsNone(options["data-dir"])

    def test_empty_environment_ignored(self) -> None:
        """
        Variables set to the empty string count as unset.
        """
        self.set_environment(POSTGRES_CONN_STR="", BACK_END_PORT="", FRONT_END_PORT="")

        options = self.parse()

        self.assertEqual(options["udp-port"], 12013)
        self.assertEqual(options["http-port"], 12111)
        self.assertIsNone(options["postgres"])
        self.assertEqual(options["data-dir"], DATA_DIR)

    def test_options_override_environment(self) -> None:
        """
        Command-line options win over the environment variables.
        """
        self.set_environment(
            POSTGRES_CONN_STR=DSN, BACK_END_PORT="13013", FRONT_END_PORT="13111"
        )
        other = "postgresql://other@127.0.0.1/mnemic"

        options = self.parse(
            "--postgres", other, "--udp-port", "14013", "--http-port", "14111"
        )

        self.assertEqual(options["postgres"], other)
        self.assertEqual(options["udp-port"], 14013)
        self.assertEqual(options["http-port"], 14111)

    def test_options_parsed(self) -> None:
        """
        Each option is parsed into the value and type that the settings use.
        """
        options = self.parse(
            "--interface=::1",
            "--data-dir=/tmp/mnemic-data",
            "--batch-rows=100",
            "--flush-interval=0.5",
            "--buffer-rows=2000",
            "--shutdown-timeout=5",
            "--no-web",
        )

        settings = options.settings()
        self.assertEqual(settings.interface, "::1")
        self.assertEqual(settings.data_dir, "/tmp/mnemic-data")
        self.assertEqual(settings.batch_rows, 100)
        self.assertEqual(settings.flush_interval, 0.5)
        self.assertEqual(settings.buffer_rows, 2000)
        self.assertEqual(settings.shutdown_timeout, 5.0)
        self.assertIsInstance(settings.shutdown_timeout, float)
        self.assertFalse(settings.web)
        self.assertTrue(settings.udp)

    def test_port_limits_accepted(self) -> None:
        """
        Ports 0 (any free port) and 65535 are accepted.
        """
        options = self.parse("--udp-port=0", "--http-port=65535")

        self.assertEqual(options["udp-port"], 0)
        self.assertEqual(options["http-port"], 65535)

    def test_make_service(self) -> None:
        """
        makeService builds the mnemic service from the parsed settings.
        """
        options = self.parse("--udp-port=14013")
        reactor = object()

        service = tap.makeService(options, reactor)

        assert isinstance(service, MnemicService)
        expected = options.settings()
        # Only twistd's service lets a second signal end a waiting shutdown.
        expected.interruptible_shutdown = True
        self.assertEqual(service.settings, expected)
        self.assertEqual(service.settings.udp_port, 14013)


class OptionsErrorTests(OptionsTestCase):
    """
    Invalid options and combinations raise UsageError naming what to fix.
    """

    def test_invalid_ports(self) -> None:
        """
        A port outside 0 to 65535, or not a number, names its option.
        """
        messages = {
            (option, value): self.usage_error(f"--{option}={value}")
            for option in ["udp-port", "http-port"]
            for value in ["-1", "70000", "65536", "abc", ""]
        }

        for (option, value), message in messages.items():
            self.assertIn(f"--{option}", message, value)

    def test_invalid_environment_port(self) -> None:
        """
        An invalid port in BACK_END_PORT or FRONT_END_PORT names the
        environment variable, not a command-line option.
        """
        for variable in ["BACK_END_PORT", "FRONT_END_PORT"]:
            for value in ["abc", "70000"]:
                self.set_environment(**{variable: value})

                message = self.usage_error()

                self.assertIn(variable, message)
                self.assertNotIn(f"--{variable}", message)
                self.assertIn(value, message)

    def test_invalid_numbers(self) -> None:
        """
        Batch, buffer and time options must be numbers greater than 0.
        """
        cases = [
            ("batch-rows", "0"),
            ("batch-rows", "many"),
            ("buffer-rows", "-5"),
            ("flush-interval", "0"),
            ("flush-interval", "nan"),
            ("shutdown-timeout", "soon"),
        ]

        for option, value in cases:
            self.assertIn(f"--{option}", self.usage_error(f"--{option}={value}"))

    def test_data_dir_with_postgres(self) -> None:
        """
        --data-dir is for the embedded server, so it conflicts with --postgres.
        """
        message = self.usage_error("--data-dir=/tmp/x", "--postgres", DSN)

        self.assertIn("--data-dir", message)
        self.assertIn("--postgres", message)

    def test_data_dir_with_environment_dsn(self) -> None:
        """
        --data-dir also conflicts with a database from POSTGRES_CONN_STR.
        """
        self.set_environment(POSTGRES_CONN_STR=DSN)

        message = self.usage_error("--data-dir=/tmp/x")

        self.assertIn("POSTGRES_CONN_STR", message)

    def test_nothing_to_run(self) -> None:
        """
        --no-web with --no-udp is rejected, but either one alone is accepted.
        """
        message = self.usage_error("--no-web", "--no-udp")

        self.assertIn("--no-web", message)
        self.assertIn("--no-udp", message)
        self.assertTrue(self.parse("--no-web")["no-web"])
        self.assertTrue(self.parse("--no-udp")["no-udp"])

    def test_unknown_option(self) -> None:
        """
        An option that does not exist is rejected with its name.
        """
        self.assertIn("--port-udp", self.usage_error("--port-udp=12013"))
