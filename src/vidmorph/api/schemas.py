"""Wire models for request bodies: the contract's names, ranges and defaults (the README's
"Contract decisions").

Form bodies arrive as strings; pydantic's lax mode coerces "5", "true", "0.75". A JSON `true`
is not a number, though (lax mode would read it as 1): numbers refuse booleans.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vidmorph.config import MAX_SECONDS_CEILING
from vidmorph.service.generate import MAX_SEED, CreateRequest


def not_bool(value: Any) -> Any:
    """A before-validator: a JSON true/false is no number (lax mode would take it as 1/0)."""
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not true or false")
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def no_controls(value: Any) -> Any:
    """A validator for names (an asset's, a file's): no control characters (NUL, CR, LF...),
    which a name never needs and which break whatever later shows or logs it."""
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValueError("must not hold control characters")
    return value


def null_is_absent(data: Any) -> Any:
    """A model before-validator: a field sent as null is a field left out (its default, or
    "Field required"), as clients that serialise unset options as null mean it."""
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if value is not None}
    return data


def has_text(value: Any) -> Any:
    """An after-validator: a prompt of white space alone says nothing (the engines would run
    on an empty prompt)."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("must hold more than white space")
    return value


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: str | None = Field(None, max_length=320)
    password: str | None = Field(None, max_length=200)
    maxJobs: int | None = Field(None, ge=1, le=10)
    # Vidmorph's additions: an account is a capacity pool with a plan and credits.
    # The column is a 32-bit integer on PostgreSQL.
    numPlanCredits: int | None = Field(None, ge=0, le=2**31 - 1)
    plan: Literal["standard", "unlimited"] | None = None
    replyUrl: str | None = Field(None, max_length=1024)

    _numbers = field_validator("maxJobs", "numPlanCredits", mode="before")(not_bool)


class Gen3VideoIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    assetId: str = Field(
        min_length=1,
        max_length=2000,
        description="The input video (POST /assets/).",
        examples=["user:1-runwayml:user@example.com-asset:1"],
    )
    text_prompt: str = Field(
        min_length=1, max_length=1000, examples=["the same street, at night in the rain"]
    )
    structure_transformation: float = Field(
        3.0,
        ge=0,
        le=10,
        description="0 keeps the input's structure, 10 departs from it; tasks show it as /10.",
        examples=[3],
    )
    # The deployment's VIDMORPH_MAX_SECONDS (10 by default) is checked at admission.
    seconds: int | None = Field(
        None,
        ge=1,
        le=MAX_SECONDS_CEILING,
        description="Output length; defaults to the input's duration, at most the server's "
        "maxSeconds (GET /features/; 10 unless configured).",
        examples=[5],
    )
    resolution: Literal["720p"] = "720p"
    seed: int | None = Field(
        None, ge=1, le=MAX_SEED, description="Same seed, same output.", examples=[7]
    )
    exploreMode: bool = Field(False, description="Needs an account on the unlimited plan.")
    replyUrl: str | None = Field(
        None,
        max_length=1024,
        description="POSTed the task object once, when it ends (every change with "
        "VIDMORPH_CALLBACK_EVENTS=all).",
    )
    replyRef: str | None = Field(None, max_length=1024)
    maxJobs: int | None = Field(None, ge=1, le=10)

    _numbers = field_validator(
        "structure_transformation", "seconds", "seed", "maxJobs", mode="before"
    )(not_bool)
    _prompt = field_validator("text_prompt")(has_text)
    _nulls = model_validator(mode="before")(null_is_absent)

    def to_request(self, aspect_ratio: str = "landscape") -> CreateRequest:
        return CreateRequest(
            asset_id=self.assetId,
            text_prompt=self.text_prompt,
            structure_transformation=self.structure_transformation,
            seconds=self.seconds,
            seed=self.seed,
            explore_mode=self.exploreMode,
            reply_url=self.replyUrl,
            reply_ref=self.replyRef,
            max_jobs=self.maxJobs,
            aspect_ratio=aspect_ratio,
            resolution=self.resolution,
        )


class Gen3TurboVideoIn(Gen3VideoIn):
    aspect_ratio: Literal["landscape", "portrait"] = "landscape"


class Gen4VideoIn(BaseModel):
    """useapi's Gen-4 Aleph video to video (`POST /gen4/video`)."""

    model_config = ConfigDict(extra="ignore")

    video_assetId: str = Field(
        min_length=1, max_length=2000, description="The input video (POST /assets/)."
    )
    image_assetId: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="An optional reference image (an image asset); see the README for what "
        "each engine does with it.",
    )
    text_prompt: str = Field(min_length=1, max_length=1000, examples=["the same street, in snow"])
    seed: int | None = Field(None, ge=1, le=MAX_SEED, examples=[7])
    exploreMode: bool = False
    replyUrl: str | None = Field(None, max_length=1024)
    replyRef: str | None = Field(None, max_length=1024)
    maxJobs: int | None = Field(None, ge=1, le=10)

    _numbers = field_validator("seed", "maxJobs", mode="before")(not_bool)
    _prompt = field_validator("text_prompt")(has_text)
    _nulls = model_validator(mode="before")(null_is_absent)

    def to_request(self) -> CreateRequest:
        return CreateRequest(
            asset_id=self.video_assetId,
            asset_field="video_assetId",
            aspect_ratio=None,  # Aleph keeps the input's framing, as on Runway's surface
            text_prompt=self.text_prompt,
            seed=self.seed,
            explore_mode=self.exploreMode,
            reply_url=self.replyUrl,
            reply_ref=self.replyRef,
            max_jobs=self.maxJobs,
            reference_asset_id=self.image_assetId,
        )
