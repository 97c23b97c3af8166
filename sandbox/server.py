"""Start and drive the four emulators together: the interface tests and ``remediator demo`` use.

``start_sandbox()`` serves Databricks (http), ADF through ARM (https), Synapse (https) and an
OpenAI-compatible API (http) on free loopback ports, each in its own background thread, with a
throwaway CA (:mod:`sandbox._ca`) whose PEM is written to ``ca_file`` for the Azure clients'
``connection_verify``.
"""

from __future__ import annotations

import http.client
import ssl
import tempfile
from pathlib import Path
from typing import Any

from sandbox._ca import CA
from sandbox._http import Emulator, Fault, Served, serve
from sandbox.adf import AdfEmulator
from sandbox.databricks import DatabricksEmulator
from sandbox.openai import OpenAIEmulator
from sandbox.synapse import SynapseEmulator

__all__ = ["SERVICES", "Sandbox", "start_sandbox"]

#: The service names that ``calls()`` and ``script()`` take.
SERVICES = ("databricks", "adf", "synapse", "openai")


class Sandbox:
    """The started emulators: their URLs, the CA file, the call log and the fault scripts."""

    def __init__(self, served: dict[str, Served], ca_file: str,
                 tmp: tempfile.TemporaryDirectory[str] | None) -> None:
        self._served = served
        self._tmp = tmp
        self.ca_file = ca_file
        self.databricks_url: str = served["databricks"].url
        self.adf_url: str = served["adf"].url
        self.synapse_url: str = served["synapse"].url
        self.openai_url: str = served["openai"].url + "/v1"

    def _emulator(self, service: str) -> Emulator:
        if service not in self._served:
            raise ValueError(f"unknown sandbox service {service!r}; one of {', '.join(SERVICES)}")
        return self._served[service].emulator

    def calls(self, service: str | None = None) -> list[dict[str, Any]]:
        """Every request received (of one service, or of all in arrival order).

        Each is {"service", "method", "path", "query", "body", "headers", "status", "ts"}; header
        names are lower-case and credential headers are masked. ``status`` is None while a
        scripted hang holds the answer back.
        """
        services = [service] if service is not None else list(SERVICES)
        calls = [c for name in services for c in self._emulator(name).calls()]
        return sorted(calls, key=lambda c: c["ts"])

    def script(self, service: str, operation: str, *, status: int | None = None,
               times: int = 1, hang: float | None = None, retry_after: int | None = None,
               fail_rerun: bool = False, body: dict[str, Any] | None = None) -> None:
        """Make the next ``times`` calls of ``operation`` misbehave.

        ``status``: answer that error (in the service's shape, or ``body``) with ``Retry-After``
        when ``retry_after``; ``hang``: hold the answer back that many seconds first (ended
        early by reset/stop, dropping the connection); ``fail_rerun``: the call succeeds but the
        run or cluster start it begins ends failed; ``body`` without status: answer 200 with it.
        """
        self._emulator(service).script(Fault(operation, status, times, hang, retry_after,
                                             fail_rerun, body))

    def failure(self, service: str, kind: str, **body: Any) -> dict[str, Any]:
        """What ``POST /_sandbox/failures/<kind>`` on ``service`` makes: a run that failed with
        ``error_code``/``termination_code`` (a drill), a terminated cluster, the failed run an
        alert names (``given-run``: docs/SANDBOX.md). ValueError for a body the emulator
        refuses, KeyError for a kind it does not make."""
        emulator = self._emulator(service)
        make = emulator.failures()[kind]
        with emulator.lock:
            return make(body)

    def reset(self) -> None:
        """Fresh state, empty call log and no scripts in every emulator."""
        for served in self._served.values():
            served.emulator.reset()

    def stop(self) -> None:
        """Stop every emulator and remove the temporary CA directory, if ours."""
        for served in self._served.values():
            served.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _tls(ca: CA, host: str) -> ssl.SSLContext:
    return ca.server_context(*sorted({host, "127.0.0.1", "localhost", "::1"}))


def _wait_answering(served: Served, ca_file: str) -> None:
    """Block until the emulator answers its control endpoint (the server thread is up)."""
    host, port = served.server.server_address[:2]
    if served.url.startswith("https"):
        context = ssl.create_default_context(cafile=ca_file)
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            served.url.split("://")[1].rsplit(":", 1)[0].strip("[]"), port, timeout=5,
            context=context)
    else:
        conn = http.client.HTTPConnection(str(host), port, timeout=5)
    try:
        conn.request("GET", "/_sandbox/calls")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"sandbox {served.emulator.service} answered {response.status}")
    finally:
        conn.close()


def start_sandbox(host: str = "127.0.0.1", workdir: str | Path | None = None) -> Sandbox:
    """Start all four emulators on free ports of ``host``; returns once each one answers.

    The CA's PEM goes to ``workdir/sandbox-ca.pem`` (a temporary directory removed by
    ``stop()`` when ``workdir`` is None).
    """
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="remediator-sandbox-")
        workdir = tmp.name
    directory = Path(workdir)
    directory.mkdir(parents=True, exist_ok=True)
    ca = CA()
    ca_file = directory / "sandbox-ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    tls = _tls(ca, host)
    served = {
        "databricks": serve(DatabricksEmulator(), host),
        "adf": serve(AdfEmulator(), host, tls),
        "synapse": serve(SynapseEmulator(), host, tls),
        "openai": serve(OpenAIEmulator(), host),
    }
    sandbox = Sandbox(served, str(ca_file), tmp)
    try:
        for one in served.values():
            _wait_answering(one, str(ca_file))
    except BaseException:
        sandbox.stop()
        raise
    return sandbox
