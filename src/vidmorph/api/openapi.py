"""The OpenAPI document, made honest: what each operation takes, answers and refuses.

FastAPI infers a spec from handler signatures, but ours read their bodies themselves (JSON or
multipart/form-data, raw video for uploads) and answer errors in the contract's envelope, so
the inferred one describes no body and claims a 422 that never happens. Routes pass
`doc(...)`'s keyword arguments to declare their bodies and statuses; `install` adds the shared
pieces (the envelope, the response objects, the bearer scheme) and removes FastAPI's 422.
`tests/api/test_openapi.py` runs schemathesis against the result on a live server.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from vidmorph.api import openapi_runway, schemas
from vidmorph.api.openapi_schemas import SCHEMAS

#: what each status means, as every operation that can return it says
_WHY = {
    400: "Invalid input: a parameter out of range, a malformed body, a video that cannot be "
    "used, or a NUL character in the query string.",
    401: "Missing or unknown token, or a suspended account.",
    404: "No such id for this user (another user's ids are 404 too), or a path holding a "
    "control character.",
    408: "The request body stalled.",
    409: "The Idempotency-Key was used before with a different request, or the account is busy.",
    412: "Not enough credits left on the account.",
    413: "The request body is too large.",
    429: "The account runs maxJobs tasks already (`runningTasks` lists them), or the queue "
    "is full; `Retry-After` says when to try again.",
    503: "Storage or the database is unreachable; retry later.",
}

#: request bodies, documented from the models the routes validate them with
BODY_MODELS: tuple[type[BaseModel], ...] = (
    schemas.AccountIn,
    schemas.Gen3VideoIn,
    schemas.Gen3TurboVideoIn,
    schemas.Gen4VideoIn,
)

#: Content-Types an upload may have (the route refuses the rest with 400)
UPLOAD_TYPES = (
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-matroska",
    "image/png",
    "image/jpeg",
    "audio/wav",
    "audio/mpeg",
)


#: a signed download: the stored file's bytes, whatever their type
FILE_CONTENT = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
#: GET /accounts: the user's accounts by email
ACCOUNTS_CONTENT = {
    "application/json": {
        "schema": {
            "type": "object",
            "additionalProperties": {"$ref": "#/components/schemas/Account"},
        }
    }
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def doc(
    *codes: int,
    ok: str | dict[str, Any] | None = None,
    many: bool = False,
    body: type[BaseModel] | None = None,
    upload: bool = False,
    path: tuple[str, ...] = (),
    headers: tuple[dict[str, Any], ...] = (),
    events: bool = False,
    public: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for a route decorator: the success body (`ok`: a schema's name, a
    list of them with `many`, or a whole content map), a JSON-or-form `body`, a raw `upload`
    body, path parameters the handler does not declare itself, request `headers` (OpenAPI
    parameter objects) it reads itself, and the error statuses
    `codes`. 400 and 404 are always among them (a NUL in the query string, a control
    character in the path), and 401 unless the operation is `public` (no token)."""
    responses: dict[int | str, Any] = {}
    if isinstance(ok, dict):
        responses[200] = {"description": "OK", "content": ok}
    elif ok is not None:
        schema = {"type": "array", "items": _ref(ok)} if many else _ref(ok)
        responses[200] = {"description": "OK", "content": _json(schema)}
    if events:
        responses[200] = {
            "description": "Server-Sent Events: `task` events (data: the Task), ending after "
            "its terminal state; `deleted` if it goes.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    for code in sorted({400, 404, *codes} if public else {400, 401, 404, *codes}):
        responses[code] = {"description": _WHY[code], "content": _json(_ref("Error"))}
    extra: dict[str, Any] = {"security": []} if public else {}
    if body is not None:
        schema = _ref(body.__name__)
        form = _ref(f"{body.__name__}Form")
        extra["requestBody"] = {
            "required": True,
            "content": {**_json(schema), "multipart/form-data": {"schema": form}},
        }
    if upload:
        binary = {"schema": {"type": "string", "format": "binary"}}
        extra["requestBody"] = {
            "required": True,
            "description": "The file's bytes as the raw body, with its Content-Type.",
            "content": {ctype: binary for ctype in UPLOAD_TYPES},
        }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in path
    ]
    if parameters or headers:
        extra["parameters"] = [*parameters, *headers]
    kwargs: dict[str, Any] = {"responses": responses, "openapi_extra": extra}
    if events:
        kwargs["response_class"] = StreamingResponse
    elif isinstance(ok, dict) and "application/json" not in ok:
        kwargs["response_class"] = Response  # no JSON beside the content it names
    return kwargs


def install(app: FastAPI) -> None:
    """Replace `app.openapi` with the built-once, honest document."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _build(app)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _build(app: FastAPI) -> dict[str, Any]:
    spec = get_openapi(
        title="Vidmorph",
        version=app.version,
        description="useapi.net's Runway v1 contract around Gen-3 Alpha video to video, "
        'self-hosted. Every error is `{"error": ..., "code": N}`.',
        routes=app.routes,
    )
    components = spec.setdefault("components", {})
    found = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        found.pop(name, None)
    found.update(SCHEMAS)
    found.update(openapi_runway.SCHEMAS)
    for runway_model in openapi_runway.BODY_MODELS:
        made = runway_model.model_json_schema(ref_template="#/components/schemas/{model}")
        found.update(made.pop("$defs", {}))
        found[runway_model.__name__] = made
    for model in BODY_MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        seconds = schema["properties"].get("seconds")
        if seconds is not None:  # this deployment's limit, not the ceiling any could set
            for choice in seconds.get("anyOf", [seconds]):
                if "maximum" in choice:
                    choice["maximum"] = app.state.ctx.settings.max_seconds
        found[model.__name__] = schema
        found[f"{model.__name__}Form"] = _form_schema(schema)
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "A Vidmorph API token."}
    }
    spec["security"] = [{"bearer": []}]
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            _tidy(operation)
            openapi_runway.tidy(operation)
    return spec


def _form_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A body model's schema for multipart/form-data: a form field is text or absent, never
    null, so optional fields lose their null alternative (and a null default)."""
    properties = {}
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        choices = [c for c in prop.pop("anyOf", []) if c.get("type") != "null"]
        if len(choices) == 1:
            prop.update(choices[0])
        elif choices:
            prop["anyOf"] = choices
        if prop.get("default", 0) is None:
            del prop["default"]
        properties[name] = prop
    return {**schema, "title": f"{schema.get('title', '')} (form)", "properties": properties}


def _tidy(operation: dict[str, Any]) -> None:
    """No 422 (validation errors are 400s in the envelope), no `authorization` header
    parameter (the bearer scheme says it), no handler-named titles beside references."""
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    for response in responses.values():  # FastAPI titles them after the handler's name
        for media in response.get("content", {}).values():
            if "$ref" in media.get("schema", {}):
                media["schema"].pop("title", None)
    params = [p for p in operation.get("parameters", []) if p.get("name") != "authorization"]
    if params:
        operation["parameters"] = params
    else:
        operation.pop("parameters", None)
