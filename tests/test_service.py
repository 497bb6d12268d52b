"""
End-to-end tests of the service: real UDP datagrams, the embedded PostgreSQL
and the JSON API over real HTTP.
"""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any, Callable

import treq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mnemic._service import MnemicService, Settings

from ._postgres import new_name, query, test_dsn
from ._sending import Sender, announcement, new_run_id, sample


@inlineCallbacks
def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """
    Poll ``condition`` (which may return a Deferred) until it is true.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = yield condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        yield deferLater(reactor, 0.05, lambda: None)


class ServiceTests(TestCase):
    """
    Tests of a running `MnemicService` on ephemeral ports.
    """

    timeout = 60

    def setUp(self) -> Any:
        self.settings = Settings(udp_port=0, http_port=0, dsn=test_dsn(),
                                 flush_interval=0.05)
        self.service = self.start_service(self.settings)
        assert self.service.writer is not None
        return self.service.writer.wait_connected()

    def start_service(self, settings: Settings) -> MnemicService:
        service = MnemicService(settings, reactor)
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        assert service.udp_port is not None
        self.sender = Sender(service.udp_port.getHost().port)
        self.addCleanup(self.sender.close)
        return service

    def url(self, path: str) -> str:
        assert self.service.http_port is not None
        return f"http://127.0.0.1:{self.service.http_port.getHost().port}{path}"

    @inlineCallbacks
    def get_json(self, path: str) -> Any:
        response = yield treq.get(self.url(path), persistent=False)
        body = yield response.text()
        return response.code, response.headers.getRawHeaders("content-type"), body

    @inlineCallbacks
    def wait_for_samples(self, run_id: str, count: int) -> Any:
        def stored() -> bool:
            rows = query("SELECT count(*) FROM samples WHERE run_id = %s", (run_id,))
            return bool(rows[0][0] >= count)

        yield wait_for(stored)

    @inlineCallbacks
    def test_datagrams_reach_api(self) -> Any:
        """
        Announced samples show in /api/tracers, /api/runs/{id} and its samples.
        """
        name = new_name("api")
        run_id = new_run_id()
        # Whole seconds, because PostgreSQL stores microseconds.
        start = float(int(time.time()) - 30)
        self.sender.send(announcement(run_id, name, ["a", "b"], started=start))
        self.sender.send(*(sample(run_id, i, [i, i * 2.0], t=start + i)
                           for i in range(30)))
        yield self.wait_for_samples(run_id, 30)

        code, content_type, body = yield self.get_json("/api/tracers")
        self.assertEqual(code, 200)
        self.assertEqual(content_type, ["application/json"])
        tracers = {tracer["name"]: tracer for tracer in json.loads(body)}
        self.assertIn(name, tracers)
        [run] = tracers[name]["runs"]
        self.assertEqual(run["id"], run_id)
        self.assertEqual(run["samples"], 30)
        self.assertEqual(run["columns"], ["a", "b"])
        self.assertTrue(run["started"].endswith("+00:00"))

        code, _, body = yield self.get_json(f"/api/runs/{run_id}")
        info = json.loads(body)
        self.assertEqual(code, 200)
        self.assertEqual(info["name"], name)
        self.assertEqual(info["lost"], 0)
        self.assertEqual(info["pid"], 4242)

        code, _, body = yield self.get_json(f"/api/runs/{run_id}/samples")
        series = json.loads(body)
        self.assertEqual(series["columns"], ["a", "b"])
        self.assertEqual(series["t"], [start + i for i in range(30)])
        self.assertEqual(series["values"][0], [float(i) for i in range(30)])
        self.assertEqual(series["values"][1], [i * 2.0 for i in range(30)])

    @inlineCallbacks
    def test_runs_newest_first_tracers_latest_first(self) -> Any:
        """
        Runs of a tracer are newest first, and the tracer with the latest
        activity comes first.
        """
        older, newer = new_name("older"), new_name("newer")
        first, second, other = new_run_id(), new_run_id(), new_run_id()
        now = time.time()
        self.sender.send(announcement(first, newer, ["x"], started=now - 100),
                         sample(first, 0, [1], t=now - 99),
                         announcement(second, newer, ["x"], started=now - 50),
                         sample(second, 0, [1], t=now - 10),
                         announcement(other, older, ["x"], started=now - 40),
                         sample(other, 0, [1], t=now - 39))
        for run_id in (first, second, other):
            yield self.wait_for_samples(run_id, 1)

        _, _, body = yield self.get_json("/api/tracers")
        names = [tracer["name"] for tracer in json.loads(body)]
        self.assertLess(names.index(newer), names.index(older))
        runs = [tracer for tracer in json.loads(body) if tracer["name"] == newer][0]
        self.assertEqual([run["id"] for run in runs["runs"]], [second, first])

    @inlineCallbacks
    def test_lost_counts_sequence_gaps(self) -> Any:
        """
        Missing sequence numbers are reported as lost; repeats are stored once.
        """
        run_id = new_run_id()
        self.sender.send(announcement(run_id, new_name("lost"), ["a"]))
        for seq in (0, 1, 3, 3, 4, 7):
            self.sender.send(sample(run_id, seq, [seq]))
        yield self.wait_for_samples(run_id, 5)
        yield deferLater(reactor, 0.2, lambda: None)

        _, _, body = yield self.get_json(f"/api/runs/{run_id}")
        info = json.loads(body)
        self.assertEqual(info["samples"], 5)
        self.assertEqual(info["lost"], 3)

    @inlineCallbacks
    def test_repeat_in_later_batch_stored_once(self) -> Any:
        """
        A sample repeated after its first copy was written is skipped, and the
        new samples in the same batch are still stored.
        """
        run_id = new_run_id()
        self.sender.send(announcement(run_id, new_name("repeat"), ["a"]))
        self.sender.send(*(sample(run_id, seq, [seq]) for seq in range(5)))
        yield self.wait_for_samples(run_id, 5)

        self.sender.send(sample(run_id, 2, [2]), sample(run_id, 5, [5]))
        yield self.wait_for_samples(run_id, 6)
        yield deferLater(reactor, 0.3, lambda: None)

        rows = query("SELECT seq FROM samples WHERE run_id = %s ORDER BY seq",
                     (run_id,))
        self.assertEqual([row[0] for row in rows], [0, 1, 2, 3, 4, 5])
        _, _, body = yield self.get_json(f"/api/runs/{run_id}")
        self.assertEqual(json.loads(body)["samples"], 6)
        self.assertEqual(json.loads(body)["lost"], 0)

    @inlineCallbacks
    def test_earlier_release_messages(self) -> Any:
        """
        create_trace_run and row messages of the earlier release are stored.
        """
        run_id = new_run_id()
        name = new_name("legacy")
        self.sender.send(json.dumps({
            "msg_type": "create_trace_run", "uuid": run_id, "app_name": name,
            "column_names": ["v1", "v2"]}).encode())
        for i in range(3):
            self.sender.send(json.dumps({
                "msg_type": "row", "uuid": run_id, "row_data": [i, 10 + i]}).encode())
        yield self.wait_for_samples(run_id, 3)

        _, _, body = yield self.get_json(f"/api/runs/{run_id}/samples")
        series = json.loads(body)
        self.assertEqual(series["columns"], ["v1", "v2"])
        self.assertEqual(series["values"], [[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]])

    @inlineCallbacks
    def test_samples_before_announcement_kept(self) -> Any:
        """
        Samples that arrive before their run's announcement are linked to it.
        """
        run_id = new_run_id()
        name = new_name("early")
        self.sender.send(sample(run_id, 0, [5]), sample(run_id, 1, [6]))
        yield self.wait_for_samples(run_id, 2)
        _, _, body = yield self.get_json("/api/tracers")
        self.assertNotIn(name, [tracer["name"] for tracer in json.loads(body)])

        self.sender.send(announcement(run_id, name, ["x"]), sample(run_id, 2, [7]))
        yield self.wait_for_samples(run_id, 3)
        yield wait_for(lambda: query("SELECT name FROM runs WHERE id = %s",
                                     (run_id,))[0][0] == name)

        code, _, body = yield self.get_json(f"/api/runs/{run_id}")
        self.assertEqual(code, 200)
        self.assertEqual(json.loads(body)["samples"], 3)

    @inlineCallbacks
    def test_invalid_datagrams_counted_valid_kept(self) -> Any:
        """
        Bad datagrams are counted by reason in /metrics, and every valid one
        sent between them is stored.
        """
        run_id = new_run_id()
        bad = [b"\xff\xfe", b"not json", b"[1, 2]",
               b'{"v": 1, "type": "sample", "run": "nope", "seq": 0, "t": 1,'
               b' "values": [1]}',
               sample(run_id, 99, ["text"])]
        self.sender.send(announcement(run_id, new_name("bad"), ["a"]))
        for i, datagram in enumerate(bad):
            self.sender.send(sample(run_id, i, [i]), datagram)
        yield self.wait_for_samples(run_id, len(bad))

        code, content_type, body = yield self.get_json("/metrics")
        self.assertEqual(code, 200)
        self.assertIn('mnemic_datagrams_invalid_total{reason="not_utf8"} 1', body)
        self.assertIn('mnemic_datagrams_invalid_total{reason="not_json"} 1', body)
        self.assertIn('mnemic_datagrams_invalid_total{reason="not_object"} 1', body)
        self.assertIn('mnemic_datagrams_invalid_total{reason="bad_run_id"} 1', body)
        self.assertIn('mnemic_datagrams_invalid_total{reason="bad_value"} 1', body)
        stored = query("SELECT seq FROM samples WHERE run_id = %s ORDER BY seq",
                       (run_id,))
        self.assertEqual([row[0] for row in stored], list(range(len(bad))))

    @inlineCallbacks
    def test_csv_whole_run(self) -> Any:
        """
        The CSV export has a header and one line per sample, nulls empty.
        """
        run_id = new_run_id()
        start = 1_700_000_000.0
        self.sender.send(announcement(run_id, new_name("csv"), ["a", "=b"]))
        self.sender.send(*(sample(run_id, i, [i, None], t=start + i)
                           for i in range(40)))
        yield self.wait_for_samples(run_id, 40)

        response = yield treq.get(self.url(f"/api/runs/{run_id}/csv"), persistent=False)
        body = yield response.text()
        self.assertEqual(response.headers.getRawHeaders("content-type"),
                         ["text/csv; charset=utf-8"])
        rows = list(csv.reader(io.StringIO(body)))
        self.assertEqual(rows[0], ["time", "a", "'=b"])
        self.assertEqual(len(rows), 41)
        self.assertEqual(rows[1], ["2023-11-14T22:13:20+00:00", "0.0", ""])

    @inlineCallbacks
    def test_reduced_series_keeps_extremes(self) -> Any:
        """
        A long run is reduced to at most ``points`` points per series, and a
        one-sample spike survives the reduction.
        """
        run_id = new_run_id()
        start = time.time() - 3000
        self.sender.send(announcement(run_id, new_name("reduce"), ["a"]))
        values = [1.0] * 3000
        values[1234] = 500.0
        values[2222] = -7.0
        for i, value in enumerate(values):
            self.sender.send(sample(run_id, i, [value], t=start + i))
        yield self.wait_for_samples(run_id, 3000)

        _, _, body = yield self.get_json(f"/api/runs/{run_id}/samples?points=100")
        series = json.loads(body)
        self.assertLessEqual(len(series["t"]), 100)
        self.assertGreater(len(series["t"]), 50)
        self.assertEqual(series["t"], sorted(series["t"]))
        self.assertEqual(max(series["values"][0]), 500.0)
        self.assertEqual(min(series["values"][0]), -7.0)

    @inlineCallbacks
    def test_unknown_run_is_404(self) -> Any:
        """
        Unknown, malformed and hostile run ids give 404 with a JSON error.
        """
        for run_id in (new_run_id(), "nope", "1'%20OR%20'1'='1", "%00"):
            for suffix in ("", "/samples", "/csv"):
                code, content_type, body = yield self.get_json(
                    f"/api/runs/{run_id}{suffix}")
                self.assertEqual(code, 404, (run_id, suffix))
                self.assertEqual(content_type, ["application/json"])
                self.assertIn("error", json.loads(body))

    @inlineCallbacks
    def test_stop_writes_everything_queued(self) -> Any:
        """
        Stopping the service writes every row received before it.
        """
        yield self.service.stopService()
        self.service = self.start_service(Settings(
            udp_port=0, http_port=0, dsn=test_dsn(), flush_interval=60,
            batch_rows=100_000))
        assert self.service.writer is not None
        yield self.service.writer.wait_connected()
        run_id = new_run_id()
        self.sender.send(announcement(run_id, new_name("stop"), ["a"]))
        self.sender.send(*(sample(run_id, i, [i]) for i in range(2000)))
        yield wait_for(lambda: self.service.metrics.datagrams_received >= 2001)
        self.assertEqual(query("SELECT count(*) FROM samples WHERE run_id = %s",
                               (run_id,))[0][0], 0)

        yield self.service.stopService()

        self.assertEqual(query("SELECT count(*) FROM samples WHERE run_id = %s",
                               (run_id,))[0][0], 2000)
