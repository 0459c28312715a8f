"""The API's request and response shapes (pydantic), which also document it in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Optional, Union

from fastapi import Query
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictInt, StrictStr

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
