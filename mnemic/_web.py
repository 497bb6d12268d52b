"""
The Klein web app: the page, its static files, the JSON API and /metrics.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import os
import secrets
import uuid
from datetime import datetime
from typing import Any, Optional
from urllib.parse import urlsplit

import jinja2
import psycopg2
import psycopg2.errors
import uplot
from klein import Klein
from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.static import File
from werkzeug.exceptions import HTTPException

from ._accept import prefers_html
from ._metrics import Metrics
from ._store import Run, Store

_HERE = os.path.dirname(os.path.abspath(__file__))
STATIC_DIR = os.path.join(_HERE, "static")
UPLOT_DIR = os.path.join(os.path.dirname(os.path.abspath(uplot.__file__)), "static")

CSRF_HEADER = "X-Mnemic-CSRF"
DEFAULT_POINTS = 1000
MAX_POINTS = 100_000


class APIError(Exception):
    """
    An error returned to the client as a JSON body with an HTTP status.
    """

    status = 500


class NotFound(APIError):
    """
    The requested run does not exist.
    """

    status = 404


class BadRequest(APIError):
    """
    A query parameter is invalid.
    """

    status = 400


class Forbidden(APIError):
    """
    A state-changing request came from another site or without the page's
    token.
    """

    status = 403


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def _run_summary(run: Run) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "started": _iso(run.started),
        "last_seen": _iso(run.last_seen),
        "samples": run.samples,
        "columns": run.columns,
        "first_sample": _iso(run.first_sample),
    }


def _parse_run_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound("no run with this id") from None


def _number_argument(request: IRequest, name: str) -> Optional[float]:
    raw = request.args.get(name.encode())
    if not raw:
        return None
    try:
        value = float(raw[0])
    except ValueError:
        raise BadRequest(f"{name} must be a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise BadRequest(f"{name} must be a finite number")
    return value


def _csv_cell(value: str) -> str:
    # Spreadsheets run a cell that starts with one of these as a formula.
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class WebApp:
    """
    Routes of the web app, reading through a `Store`.
    """

    app = Klein()
    log = Logger()

    def __init__(self, store: Store, metrics: Metrics, udp_port: int = 12013) -> None:
        self._store = store
        self._metrics = metrics
        # Shown in the page's example dolon call when there are no tracers.
        self._udp_port = udp_port
        # Rendered into the page, and required in the CSRF_HEADER of every
        # request that changes data. Pages from another origin cannot read it.
        self.csrf_token = secrets.token_urlsafe(32)
        self._templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(os.path.join(_HERE, "templates")),
            autoescape=True,
        )

    def resource(self) -> Any:
        """
        Return the Twisted web resource that serves the app.
        """
        return _RejectUndecodableURLs(self.app.resource())

    @app.handle_errors(APIError)
    def _api_error(self, request: IRequest, failure: Any) -> str:
        error = failure.value
        request.setResponseCode(error.status)
        request.setHeader("Content-Type", "application/json")
        return json.dumps({"error": str(error)})

    @app.handle_errors(HTTPException)
    def _routing_error(self, request: IRequest, failure: Any) -> str:
        # No route for the path, or not for its method. A browser opening
        # an unknown address gets the page, which shows a not-found message.
        error = failure.value
        request.setResponseCode(error.code)
        if error.code == 404 and prefers_html(request):
            return self._page(request)
        request.setHeader("Content-Type", "application/json")
        if error.code == 405:
            request.setHeader("Allow", ", ".join(error.valid_methods or []))
        return json.dumps({"error": error.description})

    @app.handle_errors(psycopg2.OperationalError, psycopg2.errors.UndefinedTable)
    def _database_unavailable(self, request: IRequest, failure: Any) -> str:
        # The server is down or restarting, or the writer has not created
        # the schema yet on a new database: a condition that passes.
        self.log.warn("Request for {path} failed: database unavailable: {error}",
                      path=request.path,
                      error=" ".join(failure.getErrorMessage().split()))
        request.setResponseCode(503)
        request.setHeader("Content-Type", "application/json")
        request.setHeader("Retry-After", "5")
        return json.dumps({"error": "the database is unavailable; try again shortly"})

    @app.handle_errors(Exception)
    def _unexpected_error(self, request: IRequest, failure: Any) -> str:
        self.log.failure("Request for {path} failed", failure, path=request.path)
        request.setResponseCode(500)
        request.setHeader("Content-Type", "application/json")
        return json.dumps({"error": "internal error; see the service log"})

    @app.route("/", methods=["GET"])
    def index(self, request: IRequest) -> str:
        """
        Render the page with no run selected.
        """
        return self._page(request)

    @app.route("/runs/<run_id>", methods=["GET"])
    def run_page(self, request: IRequest, run_id: str) -> str:
        """
        Render the page opened on one run.

        A malformed id gets the page too, with status 404, and the script shows
        the same not-found message as for an unknown run.
        """
        try:
            uuid.UUID(run_id)
        except ValueError:
            request.setResponseCode(404)
        return self._page(request)

    @app.route("/compare", methods=["GET"])
    def compare_page(self, request: IRequest) -> str:
        """
        Render the page comparing the runs listed in ``runs``, separated by
        commas.
        """
        return self._page(request)

    def _page(self, request: IRequest) -> str:
        # The script reads the run or runs to show from the address.
        request.setHeader("Content-Type", "text/html; charset=utf-8")
        return self._templates.get_template("index.html").render(
            udp_port=self._udp_port, csrf_token=self.csrf_token
        )

    @app.route("/static/uplot/", branch=True)
    def uplot_files(self, request: IRequest) -> File:
        """
        Serve uPlot's files from the installed uplot-python package.
        """
        return File(UPLOT_DIR)

    @app.route("/static/", branch=True)
    def static_files(self, request: IRequest) -> File:
        """
        Serve the page's own scripts and styles.
        """
        return File(STATIC_DIR)

    @app.route("/metrics", methods=["GET"])
    def metrics(self, request: IRequest) -> str:
        """
        Return the service's counters in Prometheus' text format.
        """
        request.setHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        return self._metrics.render()

    @app.route("/api/tracers", methods=["GET"])
    @inlineCallbacks
    def tracers(self, request: IRequest) -> Any:
        """
        Return tracers with their runs, latest activity first.
        """
        runs = yield self._store.runs()
        # Pages poll this route while open, which is when large runs should
        # have their summaries ready.
        self._store.warm_summaries()
        by_name: dict[str, list[Run]] = {}
        for run in runs:
            by_name.setdefault(run.name, []).append(run)

        def latest(name: str) -> datetime:
            return max(run.last_seen or run.started for run in by_name[name])

        body = [
            {"name": name, "runs": [_run_summary(run) for run in by_name[name]]}
            for name in sorted(by_name, key=latest, reverse=True)
        ]
        return _json(request, body)

    @inlineCallbacks
    def _find_run(self, run_id: str) -> Any:
        run = yield self._store.run(_parse_run_id(run_id))
        if run is None:
            raise NotFound("no run with this id")
        return run

    @app.route("/api/runs/<run_id>", methods=["GET"])
    @inlineCallbacks
    def run_info(self, request: IRequest, run_id: str) -> Any:
        """
        Return one run's name, columns, times and counters.
        """
        run = yield self._find_run(run_id)
        body = _run_summary(run)
        body.update(name=run.name, lost=run.lost, host=run.host, pid=run.pid)
        return _json(request, body)

    @app.route("/api/runs/<run_id>/samples", methods=["GET"])
    @inlineCallbacks
    def run_samples(self, request: IRequest, run_id: str) -> Any:
        """
        Return a run's samples as arrays, reduced to at most ``points`` each.

        ``start`` and ``end`` (Unix seconds, both included) select a time
        range. ``since`` (excluded) selects the samples after it, for a page
        that appends new samples to what it has.
        """
        points = _number_argument(request, "points")
        if points is None:
            points = DEFAULT_POINTS
        if not 2 <= points <= MAX_POINTS:
            raise BadRequest(f"points must be between 2 and {MAX_POINTS}")
        start = _number_argument(request, "start")
        end = _number_argument(request, "end")
        since = _number_argument(request, "since")
        if since is not None and start is not None:
            raise BadRequest("since and start cannot be combined; use one of them")
        run = yield self._find_run(run_id)
        series = yield self._store.series(run, int(points), start, end, since)
        return _json(request, {"columns": series.columns, "t": series.t,
                               "values": series.values})

    @app.route("/api/runs/<run_id>/correlations", methods=["GET"])
    @inlineCallbacks
    def run_correlations(self, request: IRequest, run_id: str) -> Any:
        """
        Return the correlation matrix of a run's columns, optionally between
        ``start`` and ``end``.
        """
        start = _number_argument(request, "start")
        end = _number_argument(request, "end")
        run = yield self._find_run(run_id)
        result = yield self._store.correlations(run, start, end)
        return _json(request, {
            "columns": result.columns, "matrix": result.matrix,
            "samples": result.samples, "total": result.total,
            "sampled": result.sampled,
        })

    @app.route("/api/runs/<run_id>/delete", methods=["POST"])
    @inlineCallbacks
    def delete_run(self, request: IRequest, run_id: str) -> Any:
        """
        Delete a run with all of its samples.

        The request must carry the page's token in ``X-Mnemic-CSRF``, and
        must not come from another origin by its Origin or Sec-Fetch-Site
        header.
        """
        self._check_same_origin(request)
        deleted = yield self._store.delete_run(_parse_run_id(run_id))
        if not deleted:
            raise NotFound("no run with this id")
        self.log.info("Deleted run {run_id}", run_id=run_id)
        return _json(request, {"deleted": run_id})

    def _check_same_origin(self, request: IRequest) -> None:
        token = request.getHeader(CSRF_HEADER) or ""
        if not hmac.compare_digest(token.encode(), self.csrf_token.encode()):
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header; reload the page")
        fetch_site = request.getHeader("Sec-Fetch-Site")
        if fetch_site is not None and fetch_site != "same-origin":
            raise Forbidden("cross-site request rejected")
        origin = request.getHeader("Origin")
        host = request.getHeader("Host")
        if origin is not None and (host is None or urlsplit(origin).netloc != host):
            raise Forbidden("cross-origin request rejected")

    @app.route("/api/runs/<run_id>/csv", methods=["GET"])
    @inlineCallbacks
    def run_csv(self, request: IRequest, run_id: str) -> Any:
        """
        Return the whole run as CSV, one line per sample.
        """
        run = yield self._find_run(run_id)
        pages = yield self._store.sample_pages(run)
        out = io.StringIO()
        # The default line ending, CRLF as RFC 4180 has it, also makes the
        # writer quote fields that contain a lone carriage return.
        writer = csv.writer(out)
        writer.writerow(["time"] + [_csv_cell(column) for column in run.columns])
        for page in pages:
            for t, vals in page:
                writer.writerow([t.isoformat()] + ["" if v is None else repr(v)
                                                   for v in vals])
        request.setHeader("Content-Type", "text/csv; charset=utf-8")
        filename = f"run-{run.id}.csv"
        request.setHeader("Content-Disposition", f'attachment; filename="{filename}"')
        return out.getvalue().encode("utf-8")


class _RejectUndecodableURLs(Resource):
    """
    Rejects a path or host that is not UTF-8 with a 400 and a JSON error, and
    passes every other request to the Klein app.

    Klein responds to such a request with 400 too, but logs it as an unhandled
    failure with a traceback first.
    """

    isLeaf = True

    def __init__(self, app: Any) -> None:
        super().__init__()
        self._app = app

    def render(self, request: IRequest) -> Any:
        """
        Render the request with the Klein app if its URL decodes.
        """
        # The path segments, which Twisted has percent-decoded, as Klein
        # decodes them.
        segments = list(request.prepath or []) + list(request.postpath or [])
        try:
            b"/".join(segments).decode("utf-8")
            request.getRequestHostname().decode("utf-8")
        except UnicodeDecodeError:
            request.setResponseCode(400)
            request.setHeader("Content-Type", "application/json")
            return json.dumps({"error": "the URL is not valid UTF-8"}).encode()
        return self._app.render(request)


def _json(request: IRequest, body: Any) -> bytes:
    request.setHeader("Content-Type", "application/json")
    request.setHeader("Cache-Control", "no-store")
    return json.dumps(body, allow_nan=False).encode("utf-8")
