"""Wire models for request bodies: the contract's names, ranges and defaults (DESIGN §1).

Form bodies arrive as strings; pydantic's lax mode coerces "5", "true", "0.75".
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vidmorph.config import MAX_SECONDS_CEILING
from vidmorph.service.generate import MAX_SEED, CreateRequest


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


class Gen3VideoIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    assetId: str = Field(min_length=1, max_length=2000)
    text_prompt: str = Field(min_length=1, max_length=1000)
    structure_transformation: float = Field(3.0, ge=0, le=10)
    # The deployment's VIDMORPH_MAX_SECONDS (10 by default) is checked at admission.
    seconds: int | None = Field(None, ge=1, le=MAX_SECONDS_CEILING)
    resolution: Literal["720p"] = "720p"
    seed: int | None = Field(None, ge=1, le=MAX_SEED)
    exploreMode: bool = False
    replyUrl: str | None = Field(None, max_length=1024)
    replyRef: str | None = Field(None, max_length=1024)
    maxJobs: int | None = Field(None, ge=1, le=10)

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
