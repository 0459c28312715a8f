"""HTTP JSON API and a small web page over one trained run (FastAPI + uvicorn).

The run is loaded once, item vectors are normalised once, and every handler is a thin call
into :class:`deepmf.recommend.TrainedModel`. Unknown ids answer 404, bad parameters 422,
both as ``{"detail": ...}`` JSON; OpenAPI docs live at ``/docs``.
"""

from __future__ import annotations

import gc
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Optional, Union

from fastapi import Body, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, StrictInt, StrictStr

from deepmf.errors import DeepMFError
from deepmf.recommend import Scored, TrainedModel, UnknownIdError

STATIC = Path(__file__).parent / "static"
MAX_K = 1000

RawId = Union[StrictInt, Annotated[StrictStr, Field(min_length=1, max_length=200)]]
K = Annotated[int, Query(ge=1, le=MAX_K, description="list length, 1..1000")]


class Item(BaseModel):
    item: Union[int, str] = Field(description="raw item id, as in the dataset")
    title: Optional[str] = None
    genres: list[str] = []


class RankedItem(BaseModel):
    rank: int
    item: Union[int, str] = Field(description="raw item id, as in the dataset")
    title: Optional[str] = None
    genres: list[str] = []
    score: float = Field(description="model score (higher is better) or cosine similarity")


class Recommendations(BaseModel):
    user: Union[int, str]
    k: int
    exclude_seen: bool
    source: str = Field("model", description="'model', or 'popular' for a fallback")
    items: list[RankedItem]


class RatedItem(Item):
    rating: Optional[float] = Field(None, description="the user's rating, where known")
    timestamp: Optional[int] = Field(None, description="when it was rated (Unix seconds)")


class UserHistory(BaseModel):
    user: Union[int, str]
    n_seen: int = Field(description="training interactions of this user in all")
    items: list[RatedItem]


class SimilarItems(BaseModel):
    item: Item
    k: int
    items: list[RankedItem]


class ScoreRequest(BaseModel):
    user: RawId
    items: list[RawId] = Field(min_length=1, max_length=MAX_K)


class ScoredItem(Item):
    score: float
    seen: bool = Field(description="whether the user interacted with it in training")


class Scores(BaseModel):
    user: Union[int, str]
    items: list[ScoredItem]


class ModelInfo(BaseModel):
    model: str
    dataset: str
    task: Optional[str]
    split: str
    splits: list[str]
    split_note: Optional[str]
    metrics: dict
    n_users: int
    n_items: int
    n_interactions: int
    has_titles: bool
    has_item_vectors: bool
    has_ratings: bool


class UserList(BaseModel):
    total: int
    offset: int
    users: list[Union[int, str]]


class Health(BaseModel):
    status: str = "ok"
    model: str


class Error(BaseModel):
    detail: str


class JSON(Response):
    """A response from a pydantic model, serialized once by pydantic-core.

    Handlers return ``JSON(SomeModel(...))``; FastAPI then skips its second validation and
    encoding pass, which is most of the cost of a request. ``response_model`` still
    documents the shape in OpenAPI.
    """

    media_type = "application/json"

    def __init__(self, model: BaseModel, status_code: int = 200):
        super().__init__(model.model_dump_json(), status_code)


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
    app = FastAPI(title="deepmf", version="0.1.0",
                  description=f"Recommendations from a trained {tm.name} model.")
    app.state.model = tm
    not_found = {404: {"model": Error, "description": "unknown user or item"}}

    @app.exception_handler(UnknownIdError)
    async def unknown_id(request: Request, error: UnknownIdError):
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(DeepMFError)
    async def user_error(request: Request, error: DeepMFError):
        return JSONResponse({"detail": str(error)}, status_code=404)

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

    def recommendation_body(index: int, k: int, exclude_seen: bool) -> bytes:
        return _recommendations_json(index, tm.recommend_indices([index], k, exclude_seen)[0],
                                     k, exclude_seen)

    def _recommendations_json(index: int, items: list[Scored], k: int,
                              exclude_seen: bool) -> bytes:
        return Recommendations(user=tm.raw_users[index], k=k, exclude_seen=exclude_seen,
                               items=_ranked(items)).model_dump_json().encode()

    # The model never changes while serving, so answers can be reused: the default question
    # (top 10 of unseen items) is answered for the first ``cache_size`` users up front, in
    # batches (one matrix product per 1,024 users instead of one per request, and no cold
    # first request of a user stalling the ones queued behind it); other questions go
    # through an LRU cache.
    default_k, precomputed = 10, {}
    n_warm = min(cache_size, len(tm.raw_users))
    for start in range(0, n_warm, 1024):
        batch = list(range(start, min(start + 1024, n_warm)))
        for index, items in zip(batch, tm.recommend_indices(batch, default_k, True)):
            precomputed[index] = _recommendations_json(index, items, default_k, True)
    if cache_size:
        recommendation_body = lru_cache(maxsize=cache_size)(recommendation_body)

    @app.get("/users/{user}/recommendations", response_model=Recommendations,
             responses=not_found)
    async def recommendations(user: str, k: K = 10, exclude_seen: bool = True):
        index = tm.user_index(user)
        body = precomputed.get(index) if k == default_k and exclude_seen else None
        if body is None:
            body = recommendation_body(index, k, exclude_seen)
        return Response(body, media_type="application/json")

    @app.get("/users/{user}/history", response_model=UserHistory, responses=not_found)
    async def history(user: str, limit: Annotated[int, Query(ge=1, le=MAX_K)] = 20):
        rows = tm.history(user, limit)
        return JSON(UserHistory(
            user=tm.raw_users[tm.user_index(user)], n_seen=tm.n_seen(user),
            items=[RatedItem(rating=s.rating, timestamp=s.timestamp, **_info(s)) for s in rows]))

    @app.get("/items/{item}/similar", response_model=SimilarItems, responses=not_found)
    async def similar(item: str, k: K = 10):
        items = tm.similar([item], k)[0]
        index = int(tm.item_indices([item])[0])
        query = Item(item=tm.raw_items[index], title=tm.titles[index],
                     genres=list(tm.genres[index]))
        return JSON(SimilarItems(item=query, k=k, items=_ranked(items)))

    @app.post("/score", response_model=Scores, responses=not_found)
    async def score(request: Annotated[ScoreRequest, Body()]):
        scored = tm.score(request.user, request.items)
        seen = tm.seen_mask(request.user, request.items)
        return JSON(Scores(user=tm.raw_users[tm.user_index(request.user)],
                           items=[ScoredItem(score=s.score, seen=flag, **_info(s))
                                  for s, flag in zip(scored, seen)]))

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, *,
          split: str | None = None, data_dir: str | None = None, access_log: bool = False,
          log_level: str = "warning", cache_size: int = 4096) -> None:
    """Load a run and serve it with uvicorn until interrupted."""
    import torch
    import uvicorn

    torch.set_num_threads(1)  # one small matmul per request: threads only add latency
    app = create_app(run_dir, split=split, data_dir=data_dir, cache_size=cache_size)
    # Everything loaded so far lives as long as the server: keep it out of the cyclic
    # garbage collector, whose full passes over it would stall requests for tens of ms.
    gc.collect()
    gc.freeze()
    print(f"deepmf: serving {app.state.model.name} from {run_dir} on http://{host}:{port} "
          f"(API docs at /docs)", flush=True)
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level=log_level)
