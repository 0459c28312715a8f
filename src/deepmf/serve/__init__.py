"""HTTP JSON API and a small web page over one trained run (FastAPI + uvicorn).

The run is loaded once, item vectors are normalised once, and every handler is a thin call
into :class:`deepmf.experiment.trained.TrainedModel`. Unknown ids answer 404, bad parameters
(non-finite numbers included) 422 and bodies over :data:`MAX_BODY` bytes 413, all as
``{"detail": ...}`` JSON; no request answers 500. OpenAPI docs live at ``/docs``, with the
Swagger UI assets served from the installed ``swagger-ui-bundle`` package (no CDN).
"""

from __future__ import annotations

import gc
import socket
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from deepmf.errors import DeepMFError
from deepmf.experiment.trained import Scored, TrainedModel, UnknownIdError
from deepmf.serve.limits import BodyLimit
from deepmf.serve.schemas import (
    JSON,
    MAX_K,
    Error,
    Health,
    Item,
    K,
    ModelInfo,
    RankedItem,
    RatedItem,
    Recommendations,
    ScoredItem,
    ScoreRequest,
    Scores,
    SimilarItems,
    UserHistory,
    UserList,
)

STATIC = Path(__file__).parent.parent / "static"
MAX_BODY = 64 * 1024
"""Largest request body accepted (a /score request for 1,000 items takes about 10 KB)."""

def _info(s: Scored) -> dict:
    return {"item": s.item, "title": s.title, "genres": list(s.genres)}


def _ranked(items: list[Scored]) -> list[RankedItem]:
    return [RankedItem(rank=r, score=s.score, **_info(s)) for r, s in enumerate(items, 1)]


def create_app(run_dir: str | Path | TrainedModel, *, split: str | None = None,
               data_dir: str | None = None, cache_size: int = 4096) -> FastAPI:
    """The API for one run directory (or an already loaded :class:`TrainedModel`).

    The default recommendations (k = 10, unseen items) of the first ``cache_size`` users are
    computed at start-up, and as many other answers (per user, k and exclude_seen) are kept
    in an LRU cache; 0 turns both off.
    """
    tm = run_dir if isinstance(run_dir, TrainedModel) else TrainedModel(run_dir, split, data_dir)
    app = FastAPI(title="deepmf", version="0.1.0", docs_url=None,
                  description=f"Recommendations from a trained {tm.name} model.")
    app.state.model = tm
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    _errors(app)
    _about(app, tm)
    _recommendations(app, tm, cache_size)
    _items(app, tm)
    _pages(app)
    return app


NOT_FOUND = {404: {"model": Error, "description": "unknown user or item"}}


def _errors(app: FastAPI) -> None:
    @app.exception_handler(UnknownIdError)
    async def unknown_id(request: Request, error: UnknownIdError):
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(DeepMFError)
    async def user_error(request: Request, error: DeepMFError):
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        # FastAPI's own handler echoes the input, and NaN or 1e999 there cannot be JSON
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in error.errors()]
        return JSONResponse({"detail": detail}, status_code=422)


def _about(app: FastAPI, tm: TrainedModel) -> None:
    @app.get("/health", response_model=Health)
    async def health():
        return JSON(Health(model=tm.name))

    @app.get("/model", response_model=ModelInfo)
    async def model_info():
        return JSON(ModelInfo(**tm.describe()))

    @app.get("/users", response_model=UserList)
    async def users(offset: Annotated[int, Query(ge=0)] = 0,
                    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000):
        return JSON(UserList(total=len(tm.raw_users), offset=offset,
                             users=tm.raw_users[offset:offset + limit]))

    @app.get("/users/{user}/history", response_model=UserHistory, responses=NOT_FOUND)
    async def history(user: str, limit: Annotated[int, Query(ge=1, le=MAX_K)] = 20):
        rows = tm.history(user, limit)
        return JSON(UserHistory(
            user=tm.raw_users[tm.user_index(user)], n_seen=tm.n_seen(user),
            items=[RatedItem(rating=s.rating, timestamp=s.timestamp, **_info(s)) for s in rows]))


