"""The HTTP API through FastAPI's TestClient, then `deepmf serve` as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from serve_run import free_port

from deepmf.cli import main
from deepmf.experiment.trained import TrainedModel
from deepmf.serve import create_app


@pytest.fixture(scope="session")
def client(trained):
    with TestClient(create_app(trained), raise_server_exceptions=False) as test_client:
        yield test_client


def test_health_and_model(client):
    assert client.get("/health").json() == {"status": "ok", "model": "biased-mf"}
    info = client.get("/model").json()
    assert (info["model"], info["dataset"], info["split"]) == ("biased-mf", "ml-100k", "u1")
    assert (info["n_users"], info["n_items"]) == (943, 1682)
    assert "rmse" in info["metrics"] and info["has_titles"] and info["has_item_vectors"]


def test_recommendations_match_the_cli(client, run_dir, capsys):
    body = client.get("/users/1/recommendations", params={"k": 10}).json()
    assert body["user"] == 1 and body["source"] == "model" and body["exclude_seen"]
    assert [r["rank"] for r in body["items"]] == list(range(1, 11))
    assert all(r["title"] and r["genres"] for r in body["items"])
    assert main(["recommend", str(run_dir), "--user", "1", "--k", "10", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert [r["item"] for r in body["items"]] == [r["item"] for r in cli["items"]]


def test_exclude_seen_false_may_return_seen_items(client, trained):
    body = client.get("/users/1/recommendations?k=50&exclude_seen=false").json()
    items = [r["item"] for r in body["items"]]
    assert len(items) == 50 and any(trained.seen_mask(1, items))
    cached = client.get("/users/1/recommendations?k=50&exclude_seen=false").json()
    assert cached == body


def test_precomputed_answers_equal_computed_ones(client, trained):
    with TestClient(create_app(trained, cache_size=0)) as uncached:
        for user in (1, 2, 500, 943):
            fresh = uncached.get(f"/users/{user}/recommendations").json()
            assert client.get(f"/users/{user}/recommendations").json() == fresh
            assert fresh["k"] == 10 and len(fresh["items"]) == 10


def test_history(client):
    body = client.get("/users/1/history", params={"limit": 5}).json()
    assert body["user"] == 1 and body["n_seen"] > 5 and len(body["items"]) == 5
    times = [r["timestamp"] for r in body["items"]]
    assert times == sorted(times, reverse=True) and body["items"][0]["rating"] >= 1


def test_similar_items(client):
    body = client.get("/items/50/similar?k=5").json()
    assert body["item"]["title"] == "Star Wars (1977)"
    assert len(body["items"]) == 5 and 50 not in [r["item"] for r in body["items"]]
    scores = [r["score"] for r in body["items"]]
    assert scores == sorted(scores, reverse=True) and -1 <= scores[-1] <= scores[0] <= 1


def test_score(client):
    response = client.post("/score", json={"user": 1, "items": [1, "2", 1500]})
    assert response.status_code == 200
    items = response.json()["items"]
    assert [r["item"] for r in items] == [1, 2, 1500]
    assert items[0]["seen"] and items[0]["title"] == "Toy Story (1995)"
    assert all(isinstance(r["score"], float) for r in items)


@pytest.mark.parametrize("path", [
    "/users/424242/recommendations", "/users/abc/history", "/users/%20/recommendations",
    "/items/99999/similar", "/items/x/similar", "/users/" + "9" * 300 + "/recommendations",
])
def test_unknown_ids_are_404_json(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "unknown" in response.json()["detail"]


@pytest.mark.parametrize("query", ["k=0", "k=1001", "k=abc", "k=-3", "exclude_seen=maybe"])
def test_bad_parameters_are_422(client, query):
    response = client.get(f"/users/1/recommendations?{query}")
    assert response.status_code == 422 and response.json()["detail"]


def test_k_bounds_apply_to_similar_and_history(client):
    assert client.get("/items/1/similar?k=0").status_code == 422
    assert client.get("/items/1/similar?k=1000").status_code == 200
    assert client.get("/users/1/history?limit=0").status_code == 422


@pytest.mark.parametrize("body", [
    b'{"user": 1, "items": [1,', b"not json", b'{"items": [1]}', b'{"user": 1, "items": []}',
    b'{"user": 1, "items": [1.5]}', b'{"user": null, "items": [1]}', b"[]",
    b'{"user": 1, "items": [[1]]}', b'{"user": true, "items": [1]}',
])
def test_bad_score_bodies_are_422(client, body):
    response = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "detail" in response.json()


# Issue 12: the validation handler could not serialise non-finite numbers and answered 500.
@pytest.mark.parametrize("body", [
    b'{"user": NaN, "items": [1]}', b'{"user": 1, "items": [Infinity]}',
    b'{"user": 1, "items": [1e999]}', b'{"user": -Infinity, "items": [NaN, 2]}',
])
def test_non_finite_numbers_are_422_not_500(client, body):
    response = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"]


def test_oversized_bodies_are_413(client):
    big = b'{"user": 1, "items": [' + b"1," * 40_000 + b"1]}"
    response = client.post("/score", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "bytes" in response.json()["detail"]

    def chunks():  # no content-length: the limit holds while streaming too
        for _ in range(100):
            yield b" " * 1024

    streamed = client.post("/score", content=chunks(),
                           headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert client.get("/health").status_code == 200


def test_docs_work_offline(client):
    html = client.get("/docs").text
    assert "cdn" not in html.lower() and "/docs-assets/swagger-ui-bundle.js" in html
    script = client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000


def test_a_busy_port_is_one_line_before_loading(run_dir, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(run_dir), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot serve on 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1


def test_score_unknown_ids_are_404(client):
    assert client.post("/score", json={"user": 1, "items": [1, 99999]}).status_code == 404
    assert client.post("/score", json={"user": "ghost", "items": [1]}).status_code == 404


def test_model_without_item_vectors_says_so(trained, run_dir, data_root):
    no_vectors = TrainedModel(run_dir, data_dir=str(data_root), load_data=False)
    no_vectors.item_vectors = None
    with TestClient(create_app(no_vectors)) as test_client:
        response = test_client.get("/items/1/similar")
    assert response.status_code == 404 and "no item embeddings" in response.json()["detail"]


def test_page_docs_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="user-input"' in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "recommendations" in script.text
    for text in (page.text, script.text, client.get("/static/style.css").text):
        assert "http://" not in text and "https://" not in text  # no CDN, nothing external
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/model", "/users/{user}/recommendations", "/users/{user}/history",
            "/items/{item}/similar", "/score"} <= set(paths)


def test_serve_subprocess_end_to_end(run_dir, data_root):
    port = free_port()
    env = {**os.environ, "DEEPMF_DATA_DIR": str(data_root)}
    server = subprocess.Popen(
        [sys.executable, "-c", "from deepmf.cli import run; run()", "serve", str(run_dir),
         "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become healthy in 60 s"
            time.sleep(0.2)
        body = httpx.get(f"{base}/users/1/recommendations?k=10").json()
        assert len(body["items"]) == 10
        assert httpx.get(f"{base}/users/nobody/recommendations").status_code == 404
    finally:
        server.terminate()
        server.wait(timeout=20)
        server.stdout.close()
