"""The V2 control plane and its job runner (source runbook 004): the sandbox service.

:class:`V2ControlPlane` serves both apps in the sandbox with one job store;
``python -m opsconsole.sandbox serve control-plane|runner`` serves one alone.

The contract, in the seed's words: the control plane writes every job to
``ops_jobs`` (``queued``), delegates the work to the runner over HTTP with a
short timeout, and the runner moves the job to ``running`` on accept and to
``succeeded``/``failed`` when done; both "connect to the same Postgres
database". Here that database is :class:`JobStore`, one in-memory object both
apps share. ``DATABASE_URL`` is still required and validated exactly as the
real services do (PostgreSQL only, fail fast) but never connected to: there is
no Postgres in the sandbox.

Settings and their fail-fast validation live in ``v2_settings.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import shlex
import ssl
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from secrets import token_urlsafe
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
)
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .service import Fault, FaultSwitches, SandboxService, ServiceHost
from .v2_settings import (
    DEFAULT_RUNNER_ALLOWLIST,
    FEATURE_FLAGS,
    ControlPlaneSettings,
    RunnerSettings,
    database_kind,
    describe_settings_error,
)

__all__ = [
    "DEFAULT_RUNNER_ALLOWLIST",
    "FEATURE_FLAGS",
    "RUNNER_TIMEOUT_SECONDS",
    "SLOW_RESPONSE_SECONDS",
    "ControlPlaneSettings",
    "JobStore",
    "RunnerSettings",
    "V2ControlPlane",
    "create_control_plane_app",
    "create_runner_app",
    "describe_settings_error",
]

#: "Runner trigger endpoint uses short timeout (10 seconds)"
RUNNER_TIMEOUT_SECONDS = 10.0
#: past the seed's "< 5-10 seconds" lower bound, so latency budgets catch it
SLOW_RESPONSE_SECONDS = 6.0
_MAX_BODY_BYTES = 1024 * 1024


# --------------------------------------------------------------------------- job store


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


TERMINAL_STATUSES = frozenset({"succeeded", "failed"})


class JobStore:
    """``ops_jobs`` and ``ops_job_events``, kept in memory and shared by both services."""

    def __init__(self) -> None:
        self._jobs: dict[str, dict[str, Any]] = {}
        self._events: dict[str, list[dict[str, str]]] = {}
        # Read from the test/UI thread while the services write on the sandbox loop.
        self._lock = threading.Lock()

    def create(
        self, job_type: str, payload: Mapping[str, Any], *, job_id: str | None = None
    ) -> dict[str, Any]:
        stamp = _now()
        job: dict[str, Any] = {
            "id": job_id or str(uuid.uuid4()),
            "job_type": job_type,
            "status": "queued",
            "payload": dict(payload),
            "created_at": stamp,
            "updated_at": stamp,
            "result": None,
            "error": None,
        }
        with self._lock:
            if job["id"] in self._jobs:
                raise KeyError(job["id"])
            self._jobs[job["id"]] = job
            self._events[job["id"]] = [{"status": "queued", "at": stamp}]
            return dict(job)

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            return {**job, "events": [dict(event) for event in self._events[job_id]]}

    def recent(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(job) for job in list(self._jobs.values())[::-1][:limit]]

    def transition(
        self,
        job_id: str,
        status: str,
        *,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        """Move a job forward; a finished job never changes again."""
        with self._lock:
            job = self._jobs[job_id]
            if job["status"] in TERMINAL_STATUSES or job["status"] == status:
                return dict(job)
            stamp = _now()
            job.update(
                status=status,
                updated_at=stamp,
                result=dict(result) if result is not None else job["result"],
                error=error if error is not None else job["error"],
            )
            self._events[job_id].append({"status": status, "at": stamp})
            return dict(job)

    def counts(self) -> dict[str, int]:
        with self._lock:
            counts = dict.fromkeys(("queued", "running", "succeeded", "failed"), 0)
            for job in self._jobs.values():
                counts[job["status"]] = counts.get(job["status"], 0) + 1
            return {"total": len(self._jobs), **counts}


# --------------------------------------------------------------------------- shared HTTP bits


def _detail(status_code: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status_code)


async def _http_error_as_json(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _crash_as_json(request: Request, exc: Exception) -> Response:
    return _detail(500, "Internal Server Error")


_EXCEPTION_HANDLERS = {HTTPException: _http_error_as_json, Exception: _crash_as_json}


def _same_secret(presented: str | None, expected: str | None) -> bool:
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    job_type: StrictStr = Field(min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)


class RunnerDispatch(JobRequest):
    job_id: StrictStr | None = Field(None, min_length=1)


_Body = TypeVar("_Body", bound=BaseModel)


async def _read_body(request: Request, model: type[_Body]) -> _Body | Response:
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return _detail(422, "Request body must be a JSON object (invalid JSON)")
    if not isinstance(data, dict):
        return _detail(422, "Request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        return _detail(422, f"Invalid job request: {problems}")


# --------------------------------------------------------------------------- control plane


class _SlowResponses:
    """ASGI middleware for the ``slow-control-plane`` fault."""

    def __init__(self, app: ASGIApp, faults: FaultSwitches) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "slow-control-plane" in self.faults:
            await asyncio.sleep(SLOW_RESPONSE_SECONDS)
        await self.app(scope, receive, send)


Endpoint = Callable[[Request], Awaitable[Response]]


def create_control_plane_app(
    settings: ControlPlaneSettings, store: JobStore, faults: FaultSwitches
) -> Starlette:
    """The control plane: ops routes under both ``/api/v1/ops`` and ``/api/ops``."""
    ops_key = settings.ops_api_key.get_secret_value() if settings.ops_api_key else None
    outbound = (
        settings.runner_token_outbound.get_secret_value()
        if settings.runner_token_outbound
        else None
    )

    # One client for the app's life; an app served without lifespan events falls back
    # to a client per dispatch.
    runner_client: list[httpx.AsyncClient] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with _runner_http_client() as client:
            runner_client.append(client)
            try:
                yield
            finally:
                runner_client.remove(client)

    async def dispatch(url: str, **kwargs: Any) -> httpx.Response:
        if runner_client:
            return await runner_client[0].post(url, **kwargs)
        async with _runner_http_client() as client:
            return await client.post(url, **kwargs)

    def ops_route(path: str, endpoint: Endpoint, methods: list[str], flag: str | None) -> Route:
        async def guarded(request: Request) -> Response:
            # Auth before the feature gate: an unauthenticated caller learns nothing.
            if not _same_secret(request.headers.get("x-ops-key"), ops_key):
                return _detail(401, "Invalid or missing X-Ops-Key")
            if flag is not None and not getattr(settings, flag.lower()):
                return _detail(404, f"Feature disabled: {flag}")
            return await endpoint(request)

        return Route(path, guarded, methods=methods)

    async def create_job(request: Request) -> Response:
        body = await _read_body(request, JobRequest)
        if isinstance(body, Response):
            return body
        return JSONResponse(store.create(body.job_type, body.payload), status_code=201)

    async def list_jobs(request: Request) -> Response:
        raw = request.query_params.get("limit", "20")
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return _detail(422, "limit must be an integer between 1 and 100")
        return JSONResponse({"jobs": store.recent(limit)})

    async def read_job(request: Request) -> Response:
        job = store.get(request.path_params["job_id"])
        if job is None:
            return _detail(404, "Job not found")
        return JSONResponse(job)

    async def trigger_runner(request: Request) -> Response:
        body = await _read_body(request, JobRequest)
        if isinstance(body, Response):
            return body
        job = store.create(body.job_type, body.payload)
        job_id = job["id"]
        # Settings refuse RUNNER_ENABLED without both, and this route needs RUNNER_ENABLED.
        assert settings.runner_url is not None and outbound is not None
        try:
            reply = await dispatch(
                f"{settings.runner_url}/jobs",
                headers={"X-Runner-Token": outbound},
                json={"job_id": job_id, "job_type": body.job_type, "payload": body.payload},
            )
        except httpx.HTTPError:
            # httpx's messages name the runner URL: none of it may reach the caller.
            store.transition(job_id, "failed", error="Runner unreachable")
            return _detail(502, "Runner unreachable", job_id=job_id)
        if reply.status_code == 202:
            current = store.get(job_id) or job
            return JSONResponse(
                {"job_id": job_id, "job_type": body.job_type, "status": current["status"]},
                status_code=202,
            )
        if reply.status_code == 401:
            store.transition(job_id, "failed", error="Runner rejected the token (401)")
            return _detail(502, "Runner rejected the request (401 Unauthorized)", job_id=job_id)
        if reply.status_code == 403:
            detail = _runner_detail(reply) or "Runner refused the job (403 Forbidden)"
            store.transition(job_id, "failed", error=detail)
            return _detail(403, detail, job_id=job_id)
        store.transition(job_id, "failed", error=f"Runner returned HTTP {reply.status_code}")
        return _detail(
            502, f"Runner returned an unexpected status ({reply.status_code})", job_id=job_id
        )

    async def debug_env(request: Request) -> Response:
        # Shaped for `grep -i "token\|url\|key"` to find nothing: no such names or values.
        report: dict[str, Any] = {
            "app_env": settings.app_env,
            "features": settings.flags(),
            "database": database_kind(settings.database_url.get_secret_value()),
            "runner": "configured" if settings.runner_url else "not configured",
            "jobs": store.counts(),
        }
        if "debug-leaks-token" in faults:
            report["runner_token"] = outbound
        return JSONResponse(report)

    ops_routes = [
        ops_route("/jobs", create_job, ["POST"], "JOBS_ENABLED"),
        ops_route("/jobs", list_jobs, ["GET"], "JOBS_ENABLED"),
        ops_route("/jobs/{job_id}", read_job, ["GET"], "JOBS_ENABLED"),
        ops_route("/trigger_runner", trigger_runner, ["POST"], "RUNNER_ENABLED"),
        ops_route("/debug/env", debug_env, ["GET"], None),
    ]
    return Starlette(
        routes=[
            Route("/health", _health, methods=["GET"]),
            # The runbook's curl commands use /api/v1/ops, its prose /api/ops: both work.
            Mount("/api/v1/ops", routes=ops_routes),
            Mount("/api/ops", routes=ops_routes),
        ],
        middleware=[Middleware(_SlowResponses, faults=faults)],
        exception_handlers=_EXCEPTION_HANDLERS,
        lifespan=lifespan,
        max_body_size=_MAX_BODY_BYTES,
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~25 ms, which was most of a sandbox's start: once per
    # process. httpx's own default, verifying certificates (RUNNER_URL may be https).
    return httpx.create_ssl_context()


def _runner_http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=RUNNER_TIMEOUT_SECONDS, verify=_tls_context())


def _runner_detail(reply: httpx.Response) -> str | None:
    try:
        detail = reply.json().get("detail")
    except (ValueError, AttributeError):
        return None
    return detail if isinstance(detail, str) else None


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


# --------------------------------------------------------------------------- runner


class _Runner:
    """The runner's request handling and its in-flight jobs."""

    upstream_error: ClassVar[str] = "{job_type} failed: upstream returned 503"

    def __init__(
        self,
        settings: RunnerSettings,
        store: JobStore,
        faults: FaultSwitches,
        job_seconds: float,
    ) -> None:
        self.settings = settings
        self.store = store
        self.faults = faults
        self.job_seconds = job_seconds
        # What the runner expects once its token "was rotated" (runner-rejects-token).
        self.rotated_token = token_urlsafe(32)
        # The event loop keeps only weak references to tasks.
        self.tasks: set[asyncio.Task[None]] = set()

    def expected_token(self) -> str:
        if "runner-rejects-token" in self.faults:
            return self.rotated_token
        return self.settings.runner_token.get_secret_value()

    async def accept(self, request: Request) -> Response:
        if not _same_secret(request.headers.get("x-runner-token"), self.expected_token()):
            return _detail(401, "Invalid or missing X-Runner-Token")
        body = await _read_body(request, RunnerDispatch)
        if isinstance(body, Response):
            return body
        if body.job_type not in self.settings.runner_allowlist:
            return _detail(403, f"Job type '{body.job_type}' is not in RUNNER_ALLOWLIST")
        job = self.store.get(body.job_id) if body.job_id else None
        if job is None:
            # A job posted straight to the runner (or a control plane with its own store).
            job = self.store.create(body.job_type, body.payload, job_id=body.job_id)
        elif job["status"] != "queued":
            return _detail(409, f"Job {job['id']} is already {job['status']}", job_id=job["id"])
        self.store.transition(job["id"], "running")
        task = asyncio.create_task(self.run(job["id"], body.job_type))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return JSONResponse({"job_id": job["id"], "status": "running"}, status_code=202)

    async def run(self, job_id: str, job_type: str) -> None:
        started = time.perf_counter()
        await asyncio.sleep(self.job_seconds)
        if "job-fails" in self.faults:
            self.store.transition(
                job_id, "failed", error=self.upstream_error.format(job_type=job_type)
            )
            return
        self.store.transition(
            job_id,
            "succeeded",
            result={
                "job_type": job_type,
                "items_processed": 42,
                "duration_ms": round((time.perf_counter() - started) * 1000),
            },
        )


