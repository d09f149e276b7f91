"""What feedback is made of: the request body, a stored rating, and the two store shapes.

:class:`FeedbackStore` is the gateway's side (index each answered chat, rate one);
its methods are called on the event loop and keep any blocking work in a thread.
:class:`RatingsReader` is the offline readers' side (``enclave experiments report``,
``enclave dataset export``): plain blocking calls from a command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

MAX_COMMENT_CHARS = 2_000
REQUEST_ID = r"^[A-Za-z0-9._:-]{1,128}$"  # what the edge accepts as a request id
DAY_S = 86_400


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: StrictStr = Field(pattern=REQUEST_ID, max_length=128)
    rating: StrictInt  # not true, not 1.0: a JSON integer, 1 or -1
    comment: StrictStr | None = Field(default=None, max_length=MAX_COMMENT_CHARS)

    @field_validator("rating")
    @classmethod
    def _up_or_down(cls, rating: int) -> int:
        if rating not in (1, -1):
            raise ValueError("rating is 1 (up) or -1 (down)")
        return rating


@dataclass(frozen=True, slots=True)
class Rating:
    """One stored rating, as the report and the export read it."""

    tenant: str
    request_id: str
    rater: str
    rating: int
    comment: str | None
    experiment: str | None
    variant: str | None
    ts: float


class FeedbackStore(Protocol):
    """The gateway's feedback: which answers can be rated, and their ratings.

    A store that cannot be reached raises
    :class:`~functions.errors.StorageUnavailableError` (503); nothing else escapes.
    """

    async def remember(
        self, tenant: str, request_id: str, experiment: str | None, variant: str | None
    ) -> None:
        """An answered chat can be rated from now on (the latest under its id wins)."""
        ...

    async def rate(
        self, tenant: str, rater: str, body: FeedbackRequest, comment: str | None
    ) -> bool:
        """Store (or replace) ``rater``'s rating; False when the tenant has no such request."""
        ...

    async def aclose(self) -> None: ...


class RatingsReader(Protocol):
    """Every stored rating, for the offline readers; blocking calls."""

    def ratings(self, *, experiment: str | None = None, tenant: str | None = None) -> list[Rating]:
        """Ratings in the order they were given, optionally of one experiment and tenant."""
        ...

    def close(self) -> None: ...
