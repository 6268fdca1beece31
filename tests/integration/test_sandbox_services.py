"""Sandbox services: a service defined here registers, starts, configures and breaks on cue.

The greeter below lives only in this module; registering it is one tuple entry
(``SERVICES``), and nothing else in the repository learns about it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import opsconsole.sandbox.registry
from opsconsole.config import load_config
from opsconsole.errors import OpsConsoleError
from opsconsole.faults import FaultError, FaultInfo, FaultInjector, UnknownFault
from opsconsole.loader import load_runbook
from opsconsole.sandbox import (
    SERVICES,
    Fault,
    Sandbox,
    SandboxService,
    ServiceHost,
    UnknownService,
    services_for,
)
from opsconsole.sandbox.server import LoopbackServers
from opsconsole.sandbox.v2 import V2ControlPlane

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "runbooks"


def _switch_greeter_down(host: ServiceHost, active: bool) -> None:
    if active:
        host.stop("api")
    else:
        host.resume("api")


class Greeter(SandboxService):
    name = "greeter"
    title = "A service that exists only in this test module"
    variables = ("greeter_url",)
    secrets = ("greeter_key",)
    faults = (
        Fault("greeter-grumpy", "the greeter answers 503 to everyone"),
        Fault("greeter-down", "the greeter is not listening", switch=_switch_greeter_down),
    )

    def __init__(self) -> None:
        self.secrets_given: dict[str, str] = {}
        self.directory: Path | None = None
        self.url = ""
        self.stopped = False

    def start(self, host: ServiceHost) -> dict[str, str]:
        self.secrets_given = dict(host.secrets)
        self.directory = host.directory
        (host.directory / "greetings.txt").write_text("hello\n", encoding="utf-8")

        async def hello(request: Request) -> Response:
            if request.headers.get("x-greeter-key") != host.secrets["greeter_key"]:
                return JSONResponse({"detail": "who are you?"}, status_code=401)
            if "greeter-grumpy" in host.faults:
                return JSONResponse({"detail": "go away"}, status_code=503)
            return JSONResponse({"hello": "operator"})

        self.url = host.serve("api", Starlette(routes=[Route("/hello", hello)]))
        return {"greeter_url": self.url}

    def stop(self) -> None:
        self.stopped = True


class SharesTheOpsKey(SandboxService):
    name = "shares-the-ops-key"
    title = "Uses the V2 control plane's ops key too"
    variables = ()
    secrets = ("ops_key", "audit_token")

    def __init__(self) -> None:
        self.secrets_given: dict[str, str] = {}

    def start(self, host: ServiceHost) -> dict[str, str]:
        self.secrets_given = dict(host.secrets)
        return {}


class AlsoHasRunnerDown(SandboxService):
    name = "also-has-runner-down"
    title = "Has a fault named like the V2 service's"
    variables = ()
    faults = (Fault("runner-down", "the same name as the V2 fault"),)

    def start(self, host: ServiceHost) -> dict[str, str]:
        return {}


class AlsoProvidesBaseUrl(SandboxService):
    name = "also-provides-base-url"
    title = "Provides a variable the V2 service provides"
    variables = ("base_url",)

    def start(self, host: ServiceHost) -> dict[str, str]:
        return {"base_url": "http://127.0.0.1:9"}


class BreaksWhileStarting(SandboxService):
    name = "breaks-while-starting"
    title = "Serves one app, then fails to start"
    variables = ("broken_url",)

    def start(self, host: ServiceHost) -> dict[str, str]:
        host.serve("half", Starlette())
        raise RuntimeError("the second app would not start")


class ReturnsUndeclaredVariables(SandboxService):
    name = "undeclared"
    title = "Returns a variable it does not declare"
    variables = ("declared_url",)

    def start(self, host: ServiceHost) -> dict[str, str]:
        return {"declared_url": host.serve("app", Starlette()), "surprise": "x"}


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The greeter's one line in the registry."""
    monkeypatch.setattr(opsconsole.sandbox.registry, "SERVICES", (*SERVICES, Greeter))


