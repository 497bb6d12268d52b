"""
Tests of several mnemic processes sharing one UDP port (--reuse-port) and
of the ingest-only and web-only roles.
"""

from __future__ import annotations

import json
import signal
import socket

from twisted.trial.unittest import SynchronousTestCase

from ._postgres import new_name, query, test_dsn
from ._sending import Sender, announcement, free_udp_port, new_run_id, sample
from ._twistd import TwistdProcess, wait_until


class ReusePortTests(SynchronousTestCase):
    """
    Two processes started with --reuse-port on one port store every sample.
    """

    def test_two_processes_store_everything(self) -> None:
        """
        Samples sent from many source ports to the shared port are spread
        over both processes, and every one of them is stored.
        """
        port = str(free_udp_port())
        services = []
        for _ in range(2):
            service = TwistdProcess("--postgres", test_dsn(), "--reuse-port",
                                    "--udp-port", port)
            self.addCleanup(service.kill)
            services.append(service)
        run_ids = [new_run_id() for _ in range(40)]
        # The kernel picks a process by hashing the sender's address, so many
        # source sockets are needed for both processes to get traffic.
        for index, run_id in enumerate(run_ids):
            sender = Sender(int(port))
            sender.send(announcement(run_id, new_name(f"reuse{index}"), ["a"]))
            sender.send(*(sample(run_id, seq, [seq]) for seq in range(100)))
            sender.close()

        def all_stored() -> bool:
            rows = query("SELECT count(*) FROM samples WHERE run_id = ANY(%s::uuid[])",
                         (run_ids,))
            return bool(rows[0][0] == 4000)

        wait_until(all_stored, message="not every sample was stored")
        received = [s.metric("mnemic_datagrams_received_total") for s in services]
        self.assertEqual(sum(received), 40 * 101)
        self.assertGreater(min(received), 0)
        for service in services:
            self.assertIn(service.stop(signal.SIGTERM), (0, -signal.SIGTERM))

    def test_second_process_without_flag_fails(self) -> None:
        """
        Without --reuse-port a second process cannot bind the same port, and
        twistd exits with the error rather than running without UDP.
        """
        port = str(free_udp_port())
        first = TwistdProcess("--postgres", test_dsn(), "--udp-port", port)
        self.addCleanup(first.kill)
        with self.assertRaises(AssertionError) as caught:
            TwistdProcess("--postgres", test_dsn(), "--udp-port", port)
        message = str(caught.exception)
        self.assertIn(f"Cannot listen for samples on UDP 127.0.0.1:{port}", message)
        self.assertIn("Address already in use", message)
        self.assertIn("--reuse-port", message)


class RoleTests(SynchronousTestCase):
    """
    --no-web ingest nodes and a --no-udp web node share one database.
    """

    def test_ingest_node_and_web_node(self) -> None:
        """
        Samples stored by an ingest-only node are served by a web-only node.
        """
        ingest = TwistdProcess("--postgres", test_dsn(), "--no-web",
                               wait_for=("udp",))
        self.addCleanup(ingest.kill)
        web = TwistdProcess("--postgres", test_dsn(), "--no-udp", wait_for=("http",))
        self.addCleanup(web.kill)
        run_id, name = new_run_id(), new_name("roles")
        sender = Sender(ingest.udp_port)
        self.addCleanup(sender.close)
        sender.send(announcement(run_id, name, ["a"]), sample(run_id, 0, [1.5]))

        def served() -> bool:
            tracers = json.loads(web.get("/api/tracers"))
            return any(tracer["name"] == name for tracer in tracers)

        wait_until(served, message="the web node never showed the run")
        self.assertNotIn("Web UI on", ingest.log)
        self.assertNotIn("Listening for samples", web.log)


class ListenErrorTests(SynchronousTestCase):
    """
    A port that is taken stops the service with one clear line.
    """

    def test_http_port_taken(self) -> None:
        """
        When the web port is taken, the log names the port and the option.
        """
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]

        with self.assertRaises(AssertionError) as caught:
            TwistdProcess("--postgres", test_dsn(), "--http-port", str(port))

        message = str(caught.exception)
        self.assertIn(f"Cannot serve the web UI on TCP 127.0.0.1:{port}", message)
        self.assertIn("--http-port", message)
