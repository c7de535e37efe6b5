"""The dashboard: a Starlette app over the event history, the transport and app.control.

Pages are Jinja2 templates rendered from the history's indexed queries (a page reads one
page of task rows, never the whole history), refreshed in place by htmx when the SSE
stream (/live) says something happened. Actions are POSTs behind the CSRF check
(security.py) and are refused in read-only mode. No page shows a broker or backend URL:
only the transport's and backend's class names.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from conveyor.app.base import Conveyor
from conveyor.app.events import FALLBACK_STORE, store_url
from conveyor.backends.events import STATES, TaskQuery
from conveyor.core.errors import ConveyorError, Unsupported
from conveyor.monitoring import queues as queue_info
from conveyor.monitoring.dashboard import security
from conveyor.monitoring.dashboard.live import Hub
from conveyor.monitoring.metrics import dashboard_registry, render
from conveyor.monitoring.state import ClusterState, worker_alive

HERE = Path(__file__).parent
PAGE_SIZE = 50
SERIES_MINUTES = 60
DEAD_LIMIT = 200
ACTIVE_SHOWN = 10  # running tasks listed per worker
ACTION_TIMEOUT = 2.0  # seconds a worker action waits for the worker's answer


def _when(value: float | None) -> str:
    if not value:
        return "-"
    return datetime.fromtimestamp(float(value)).strftime("%Y-%m-%d %H:%M:%S")


def _ago(value: float | None) -> str:
    if not value:
        return "-"
    seconds = max(0.0, time.time() - float(value))
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _epoch(text: str | None) -> float | None:
    """A datetime-local field (YYYY-MM-DDTHH:MM) as epoch seconds; None when empty."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"not a date and time: {text!r}") from None


