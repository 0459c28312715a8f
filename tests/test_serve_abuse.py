"""The HTTP server under abuse: schemathesis against its own OpenAPI schema, a bounded load
test of ``deepmf serve`` on loopback at 16 and 64 clients, and shutdown with requests in
flight. Built on a generated miniature data set, so no real data is needed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import httpx2 as httpx
import pytest
from serve_run import free_port

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

from deepmf.serve import create_app  # noqa: E402

EXAMPLES = 25
"""Cases per operation and generation mode: seven operations, two modes, a few seconds."""


@pytest.fixture(scope="module")
def api_schema(tiny_run, tiny_data):
    # A request the schema forbids may also be refused as too large (413), not only 4xx.
    config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
        "expected-statuses": ["400", "404", "405", "413", "422"]}}})
    app = create_app(tiny_run, data_dir=str(tiny_data))
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_finds_no_500_and_no_undocumented_status(api_schema, mode):
    """Every operation, with data that fits the schema and data that breaks it: no server
    error, only documented status codes, responses that match their schemas."""
    generation = schemathesis.GenerationMode(mode)
    ran, failures = [], []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        has_input = operation.path_parameters or operation.query or operation.body
        if mode == "negative" and not has_input:
            continue  # nothing to break in GET /health

        @settings(max_examples=EXAMPLES, deadline=timedelta(seconds=2), database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation))
        def check(case):
            ran.append(operation.label)
            try:
                case.call_and_validate()
            except BaseException as failure:  # a FailureGroup: keep the first few lines
                failures.append(f"{operation.label}: {str(failure)[:300]}")

        check()
    print(f"schemathesis {mode}: {len(ran)} examples, {len(failures)} failures")
    assert len(ran) >= 5 * EXAMPLES
    assert not failures, "\n".join(failures[:5])


# -- a real server ------------------------------------------------------------------------


def start_server(run_dir, data_dir) -> tuple[subprocess.Popen, str]:
    """``deepmf serve`` in a subprocess on a free port; returns it and its base URL."""
    port = free_port()
    env = {**os.environ, "DEEPMF_DATA_DIR": str(data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-c", "from deepmf.cli import run; run()", "serve", str(run_dir),
         "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        # as from a terminal: a test run in the background inherits Ctrl-C ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return process, f"http://127.0.0.1:{port}"


def wait_healthy(process: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not become healthy in 90 s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def servers(tiny_run, tiny_data):
    """Two ``deepmf serve`` of the tiny run, started together (a start is mostly imports):
    the load tests use the first, and the shutdown tests end one each."""
    started = [start_server(tiny_run, tiny_data) for _ in range(2)]
    try:
        for process, base in started:
            wait_healthy(process, base)
        yield started
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=20)


@pytest.mark.parametrize("clients", [16, 64])
def test_load_on_loopback_answers_every_request(servers, clients):
    """A bounded burst (1,600 requests, at most 30 s) over keep-alive connections, each
    sending back to back: no errors, every answer a full top 10."""
    from benchmarks.serve_load import burst, percentile

    _, base = servers[0]
    users = httpx.get(f"{base}/users", params={"limit": 100_000}).json()["users"]
    latencies, errors, seconds = burst(base, users, 1600, clients, 10, 0.0, 30.0)
    rate = len(latencies) / seconds
    print(f"load {clients} clients: {len(latencies)} requests in {seconds:.2f} s, "
          f"{rate:.0f}/s, p50 {1000 * percentile(latencies, 0.5):.1f} ms, "
          f"p99 {1000 * percentile(latencies, 0.99):.1f} ms, {errors} errors")
    assert errors == 0 and len(latencies) == 1600
    assert percentile(latencies, 0.99) < 5.0


def slow_requests(base: str, n: int) -> tuple[list, list[threading.Event], list]:
    """``n`` POST /score requests whose bodies arrive in two parts a second apart; returns
    the threads, an event per request set once its first part is sent, and the answers."""
    sent, answers = [threading.Event() for _ in range(n)], []

    def one(index: int) -> None:
        text = json.dumps({"user": 1, "items": [1, 2, 3]}).encode()

        def body():
            yield text[:5]
            sent[index].set()  # runs when the client asks for the rest: the first part is out
            time.sleep(1.0)
            yield text[5:]

        try:
            response = httpx.post(f"{base}/score", content=body(), timeout=30,
                                  headers={"content-type": "application/json"})
            answers.append((response.status_code, response.json()))
        except (httpx.HTTPError, ValueError) as error:
            answers.append((None, repr(error)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    return threads, sent, answers


def shut_down_with_requests_in_flight(process: subprocess.Popen, base: str, signum: int):
    threads, sent, answers = slow_requests(base, 8)
    assert all(event.wait(20) for event in sent)
    time.sleep(0.3)  # the server has read every request's headers
    process.send_signal(signum)
    for thread in threads:
        thread.join(timeout=30)
    code = process.wait(timeout=30)
    stderr = process.stderr.read().decode()
    assert [a[0] for a in answers] == [200] * 8, answers
    assert all(len(a[1]["items"]) == 3 for a in answers)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/health", timeout=2)
    assert "Traceback" not in stderr
    return code, stderr


def test_sigterm_finishes_requests_in_flight_then_exits_143(servers):
    code, stderr = shut_down_with_requests_in_flight(*servers[0], signal.SIGTERM)
    assert code == 143 and stderr.strip().splitlines()[-1] == "deepmf: terminated"


def test_ctrl_c_finishes_requests_in_flight_then_exits_130(servers):
    code, stderr = shut_down_with_requests_in_flight(*servers[1], signal.SIGINT)
    assert code == 130 and stderr.strip().splitlines()[-1] == "deepmf: interrupted"
