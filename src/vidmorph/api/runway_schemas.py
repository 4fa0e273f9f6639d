"""Wire models of Runway's own developer API (`/v1/...`, camelCase, as its SDKs send them).

`POST /v1/video_to_video` is discriminated by `model`: `gen4_aleph` and `aleph2` are the
video-to-video models Vidmorph runs; any other model is a 400 naming the two.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vidmorph.api.schemas import has_text, no_controls, not_bool
from vidmorph.service.generate import RUNWAY_SEEDS

#: Runway's API version its SDKs send in X-Runway-Version; the only one this server speaks
RUNWAY_VERSION = "2024-11-06"
MODELS = ("gen4_aleph", "aleph2")
ASPECT_RATIOS = ("16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "21:9")
PROMPT_MAX_CHARS = 1000
PRORES_PROFILES = ("422", "4444", "422 Proxy", "422 LT", "422 HQ", "4444 XQ")


def prompt_text(value: Any) -> Any:
    """Runway's promptText: some text, at most 1000 characters as its SDKs count them (UTF-16
    code units, so an emoji outside the BMP counts two)."""
    value = has_text(value)
    if isinstance(value, str) and len(value.encode("utf-16-le")) // 2 > PROMPT_MAX_CHARS:
        raise ValueError(f"must be at most {PROMPT_MAX_CHARS} characters (UTF-16 code units)")
    return value


def json_number(value: Any) -> Any:
    """A before-validator: a number as Runway's API takes one, never a string ("5") or a
    true/false, which pydantic's lax mode would turn into one."""
    if isinstance(value, str):
        raise ValueError("Input should be a number, not a string")
    return not_bool(value)


class ContentModeration(BaseModel):
    model_config = ConfigDict(extra="ignore")

    publicFigureThreshold: Literal["auto", "low"] = "auto"


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["image"]
    uri: str = Field(min_length=1, max_length=24 * 2**20)


class KeyframeRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_seconds: int = Field(ge=0)
    end_seconds: int = Field(ge=1)


class Keyframe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = Field(min_length=1, max_length=24 * 2**20)
    seconds: float | None = Field(None, ge=0)
    at: float | None = Field(None, ge=0, le=1)
    range: KeyframeRange | None = None


class _VideoToVideo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    videoUri: str = Field(min_length=1, max_length=24 * 2**20)
    seed: int | None = Field(None, ge=RUNWAY_SEEDS[0], le=RUNWAY_SEEDS[1])
    contentModeration: ContentModeration | None = None
    #: accepted and ignored, as Runway does
    ratio: str | None = Field(None, max_length=20)

    _seed = field_validator("seed", mode="before")(json_number)


class Gen4AlephIn(_VideoToVideo):
    model: Literal["gen4_aleph"]
    promptText: str = Field(min_length=1, max_length=PROMPT_MAX_CHARS)
    references: list[Reference] | None = Field(None, max_length=1)

    _prompt = field_validator("promptText")(prompt_text)


class Aleph2In(_VideoToVideo):
    model: Literal["aleph2"]
    promptText: str | None = Field(None, min_length=1, max_length=1000)
    keyframes: list[Keyframe] | None = Field(None, max_length=5)
    targetAspectRatio: Literal[ASPECT_RATIOS] | None = None  # type: ignore[valid-type]
    outputFormat: Literal["mp4", "prores", "png_sequence", "sdr_rec709_10bit"] = "mp4"
    #: Runway's ProRes flavours; only meaningful with outputFormat "prores", which this server
    #: refuses with its own message (it makes mp4 only)
    proresProfile: Literal[PRORES_PROFILES] | None = None  # type: ignore[valid-type]

    _prompt = field_validator("promptText")(prompt_text)

    @model_validator(mode="after")
    def _profile_needs_prores(self) -> Aleph2In:
        if self.proresProfile is not None and self.outputFormat != "prores":
            raise ValueError("proresProfile is only valid when outputFormat is prores")
        return self

    @field_validator("keyframes")
    @classmethod
    def _one_kind_of_range(cls, value: list[Keyframe] | None) -> list[Keyframe] | None:
        if value and len({k.range is None for k in value}) > 1:
            raise ValueError("either every keyframe sets a range or none does")
        for keyframe in value or ():
            if (keyframe.seconds is None) == (keyframe.at is None):
                raise ValueError("each keyframe sets exactly one of seconds and at")
        return value


class UploadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255)
    type: Literal["ephemeral"]

    _filename = field_validator("filename")(no_controls)


#: the longest range one usage query covers, as Runway allows
#: the years a usage query may name
USAGE_YEARS = (1970, 9000)
USAGE_MAX_DAYS = 90
USAGE_DEFAULT_DAYS = 30
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class UsageIn(BaseModel):
    """POST /v1/organization/usage: whole UTC days, `beforeDate` not included."""

    model_config = ConfigDict(extra="forbid")

    startDate: date | None = None
    beforeDate: date | None = None

    @field_validator("startDate", "beforeDate", mode="before")
    @classmethod
    def _iso_day(cls, value: Any) -> Any:
        # what Runway's SDKs send; pydantic alone would also take a number of epoch seconds
        if value is not None and not (isinstance(value, str) and _ISO_DAY.fullmatch(value)):
            raise ValueError("must be a date written YYYY-MM-DD")
        # the range's arithmetic (30 days either side) stays within what dates can hold
        if value is not None and not USAGE_YEARS[0] <= int(value[:4]) <= USAGE_YEARS[1]:
            raise ValueError(f"must be a date in the years {USAGE_YEARS[0]} to {USAGE_YEARS[1]}")
        return value

    @model_validator(mode="after")
    def _a_range_runway_allows(self) -> UsageIn:
        if (
            self.startDate is not None
            and self.beforeDate is not None
            and not self.startDate < self.beforeDate <= self.startDate + timedelta(USAGE_MAX_DAYS)
        ):
            raise ValueError(
                f"beforeDate must be after startDate and at most {USAGE_MAX_DAYS} days after it"
            )
        return self

    def days(self, today: date) -> tuple[date, date]:
        """The range as [start, before): Runway's defaults are 30 days before today and 30
        days after the start; with neither given, the 30 days up to and including today."""
        if self.startDate is None and self.beforeDate is None:
            return today - timedelta(USAGE_DEFAULT_DAYS - 1), today + timedelta(1)
        start = self.startDate or (self.beforeDate or today) - timedelta(USAGE_DEFAULT_DAYS)
        return start, self.beforeDate or start + timedelta(USAGE_DEFAULT_DAYS)