class Dashboard:
    """The routes, bound to one conveyor app."""

    def __init__(self, app: Conveyor, *, read_only: bool = False) -> None:
        self.app = app
        self.read_only = read_only
        self.state = ClusterState()
        self.hub = Hub(app, self.state)
        self.registry, metrics = dashboard_registry(self)
        if store_url(app.conf) == FALLBACK_STORE:
            # No shared history (say RabbitMQ with Memcached): the pages show what the
            # dashboard hears from its start, kept in its own memory.
            self.hub.listeners.append(app.events.store.add)
        self.hub.listeners.append(metrics.observe)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["when"] = _when
        self.templates.env.filters["ago"] = _ago
        self.templates.env.filters["public"] = security.public

    # -- rendering --------------------------------------------------------------------

    def render(self, request: Request, name: str, **context: Any) -> Response:
        token, new = security.csrf_token(request)
        context.update(
            request=request,
            csrf=token,
            read_only=self.read_only,
            transport=type(self.app.transport).__name__,
            backend=type(self.app.backend).__name__,
            page=name.removesuffix(".html"),
        )
        response = self.templates.TemplateResponse(request, name, context)
        if new:
            response.set_cookie(
                security.CSRF_COOKIE, token, httponly=False, samesite="strict", path="/"
            )
        return response

    def _refuse_write(self) -> Response | None:
        if self.read_only:
            return PlainTextResponse("the dashboard is read-only", status_code=403)
        return None

    # -- pages ------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        store = self.app.events.store
        workers = store.workers()
        counts = [queue_info.queue_counts(self.app, q) for q in queue_info.known_queues(self.app)]
        failed = store.tasks(TaskQuery(state="FAILURE", limit=5))
        return self.render(
            request,
            "overview.html",
            workers=self._workers(workers),
            queues=counts,
            failed=failed,
        )

    def _workers(self, workers: dict[str, Any]) -> list[dict[str, Any]]:
        now = time.time()
        rows = []
        for hostname, event in sorted(workers.items()):
            rows.append({**event, "hostname": hostname, "alive": worker_alive(event, now)})
        return rows

    async def series(self, request: Request) -> Response:
        since = time.time() - SERIES_MINUTES * 60
        found = self.app.events.store.series(since)
        start = int(since // 60) * 60
        stamps = list(range(start, int(time.time() // 60) * 60 + 60, 60))
        return JSONResponse(
            {
                "t": stamps,
                "succeeded": [found.get(s, {}).get("task-succeeded", 0) for s in stamps],
                "failed": [found.get(s, {}).get("task-failed", 0) for s in stamps],
            }
        )

    async def workers(self, request: Request) -> Response:
        store = self.app.events.store
        rows = self._workers(store.workers())
        for row in rows:  # its running tasks, from the history's worker index
            running = TaskQuery(state="STARTED", hostname=row["hostname"], limit=ACTIVE_SHOWN)
            row["running"] = store.tasks(running) if row["alive"] else []
        return self.render(request, "workers.html", workers=rows)

    async def queues(self, request: Request) -> Response:
        names = queue_info.known_queues(self.app)
        counts = [queue_info.queue_counts(self.app, q) for q in names]
        return self.render(request, "queues.html", queues=counts)

    def _query(self, request: Request) -> tuple[TaskQuery | None, str | None, dict[str, str]]:
        params = {k: v for k, v in request.query_params.items() if v}
        try:
            page = int(params.get("page", "1"))
            if page < 1:
                raise ValueError("page must be 1 or more")
            query = TaskQuery(
                name=params.get("name"),
                state=params.get("state"),
                task_id=params.get("id"),
                hostname=params.get("worker"),
                text=params.get("q"),
                since=_epoch(params.get("since")),
                until=_epoch(params.get("until")),
                offset=(page - 1) * PAGE_SIZE,
                limit=PAGE_SIZE + 1,  # one more says whether there is a next page
            )
        except (ValueError, ConveyorError) as exc:
            return None, str(exc), params
        return query, None, params

    async def tasks(self, request: Request) -> Response:
        fragment = request.url.path.endswith("/rows")
        query, problem, params = self._query(request)
        rows = [] if query is None else self.app.events.store.tasks(query)
        page = int(params.get("page", "1")) if problem is None else 1
        context = {
            "rows": rows[:PAGE_SIZE],
            "more": len(rows) > PAGE_SIZE,
            "params": params,
            "pageno": page,
            "problem": problem,
            "states": STATES,
            "query_string": "&".join(f"{k}={v}" for k, v in params.items() if k != "page"),
        }
        status = 400 if problem else 200
        response = self.render(request, "task_rows.html" if fragment else "tasks.html", **context)
        response.status_code = status
        return response

    async def task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        store = self.app.events.store
        row = store.task(task_id)
        timeline = store.timeline(task_id)
        record = None
        try:
            record = self.app.backend.get(task_id)
        except ConveyorError:
            record = None
        if row is None and record is None:
            return self.render(request, "missing.html", what=f"task {task_id}")
        children = []
        if row is not None:
            children = [r for r in store.tasks(TaskQuery(limit=50)) if r.parent_id == task_id]
        return self.render(
            request,
            "task.html",
            task_id=task_id,
            row=row,
            timeline=timeline,
            record=record,
            children=children,
        )

    async def dead(self, request: Request) -> Response:
        letters: list[Any] = []
        for queue in queue_info.known_queues(self.app):
            try:
                letters += self.app.transport.dead_letters(queue, limit=DEAD_LIMIT)
            except ConveyorError as exc:
                letters.append(exc)
        return self.render(request, "dead.html", letters=letters)

    async def schedules(self, request: Request) -> Response:
        """Beat's leader and entries (conveyor.beat.status), when the beat extra is there."""
        try:
            from conveyor.beat.status import beat_status

            status = beat_status(self.app)
        except ImportError as exc:
            return self.render(request, "schedules.html", status=None, problem=f"{exc}")
        except ConveyorError as exc:
            return self.render(request, "schedules.html", status=None, problem=str(exc))
        return self.render(request, "schedules.html", status=status, problem=None)

    async def login(self, request: Request) -> Response:
        auth: security.Auth | None = request.app.state.auth
        if request.method == "GET":
            return self.render(request, "login.html", failed=False)
        token = (await _form(request)).get("token")
        if auth is None or not isinstance(token, str) or not auth.token_matches(token):
            response = self.render(request, "login.html", failed=True)
            response.status_code = 401
            return response
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(security.TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    async def live(self, request: Request) -> Response:
        return StreamingResponse(
            self.hub.subscribe(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def metrics(self, request: Request) -> Response:
        body, content_type = render(self.registry)
        return Response(body, headers={"Content-Type": content_type})

    # -- actions ----------------------------------------------------------------------

    def _done(self, message: str, status: int = 200) -> Response:
        kind = "ok" if status < 400 else "error"
        text = _escape(security.public(message))
        return HTMLResponse(f'<p class="flash {kind}">{text}</p>', status_code=status)

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        """A broker, backend or history that fails: a page saying so, without its URL."""
        response = self.render(request, "missing.html", what=None, problem=str(exc))
        response.status_code = 503
        return response

    async def revoke(self, request: Request) -> Response:
        if refused := self._refuse_write():
            return refused
        task_id = request.path_params["task_id"]
        terminate = request.query_params.get("terminate") == "1"
        try:
            self.app.control.revoke(task_id, terminate=terminate)
        except Unsupported as exc:
            return self._done(f"revoked, but could not reach running workers: {exc}", 409)
        except ConveyorError as exc:
            return self._done(f"revoke failed: {exc}", 502)
        return self._done(f"task {task_id} {'terminated' if terminate else 'revoked'}")

    async def replay(self, request: Request) -> Response:
        if refused := self._refuse_write():
            return refused
        queue = request.path_params["queue"]
        message_id = request.query_params.get("id")
        try:
            count = self.app.transport.replay_dead_letters(
                queue, ids=[message_id] if message_id else None
            )
        except ConveyorError as exc:
            return self._done(f"replay failed: {exc}", 502)
        return self._done(f"{count} dead letter(s) of {queue} replayed")

    async def purge_dead(self, request: Request) -> Response:
        if refused := self._refuse_write():
            return refused
        queue = request.path_params["queue"]
        try:
            count = self.app.transport.purge_dead_letters(queue)
        except Unsupported as exc:
            return self._done(str(exc), 409)
        except ConveyorError as exc:
            return self._done(f"purge failed: {exc}", 502)
        return self._done(f"{count} dead letter(s) of {queue} purged")

    async def worker_action(self, request: Request) -> Response:
        if refused := self._refuse_write():
            return refused
        hostname = request.path_params["hostname"]
        action = request.path_params["action"]
        control = self.app.control
        params = {**request.query_params, **(await _form(request))}
        try:
            if action == "shutdown":
                call = getattr(control, "shutdown", None)
                arguments: dict[str, Any] = {}
            elif action in ("pool_grow", "pool_shrink"):
                call = getattr(control, action, None)
                arguments = {"n": int(params.get("n", "1"))}
            elif action == "rate_limit":
                call = getattr(control, "rate_limit", None)
                task_name, rate = params.get("task", ""), params.get("rate", "")
                if not task_name or not rate:
                    return self._done("rate limit needs a task name and a rate such as 10/s", 400)
                arguments = {"task_name": task_name, "rate_limit": rate}
            else:
                return self._done(f"unknown worker action {action!r}", 404)
            if call is None:
                return self._done(f"this conveyor has no remote {action} yet", 409)
            replies = call(destination=[hostname], reply=True, timeout=ACTION_TIMEOUT, **arguments)
        except ValueError as exc:
            return self._done(f"bad value: {exc}", 400)
        except ConveyorError as exc:
            return self._done(f"{action} failed: {exc}", 502)
        answer = next((r[hostname] for r in replies or () if hostname in r), None)
        if answer is None:
            return self._done(f"{action} sent to {hostname}; no answer within {ACTION_TIMEOUT:g} s")
        if isinstance(answer, dict) and "error" in answer:
            return self._done(f"{hostname} refused {action}: {answer['error']}", 400)
        shown = answer.get("ok", answer) if isinstance(answer, dict) else answer
        return self._done(f"{hostname}: {shown}")


async def _form(request: Request) -> dict[str, str]:
    """A url-encoded form body (what htmx and the login form send), first value per name;
    read by hand so the dashboard needs no multipart parser."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return {}
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    return {name: values[0] for name, values in fields.items()}


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def create_app(
    app: Conveyor, *, read_only: bool = False, auth: security.Auth | None = None
) -> Starlette:
    """The ASGI app serving the dashboard of `app`."""
    board = Dashboard(app, read_only=read_only)
    routes = [
        Route("/", board.overview),
        Route("/api/series", board.series),
        Route("/workers", board.workers),
        Route("/workers/{hostname}/{action}", board.worker_action, methods=["POST"]),
        Route("/queues", board.queues),
        Route("/tasks", board.tasks),
        Route("/tasks/rows", board.tasks),
        Route("/tasks/{task_id}", board.task),
        Route("/tasks/{task_id}/revoke", board.revoke, methods=["POST"]),
        Route("/dead", board.dead),
        Route("/dead/{queue}/replay", board.replay, methods=["POST"]),
        Route("/dead/{queue}/purge", board.purge_dead, methods=["POST"]),
        Route("/schedules", board.schedules),
        Route("/login", board.login, methods=["GET", "POST"]),
        Route("/live", board.live),
        Route("/metrics", board.metrics),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        board.hub.start()
        try:
            yield
        finally:
            board.hub.stop()

    starlette = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ConveyorError: board.unavailable},
    )
    starlette.state.auth = auth
    starlette.state.board = board
    starlette.add_middleware(security.Gate, auth=auth)
    return starlette
