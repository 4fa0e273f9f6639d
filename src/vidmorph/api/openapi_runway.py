"""The OpenAPI of Runway's developer API surface (`/v1/...`): its bodies, answers and errors.

Its errors are Runway's `{"error": "..."}` (schema `RunwayError`), every route but the upload
form target needs `X-Runway-Version: 2024-11-06`, and `POST /v1/video_to_video` is one of two
bodies told apart by `model`. `api/openapi.py` merges these into the one document.
"""

from __future__ import annotations

from typing import Any

from vidmorph.api import runway_schemas

_WHY = {
    400: "Invalid input, a missing or unknown X-Runway-Version, too few credits, or something "
    "no engine here can honour (keyframes, another aspect ratio or output format).",
    401: "Missing or unknown key, or a suspended account.",
    404: "No such task or upload for this key (another user's are 404 too).",
    408: "The request body stalled.",
    413: "The request body is too large (over 24 MB, or an upload over the limit).",
    429: "The service-wide queue is full; past the account's maxJobs a task waits THROTTLED "
    "instead.",
    503: "Storage or the database is unreachable; retry later.",
}

_STATUSES = ["PENDING", "THROTTLED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
_CREDITS = {"type": "object", "properties": {"credits": {"type": "number"}}}

SCHEMAS: dict[str, dict[str, Any]] = {
    "RunwayError": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "RunwayTaskCreated": {
        "type": "object",
        "required": ["id", "estimatedCost"],
        "properties": {"id": {"type": "string", "format": "uuid"}, "estimatedCost": _CREDITS},
    },
    "RunwayTask": {
        "type": "object",
        "required": ["id", "status", "createdAt"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": _STATUSES},
            "createdAt": {"type": "string"},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "output": {"type": "array", "items": {"type": "string"}},
            "failure": {"type": "string"},
            "failureCode": {"type": ["string", "null"]},
            "cost": _CREDITS,
            "estimatedCost": _CREDITS,
        },
    },
    "RunwayUpload": {
        "type": "object",
        "required": ["runwayUri", "uploadUrl", "fields"],
        "properties": {
            "runwayUri": {"type": "string"},
            "uploadUrl": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "RunwayOrganization": {
        "type": "object",
        "required": ["creditBalance", "tier", "usage"],
        "properties": {
            "creditBalance": {"type": "integer"},
            "tier": {"type": "object"},
            "usage": {"type": "object"},
        },
    },
    "RunwayUsage": {
        "type": "object",
        "required": ["models", "results"],
        "properties": {
            "models": {"type": "array", "items": {"type": "string"}},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["date", "usedCredits"],
                    "properties": {
                        "date": {"type": "string", "format": "date"},
                        "usedCredits": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["amount", "model"],
                                "properties": {
                                    "amount": {"type": "integer"},
                                    "model": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

BODY_MODELS = (
    runway_schemas.Gen4AlephIn,
    runway_schemas.Aleph2In,
    runway_schemas.UploadIn,
    runway_schemas.UsageIn,
)

VIDEO_TO_VIDEO_BODY = {
    "oneOf": [
        {"$ref": "#/components/schemas/Gen4AlephIn"},
        {"$ref": "#/components/schemas/Aleph2In"},
    ],
    "discriminator": {"propertyName": "model"},
}
UPLOAD_BODY = {"$ref": "#/components/schemas/UploadIn"}
#: what the SDK posts to the form target: the given fields, and the file as `file`
FORM_BODY = {
    "type": "object",
    "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary"}},
    "additionalProperties": {"type": "string"},
}


def _error(code: int) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/RunwayError"}
    return {"description": _WHY[code], "content": {"application/json": {"schema": schema}}}


def runway_doc(
    *codes: int,
    ok: str | None = None,
    body: dict[str, Any] | None = None,
    public: bool = False,
    no_content: bool = False,
    form: bool = False,
    path: tuple[str, ...] = (),
    version: bool = False,
    body_required: bool = True,
) -> dict[str, Any]:
    """Keyword arguments for a Runway route's decorator (see `api.openapi.doc`); `path` and
    `version` document the path parameters and the version header of a handler that takes the
    Request alone (the poll, which skips FastAPI's dependency solving); `body_required` False
    for a body that may be left out (every field has a default)."""
    responses: dict[int | str, Any] = {}
    if ok is not None:
        schema = {"$ref": f"#/components/schemas/{ok}"}
        responses[200] = {"description": "OK", "content": {"application/json": {"schema": schema}}}
    if no_content:
        responses[204] = {"description": "Done; no body."}
    for code in sorted({400, 404, *codes} if public else {400, 401, 404, *codes}):
        responses[code] = _error(code)
    extra: dict[str, Any] = {"security": []} if public else {}
    if body is not None:
        extra["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": body}},
        }
    if form:
        extra["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": FORM_BODY}},
        }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in path
    ]
    if version:
        params.append({"name": "X-Runway-Version", "in": "header"})  # `tidy` completes it
    if params:
        extra["parameters"] = params
    return {"responses": responses, "openapi_extra": extra}


def tidy(operation: dict[str, Any]) -> None:
    """The version header as Runway's API has it: required, one value."""
    for param in operation.get("parameters", []):
        if param.get("name") == "X-Runway-Version":
            param["required"] = True
            param["schema"] = {"type": "string", "enum": [runway_schemas.RUNWAY_VERSION]}
            param["description"] = "Runway's API version; the official SDKs send it."