def greeter_of(box: Sandbox) -> Greeter:
    service = next(service for service in box.services if service.name == "greeter")
    assert isinstance(service, Greeter)
    return service


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def the_injector(box: Sandbox) -> FaultInjector:
    """mypy checks here that a Sandbox is what the console's settings accept."""
    return box


# --------------------------------------------------------------------------- registering


@pytest.mark.usefixtures("registered")
def test_a_service_from_a_test_module_registers_starts_and_configures() -> None:
    with Sandbox(services=["greeter"]) as box:
        greeter = greeter_of(box)
        assert [service.name for service in box.services] == ["greeter"]
        assert set(box.variables) == {"greeter_url"}
        assert greeter.secrets_given == box.secret_values
        assert list(box.secret_values) == ["greeter_key"]
        assert greeter.directory is not None
        assert (greeter.directory / "greetings.txt").read_text(encoding="utf-8") == "hello\n"

        config = load_config(box.config_path)
        for name, protected in (("sandbox", False), ("sandbox-prod", True)):
            environment = config.environment(name)
            assert environment.protected is protected
            assert environment.variables == box.variables
            assert environment.secrets == ["greeter_key"]

        url = box.variables["greeter_url"]
        key = {"X-Greeter-Key": box.secret_values["greeter_key"]}
        assert httpx.get(f"{url}/hello", headers=key, timeout=5).json() == {"hello": "operator"}
        assert httpx.get(f"{url}/hello", timeout=5).status_code == 401

        injector = the_injector(box)
        assert list(injector.faults()) == [
            FaultInfo("greeter-grumpy", "the greeter answers 503 to everyone", "greeter", False),
            FaultInfo("greeter-down", "the greeter is not listening", "greeter", False),
        ]
        injector.set_fault("greeter-grumpy", True)
        assert httpx.get(f"{url}/hello", headers=key, timeout=5).status_code == 503
        assert [fault.active for fault in injector.faults()] == [True, False]
        assert injector.active_faults == {"greeter-grumpy"}
        injector.set_fault("greeter-grumpy", False)
        assert httpx.get(f"{url}/hello", headers=key, timeout=5).status_code == 200

        # The V2 service is registered but not started: none of it is here.
        assert "base_url" not in box.variables
        with pytest.raises(UnknownFault, match="v2-control-plane.*does not run"):
            injector.set_fault("runner-down", True)
        directory = greeter.directory
    assert greeter.stopped
    assert refuses_connections(port_of(url))
    assert not directory.exists()


@pytest.mark.usefixtures("registered")
def test_a_fault_that_stops_a_server_comes_back_on_the_same_port() -> None:
    with Sandbox(services=["greeter"]) as box:
        url = box.variables["greeter_url"]
        box.set_fault("greeter-down", True)
        assert refuses_connections(port_of(url))
        box.set_fault("greeter-down", True)  # already on: nothing to do, nothing raised
        box.set_fault("greeter-down", False)
        assert httpx.get(f"{url}/hello", timeout=5).status_code == 401

    with Sandbox(faults=["greeter-down"], services=["greeter"]) as down:
        url = down.variables["greeter_url"]
        assert refuses_connections(port_of(url))
        down.set_fault("greeter-down", False)
        assert httpx.get(f"{url}/hello", timeout=5).status_code == 401


@pytest.mark.usefixtures("registered")
def test_a_fault_that_cannot_be_switched_is_an_operator_error_and_stays_as_it_was() -> None:
    with Sandbox(services=["greeter"]) as box:
        url = box.variables["greeter_url"]
        box.set_fault("greeter-down", True)
        with socket.socket() as squatter:
            # Someone else took the port while the greeter was down.
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", port_of(url)))
            squatter.listen()
            with pytest.raises(FaultError, match="could not clear fault greeter-down: "):
                the_injector(box).set_fault("greeter-down", False)
            assert box.active_faults == {"greeter-down"}
        box.set_fault("greeter-down", False)
        assert httpx.get(f"{url}/hello", timeout=5).status_code == 401