def _recommendations(app: FastAPI, tm: TrainedModel, cache_size: int) -> None:
    """``GET /users/{user}/recommendations``, with answers reused: the model never changes
    while serving, so the default question (top 10 of unseen items) is answered for the
    first ``cache_size`` users up front, in batches (one matrix product per 1,024 users, and
    no cold first request stalling the ones behind it); others go through an LRU cache."""

    def as_json(index: int, items: list[Scored], k: int, exclude_seen: bool) -> bytes:
        return Recommendations(user=tm.raw_users[index], k=k, exclude_seen=exclude_seen,
                               items=_ranked(items)).model_dump_json().encode()

    def answer(index: int, k: int, exclude_seen: bool) -> bytes:
        return as_json(index, tm.recommend_indices([index], k, exclude_seen)[0], k, exclude_seen)

    default_k, precomputed = 10, {}
    n_warm = min(cache_size, len(tm.raw_users))
    for start in range(0, n_warm, 1024):
        batch = list(range(start, min(start + 1024, n_warm)))
        for index, items in zip(batch, tm.recommend_indices(batch, default_k, True)):
            precomputed[index] = as_json(index, items, default_k, True)
    if cache_size:
        answer = lru_cache(maxsize=cache_size)(answer)

    @app.get("/users/{user}/recommendations", response_model=Recommendations,
             responses=NOT_FOUND)
    async def recommendations(user: str, k: K = 10, exclude_seen: bool = True):
        index = tm.user_index(user)
        body = precomputed.get(index) if k == default_k and exclude_seen else None
        return Response(body or answer(index, k, exclude_seen), media_type="application/json")


def _items(app: FastAPI, tm: TrainedModel) -> None:
    @app.get("/items/{item}/similar", response_model=SimilarItems, responses=NOT_FOUND)
    async def similar(item: str, k: K = 10):
        items = tm.similar([item], k)[0]
        index = int(tm.item_indices([item])[0])
        query = Item(item=tm.raw_items[index], title=tm.titles[index],
                     genres=list(tm.genres[index]))
        return JSON(SimilarItems(item=query, k=k, items=_ranked(items)))

    @app.post("/score", response_model=Scores, responses={
        **NOT_FOUND, 400: {"model": Error, "description": "body is not JSON"},
        413: {"model": Error, "description": "body too large"}})
    async def score(request: Annotated[ScoreRequest, Body()]):
        scored = tm.score(request.user, request.items)
        seen = tm.seen_mask(request.user, request.items)
        return JSON(Scores(user=tm.raw_users[tm.user_index(request.user)],
                           items=[ScoredItem(score=s.score, seen=flag, **_info(s))
                                  for s, flag in zip(scored, seen)]))


def _pages(app: FastAPI) -> None:
    """The web page, its static files, and the API docs with locally served assets."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # the serve extra not installed: Swagger UI from its CDN
        swagger_ui_path = None

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        local = {} if swagger_ui_path is None else dict(
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png")
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="deepmf API", **local)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if swagger_ui_path is not None:
        app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs")


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, *,
          split: str | None = None, data_dir: str | None = None, access_log: bool = False,
          log_level: str = "warning", cache_size: int = 4096) -> None:
    """Load a run and serve it with uvicorn until interrupted: on SIGTERM or Ctrl-C it stops
    accepting connections, answers the requests in flight (up to 10 s), then re-raises
    the signal, so the command exits 143 or 130."""
    import torch
    import uvicorn

    torch.set_num_threads(1)  # one small matmul per request: threads only add latency
    check_port(host, port)
    app = create_app(run_dir, split=split, data_dir=data_dir, cache_size=cache_size)
    # Everything loaded so far lives as long as the server: keep it out of the cyclic
    # garbage collector, whose full passes over it would stall requests for tens of ms.
    gc.collect()
    gc.freeze()
    print(f"deepmf: serving {app.state.model.name} from {run_dir} on http://{host}:{port} "
          f"(API docs at /docs)", flush=True)
    config = uvicorn.Config(app, host=host, port=port, access_log=access_log,
                            log_level=log_level, timeout_graceful_shutdown=10)
    # Server.run, not uvicorn.run: that swallows the Ctrl-C it re-raises after a graceful
    # shutdown, and the command would exit 0 instead of 130.
    uvicorn.Server(config).run()


def check_port(host: str, port: int) -> None:
    """``DeepMFError`` unless ``host:port`` can be bound (before a slow start-up)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise DeepMFError(f"cannot serve on {host}: {error.strerror}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise DeepMFError(f"cannot serve on {host}:{port}: {error.strerror}") from None