def create_runner_app(
    settings: RunnerSettings,
    store: JobStore,
    faults: FaultSwitches,
    *,
    job_seconds: float = 0.4,
) -> Starlette:
    runner = _Runner(settings, store, faults, job_seconds)
    app = Starlette(
        routes=[
            Route("/health", _health, methods=["GET"]),
            Route("/jobs", runner.accept, methods=["POST"]),
        ],
        exception_handlers=_EXCEPTION_HANDLERS,
        max_body_size=_MAX_BODY_BYTES,
    )
    app.state.runner = runner
    return app


# --------------------------------------------------------------------------- the service

#: validated like a real one, never connected to: the job store lives in memory
SANDBOX_DATABASE_URL = "postgresql://opsconsole@127.0.0.1:5432/opsconsole_sandbox"
_CONTROL_PLANE = "control-plane"
_RUNNER = "runner"


def _switch_runner_down(host: ServiceHost, active: bool) -> None:
    # The runner's port really refuses connections, and it comes back on the same one.
    if active:
        host.stop(_RUNNER)
    else:
        host.resume(_RUNNER)


class V2ControlPlane(SandboxService):
    """The control plane and its runner sharing one job store (source runbook 004)."""

    name = "v2-control-plane"
    title = "V2 control plane and job runner"
    variables = ("base_url", "runner_url", "database_url", "control_plane_cmd", "runner_cmd")
    secrets = ("ops_key", "runner_token")
    faults = (
        Fault(
            "runner-down",
            "the runner is not listening: its port refuses connections",
            switch=_switch_runner_down,
        ),
        Fault(
            "runner-rejects-token",
            "the runner's token was rotated: it rejects the token the control plane sends (401)",
        ),
        Fault(
            "job-fails",
            "the runner accepts jobs, then marks them failed (upstream returned 503)",
        ),
        Fault(
            "debug-leaks-token",
            "/debug/env leaks the runner token (the leakage grep must catch it)",
        ),
        Fault(
            "slow-control-plane",
            "every control-plane response is delayed by 6 s (over the 5 s budget)",
        ),
    )

    def __init__(self) -> None:
        #: ``ops_jobs``, shared by both apps (the real services share Postgres)
        self.store = JobStore()

    def start(self, host: ServiceHost) -> dict[str, str]:
        self.store = JobStore()
        runner_token = host.secrets["runner_token"]
        runner = RunnerSettings.from_env(
            {"DATABASE_URL": SANDBOX_DATABASE_URL, "RUNNER_TOKEN": runner_token}
        )
        runner_url = host.serve(
            _RUNNER,
            create_runner_app(runner, self.store, host.faults, job_seconds=host.job_seconds),
        )
        control = ControlPlaneSettings.from_env(
            {
                "APP_ENV": "sandbox",
                "DATABASE_URL": SANDBOX_DATABASE_URL,
                "SECRET_KEY": token_urlsafe(32),
                "OPS_API_KEY": host.secrets["ops_key"],
                "RUNNER_URL": runner_url,
                "RUNNER_TOKEN_OUTBOUND": runner_token,
                "JOBS_ENABLED": "true",
                "RUNNER_ENABLED": "true",
            }
        )
        base_url = host.serve(
            _CONTROL_PLANE, create_control_plane_app(control, self.store, host.faults)
        )
        python = shlex.quote(sys.executable)
        return {
            "base_url": base_url,
            "runner_url": runner_url,
            "database_url": SANDBOX_DATABASE_URL,
            "control_plane_cmd": f"{python} -m opsconsole.sandbox serve {_CONTROL_PLANE}",
            "runner_cmd": f"{python} -m opsconsole.sandbox serve {_RUNNER}",
        }
