"""
Security checks of a running service: hostile run ids and query arguments in
URLs, formulas in CSV exports, the default listening address, and signed
datagrams from dolon end to end.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import Any, cast

import treq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.threads import deferToThread
from twisted.logger import ILogObserver, LogEvent, LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dolon import trace_client
from mnemic import tap
from mnemic._service import MnemicService, Settings
from mnemic._signing import sign

from ._postgres import new_name, query, test_dsn
from ._sending import Sender, announcement, new_run_id, sample
from .test_service import wait_for

UNKNOWN_RUN = "0b7e4f4e-2d55-4a8e-9a43-5b0c4a1f9e21"

# Run ids as they appear in a URL path, already percent-encoded.
HOSTILE_RUN_IDS = [
    "nope",
    "1'%20OR%20'1'%3D'1",
    "6f1c0a52-8c1e-4d41-9d55-0a8d2f3b2e10'%3B%20DROP%20TABLE%20runs%3B--",
    "%00",
    "..%2F..%2Fetc%2Fpasswd",
    "%E2%80%AE" + UNKNOWN_RUN,
    "%F0%9F%92%A5",
    "x" * 5000,
]

# Spellings of a valid run id that names no run.
UNKNOWN_RUN_IDS = [
    UNKNOWN_RUN,
    UNKNOWN_RUN.upper(),
    "%7B" + UNKNOWN_RUN + "%7D",
    "urn:uuid:" + UNKNOWN_RUN,
]

API_PATHS = ["/api/runs/{}", "/api/runs/{}/samples", "/api/runs/{}/csv",
             "/api/runs/{}/correlations"]

# Column names that spreadsheets would run as formulas, and how the CSV
# export must write them.
FORMULA_COLUMNS = {
    "=HYPERLINK(\"http://example.invalid\")": "'=HYPERLINK(\"http://example.invalid\")",
    "+1+1": "'+1+1",
    "-2+3": "'-2+3",
    "@SUM(A1:A2)": "'@SUM(A1:A2)",
    "\tindent": "'\tindent",
    "plain": "plain",
    "a=b": "a=b",
}

SECRET = "end-to-end secret"


class ServiceTestCase(TestCase):
    """
    Runs a service on ephemeral loopback ports and records its log.
    """

    timeout = 60

    def start(self, **settings: Any) -> Any:
        """
        Start a service with ``settings`` and wait for its database.
        """
        self.events: list[LogEvent] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.service = MnemicService(
            Settings(udp_port=0, http_port=0, dsn=test_dsn(), flush_interval=0.05,
                     **settings),
            reactor,
        )
        self.service.startService()
        self.addCleanup(lambda: self.service.running and self.service.stopService())
        assert self.service.udp_port is not None and self.service.writer is not None
        self.sender = Sender(self.service.udp_port.getHost().port)
        self.addCleanup(self.sender.close)
        return self.service.writer.wait_connected()

    @inlineCallbacks
    def get(self, path: str) -> Any:
        """
        GET ``path`` and return the status, content type and body.
        """
        assert self.service.http_port is not None
        url = f"http://127.0.0.1:{self.service.http_port.getHost().port}{path}"
        response = yield treq.get(url.encode("ascii"), persistent=False)
        body = yield response.text()
        content_type = (response.headers.getRawHeaders("content-type") or [""])[0]
        return response.code, content_type, body

    def failures_logged(self) -> list[LogEvent]:
        """
        Return the critical and error events logged so far.
        """
        return [e for e in self.events
                if e.get("log_level") in (LogLevel.critical, LogLevel.error)]


class HostileUrlTests(ServiceTestCase):
    """
    Hostile run ids and arguments give client errors, never server errors.
    """

    def setUp(self) -> Any:
        """
        Start the service.
        """
        return self.start()

    @inlineCallbacks
    def test_hostile_run_ids_not_found(self) -> Any:
        """
        Every API route that takes a run id returns 404 with a JSON error
        for ids that are not UUIDs or name no run, and nothing is logged as
        a failure.
        """
        for run_id in HOSTILE_RUN_IDS + UNKNOWN_RUN_IDS:
            for path in API_PATHS:
                url = path.format(run_id)
                code, content_type, body = yield self.get(url)

                self.assertEqual(code, 404, url)
                self.assertEqual(content_type, "application/json", url)
                self.assertIn("error", json.loads(body), url)
                self.assertNotIn("psycopg2", body, url)
        self.assertEqual(self.failures_logged(), [])

    @inlineCallbacks
    def test_hostile_run_ids_page(self) -> Any:
        """
        The page's run URL returns 404 for ids that are not UUIDs. For a
        valid id it serves the page, whose script requests the run from the
        API and shows that it was not found.
        """
        for run_id in HOSTILE_RUN_IDS:
            code, content_type, body = yield self.get(f"/runs/{run_id}")

            self.assertEqual(code, 404, run_id)
            self.assertNotIn("Traceback", body, run_id)
        code, _, _ = yield self.get(f"/runs/{UNKNOWN_RUN}")
        self.assertEqual(code, 200)
        self.assertEqual(self.failures_logged(), [])

    @inlineCallbacks
    def test_hostile_arguments_bad_request(self) -> Any:
        """
        Query arguments that are not finite numbers are rejected with 400
        and a JSON error, never a server error.
        """
        run_id = new_run_id()
        self.sender.send(announcement(run_id, new_name("args"), ["a"]),
                         sample(run_id, 0, [1.0]))
        yield wait_for(lambda: query("SELECT count(*) FROM samples"
                                     " WHERE run_id = %s", (run_id,))[0][0] == 1)
        arguments = ["points=NaN", "points=1e999", "points=%27%20OR%201%3D1",
                     "start=nan", "end=-inf", "start=%00", "points=1",
                     "points=10000000"]

        for argument in arguments:
            url = f"/api/runs/{run_id}/samples?{argument}"
            code, content_type, body = yield self.get(url)

            self.assertEqual(code, 400, url)
            self.assertEqual(content_type, "application/json", url)
            self.assertIn("error", json.loads(body), url)
        self.assertEqual(self.failures_logged(), [])

    @inlineCallbacks
    def test_csv_carriage_return_in_name(self) -> Any:
        """
        A column name that starts with a carriage return is neutralised and
        quoted, so the header stays one row.
        """
        run_id = new_run_id()
        self.sender.send(announcement(run_id, new_name("csv-cr"), ["\rreturn"]),
                         sample(run_id, 0, [1.0]))
        yield wait_for(lambda: query("SELECT count(*) FROM runs WHERE id = %s"
                                     " AND name IS NOT NULL", (run_id,))[0][0])
        yield wait_for(lambda: query("SELECT count(*) FROM samples"
                                     " WHERE run_id = %s", (run_id,))[0][0] == 1)

        code, _, body = yield self.get(f"/api/runs/{run_id}/csv")

        self.assertEqual(code, 200)
        rows = list(csv.reader(io.StringIO(body, newline="")))
        self.assertEqual(rows[0], ["time", "'\rreturn"])
        self.assertEqual(len(rows), 2)


    @inlineCallbacks
    def test_non_utf8_run_id(self) -> Any:
        """
        A run id whose percent-encoding is not UTF-8 gets a client error and
        logs no failure.
        """
        code, _, body = yield self.get("/api/runs/%ff%fe")
        logged = self.failures_logged()
        self.flushLoggedErrors(UnicodeDecodeError)

        self.assertIn(code, (400, 404))
        self.assertNotIn("Traceback", body)
        self.assertEqual(logged, [])


    @inlineCallbacks
    def test_other_spellings_find_run(self) -> Any:
        """
        Upper case, braces and a urn:uuid: prefix name the same run, because
        the id is parsed before it reaches SQL as a parameter.
        """
        run_id = new_run_id()
        self.sender.send(announcement(run_id, new_name("spell"), ["a"]),
                         sample(run_id, 0, [1.0]))
        yield wait_for(lambda: query("SELECT count(*) FROM runs WHERE id = %s"
                                     " AND name IS NOT NULL", (run_id,))[0][0])

        for spelling in (run_id.upper(), "%7B" + run_id + "%7D",
                         "urn:uuid:" + run_id):
            code, _, body = yield self.get(f"/api/runs/{spelling}")

            self.assertEqual(code, 200, spelling)
            self.assertEqual(json.loads(body)["id"], run_id)

    @inlineCallbacks
    def test_csv_neutralises_formulas(self) -> Any:
        """
        Column names starting with =, +, -, @ or a tab get a leading
        apostrophe in the CSV header, so spreadsheets show them
        as text; other names, and negative values, are written unchanged.
        """
        run_id = new_run_id()
        columns = list(FORMULA_COLUMNS)
        values = [-1.5, 2.0, -3.0, 4.0, -5.0, -7.25, 8.0]
        self.sender.send(announcement(run_id, new_name("csv"), columns),
                         sample(run_id, 0, values))
        yield wait_for(lambda: query("SELECT count(*) FROM samples"
                                     " WHERE run_id = %s", (run_id,))[0][0] == 1)
        yield wait_for(lambda: query("SELECT count(*) FROM runs WHERE id = %s"
                                     " AND name IS NOT NULL", (run_id,))[0][0])

        code, content_type, body = yield self.get(f"/api/runs/{run_id}/csv")

        self.assertEqual(code, 200)
        self.assertEqual(content_type, "text/csv; charset=utf-8")
        header, row = list(csv.reader(io.StringIO(body, newline="")))
        self.assertEqual(header, ["time"] + list(FORMULA_COLUMNS.values()))
        self.assertEqual(row[1:], [repr(value) for value in values])


class SignedServiceTests(ServiceTestCase):
    """
    A service with a secret stores what dolon signs and counts the rest.
    """

    def setUp(self) -> Any:
        """
        Start the service with the shared secret.
        """
        return self.start(secret=SECRET.encode("utf-8"))

    @inlineCallbacks
    def test_dolon_signed_samples_stored(self) -> Any:
        """
        Samples from a dolon tracer given the secret are stored; datagrams
        from one without it are counted as unsigned and stored nowhere.
        """
        assert self.service.udp_port is not None
        port = self.service.udp_port.getHost().port
        signed_name, unsigned_name = new_name("signed"), new_name("unsigned")

        def stored(name: str) -> int:
            rows = query("SELECT samples FROM runs WHERE name = %s", (name,))
            return int(rows[0][0]) if rows else 0

        signed = trace_client.start_thread_tracer(signed_name, 0.02, "127.0.0.1",
                                                  port, lambda: 1.0,
                                                  secret=SECRET)
        self.addCleanup(signed.stop)
        unsigned = trace_client.start_thread_tracer(unsigned_name, 0.02,
                                                    "127.0.0.1", port,
                                                    lambda: 2.0)
        self.addCleanup(unsigned.stop)
        yield wait_for(lambda: stored(signed_name) >= 5)
        yield wait_for(lambda: self.service.metrics.invalid["unsigned"] >= 5)
        yield deferToThread(signed.stop)
        yield deferToThread(unsigned.stop)

        self.assertEqual(query("SELECT count(*) FROM runs WHERE name = %s",
                               (unsigned_name,)), [(0,)])
        self.assertEqual(set(self.service.metrics.invalid), {"unsigned"})

    @inlineCallbacks
    def test_forged_and_replayed_counted(self) -> Any:
        """
        A sample signed with another secret and a replayed signed sample are
        counted in /metrics by reason, and only the genuine sample is stored.
        """
        run_id = new_run_id()
        key = SECRET.encode("utf-8")
        genuine = sign(sample(run_id, 0, [1.0]), key)
        self.sender.send(sign(announcement(run_id, new_name("replay"), ["a"]), key),
                         genuine, sign(sample(run_id, 1, [9.0]), b"forged"),
                         genuine)
        yield wait_for(lambda: self.service.metrics.datagrams_received >= 4)

        code, _, body = yield self.get("/metrics")

        self.assertEqual(code, 200)
        self.assertIn('mnemic_datagrams_invalid_total{reason="bad_signature"} 1', body)
        self.assertIn('mnemic_datagrams_invalid_total{reason="replay"} 1', body)
        self.assertEqual(self.service.metrics.invalid,
                         Counter({"bad_signature": 1, "replay": 1}))
        yield wait_for(lambda: query("SELECT count(*) FROM samples"
                                     " WHERE run_id = %s", (run_id,))[0][0] == 1)


class ListenAddressTests(ServiceTestCase):
    """
    Both listeners bind to the loopback interface unless configured
    otherwise.
    """

    @inlineCallbacks
    def test_defaults_bind_loopback(self) -> Any:
        """
        The default settings bind the UDP and HTTP ports to 127.0.0.1.
        """
        yield self.start()

        assert self.service.udp_port is not None
        assert self.service.http_port is not None
        self.assertEqual(self.service.udp_port.getHost().host, "127.0.0.1")
        self.assertEqual(self.service.http_port.getHost().host, "127.0.0.1")


class DefaultInterfaceTests(SynchronousTestCase):
    """
    The command line and the settings default to the loopback interface.
    """

    def test_option_and_settings_default(self) -> None:
        """
        --interface defaults to 127.0.0.1, and so does Settings.
        """
        options = tap.Options()
        options.parseOptions(["--postgres", "postgresql:///x"])

        self.assertEqual(options.settings().interface, "127.0.0.1")
        self.assertEqual(Settings().interface, "127.0.0.1")