def test_runner_down_through_the_injector_refuses_then_returns_on_its_port() -> None:
    with Sandbox(services=["v2-control-plane"], job_seconds=0.05) as box:
        injector = the_injector(box)
        runner_url = box.variables["runner_url"]
        injector.set_fault("runner-down", True)
        assert refuses_connections(port_of(runner_url))
        assert (
            FaultInfo(
                "runner-down",
                "the runner is not listening: its port refuses connections",
                "v2-control-plane",
                True,
            )
            in injector.faults()
        )
        injector.set_fault("runner-down", False)
        assert httpx.get(f"{runner_url}/health", timeout=5).json() == {"status": "ok"}
        assert injector.active_faults == frozenset()


def test_services_naming_one_secret_share_its_value() -> None:
    with Sandbox(services=[V2ControlPlane, SharesTheOpsKey]) as box:
        assert load_config(box.config_path).environment("sandbox").secrets == [
            "ops_key",
            "runner_token",
            "audit_token",
        ]
    sharing = next(service for service in box.services if isinstance(service, SharesTheOpsKey))
    assert list(box.secret_values) == ["ops_key", "runner_token", "audit_token"]
    assert sharing.secrets_given == {
        "ops_key": box.secret_values["ops_key"],
        "audit_token": box.secret_values["audit_token"],
    }


# --------------------------------------------------------------------------- choosing services


@pytest.mark.usefixtures("registered")
def test_services_for_picks_the_providers_of_variables_and_secrets() -> None:
    assert services_for(["base_url"]) == (V2ControlPlane,)
    assert services_for([], ["runner_token"]) == (V2ControlPlane,)
    assert services_for(["greeter_url"]) == (Greeter,)
    assert services_for(["base_url", "greeter_url"]) == (V2ControlPlane, Greeter)
    assert services_for([], ["greeter_key", "ops_key"]) == (V2ControlPlane, Greeter)
    assert services_for(["nothing_provides_this"], ["nor_this"]) == ()
    # A variable named like a secret is not that secret.
    assert services_for(["greeter_key"]) == ()


@pytest.mark.usefixtures("registered")
def test_for_runbooks_starts_what_the_front_matter_needs_and_the_faults_break(
    tmp_path: Path,
) -> None:
    v2 = load_runbook(RUNBOOKS / "v2-control-plane.md")
    discogs = load_runbook(RUNBOOKS / "discogs-collection.md")
    checklist_path = tmp_path / "checklist.md"
    checklist_path.write_text("# Checklist\n\n- [ ] The dashboard is green\n", encoding="utf-8")
    checklist = load_runbook(checklist_path)

    assert [s.name for s in Sandbox.for_runbooks([v2]).services] == ["v2-control-plane"]
    assert [s.name for s in Sandbox.for_runbooks([discogs, v2]).services] == [
        "v2-control-plane",
        "discogs-collection",
    ]
    assert [s.name for s in Sandbox.for_runbooks([checklist, v2]).services] == [
        "v2-control-plane"
    ]
    with_fault = Sandbox.for_runbooks([checklist], faults=["greeter-grumpy"])
    assert [s.name for s in with_fault.services] == ["greeter"]
    assert with_fault.active_faults == {"greeter-grumpy"}
    with pytest.raises(UnknownFault, match="runner-down"):
        Sandbox.for_runbooks([checklist], faults=["disk-full"])

    with Sandbox.for_runbooks([checklist]) as nothing_needed:
        assert nothing_needed.services == ()
        assert nothing_needed.variables == {} and nothing_needed.secret_values == {}
        config = load_config(nothing_needed.config_path)
        assert config.environment_names() == ["sandbox", "sandbox-prod"]
        assert config.environment("sandbox-prod").protected is True
        assert config.environment("sandbox").secrets == []
        assert nothing_needed.faults() == ()


# --------------------------------------------------------------------------- refusals


def test_unknown_names_are_operator_errors_that_list_the_valid_ones() -> None:
    with pytest.raises(UnknownService, match="v2-control-plane") as raised:
        Sandbox(services=["no-such-service"])
    assert isinstance(raised.value, OpsConsoleError)

    box = Sandbox(services=["v2-control-plane"])
    with pytest.raises(UnknownFault) as unknown:
        the_injector(box).set_fault("disk-full", True)
    assert isinstance(unknown.value, OpsConsoleError)
    assert str(unknown.value) == (
        "unknown fault 'disk-full'; valid faults: runner-down, runner-rejects-token, "
        "job-fails, debug-leaks-token, slow-control-plane"
    )
    with pytest.raises(UnknownFault, match="this sandbox has no faults"):
        Sandbox(faults=["runner-down-typo"], services=[])


def test_clashing_services_are_refused() -> None:
    with pytest.raises(
        ValueError, match="'v2-control-plane' and 'also-has-runner-down'.*fault named 'runner-down'"
    ):
        Sandbox(services=[V2ControlPlane, AlsoHasRunnerDown])
    with pytest.raises(
        ValueError, match="'v2-control-plane' and 'also-provides-base-url'.*variable 'base_url'"
    ):
        Sandbox(services=[V2ControlPlane, AlsoProvidesBaseUrl])


@pytest.mark.parametrize("broken", [BreaksWhileStarting, ReturnsUndeclaredVariables])
def test_a_failed_start_leaves_nothing_running(broken: type[SandboxService]) -> None:
    threads_before = set(threading.enumerate())
    box = Sandbox(services=[Greeter, broken])
    with pytest.raises(RuntimeError):
        box.start()
    greeter = greeter_of(box)
    assert greeter.stopped
    assert refuses_connections(port_of(greeter.url))
    assert greeter.directory is not None and not greeter.directory.exists()
    assert not box.started
    assert set(threading.enumerate()) <= threads_before


# --------------------------------------------------------------------------- the servers


def test_stopping_a_server_lets_a_request_in_flight_finish() -> None:
    arrived = threading.Event()

    async def slow(request: Request) -> Response:
        arrived.set()
        await asyncio.sleep(0.3)
        return JSONResponse({"finished": True})

    with LoopbackServers() as servers:
        port = servers.serve("slow", Starlette(routes=[Route("/", slow)]))
        replies: list[httpx.Response] = []
        request = threading.Thread(
            target=lambda: replies.append(httpx.get(f"http://127.0.0.1:{port}/", timeout=10))
        )
        request.start()
        assert arrived.wait(10)
        servers.stop("slow")
        request.join(10)
        assert refuses_connections(port)
    assert [reply.json() for reply in replies] == [{"finished": True}]


def test_stopping_a_server_cuts_a_request_longer_than_the_grace_period() -> None:
    arrived = threading.Event()

    async def stuck(request: Request) -> Response:
        arrived.set()
        await asyncio.sleep(60)
        return JSONResponse({"finished": True})

    with LoopbackServers() as servers:
        port = servers.serve("stuck", Starlette(routes=[Route("/", stuck)]))
        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(httpx.get(f"http://127.0.0.1:{port}/", timeout=30).status_code)
            except httpx.HTTPError as exc:
                outcome.append(type(exc))

        request = threading.Thread(target=call)
        request.start()
        assert arrived.wait(10)
        servers.stop("stuck")  # raises if the server outlives its grace period
        request.join(30)
        assert refuses_connections(port)
    assert outcome and outcome[0] != 200


# --------------------------------------------------------------------------- import weight


def loaded_after(code: str, env: dict[str, str]) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        check=True,
        timeout=30,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


WEB_STACK = {"starlette", "uvicorn", "httpx"}


def test_the_fault_injector_protocol_imports_no_web_stack() -> None:
    modules = loaded_after("import opsconsole.faults, opsconsole.config", dict(os.environ))
    assert "opsconsole.faults" in modules
    assert not (WEB_STACK | {"pydantic"}) & {name.split(".")[0] for name in modules}
    assert "opsconsole.sandbox" not in modules


def test_a_service_refusing_its_settings_loads_no_web_stack() -> None:
    # The V2 runbook runs this fail-fast check four times per walk.
    code = (
        "import contextlib, io\n"
        "from opsconsole.sandbox.__main__ import main\n"
        "with contextlib.redirect_stderr(io.StringIO()) as err:\n"
        "    assert main(['serve', 'runner']) == 78\n"
        "assert 'RUNNER_TOKEN' in err.getvalue()\n"
    )
    modules = loaded_after(code, {"PATH": os.environ.get("PATH", "")})
    assert "opsconsole.sandbox.v2_settings" in modules
    assert not WEB_STACK & {name.split(".")[0] for name in modules}
