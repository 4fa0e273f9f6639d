"""The response schemas of useapi's surface in the OpenAPI document (`api/openapi.py`).

Hand-written from the views (`service/views.py`): the fields clients rely on, with their types;
other fields are allowed. schemathesis checks every answer of a live server against them.
"""

from __future__ import annotations

from typing import Any

_NULL_STR = {"type": ["string", "null"]}

_ARTIFACT: dict[str, Any] = {
    "type": "object",
    "required": ["assetId", "url", "filename"],
    "properties": {
        "assetId": {"type": "string"},
        "url": {"type": "string", "description": "Signed, expiring link to the MP4."},
        "filename": {"type": "string"},
        "fileSize": {"type": "string"},
        "previewUrls": {"type": "array", "items": {"type": "string"}},
        "metadata": {"type": ["object", "null"]},
    },
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error", "code"],
        "properties": {
            "error": {"type": "string", "description": "What went wrong, for a person."},
            "code": {"type": "integer", "description": "The HTTP status again."},
            "runningTasks": {"type": "object", "description": "On 429: the busy account's tasks."},
        },
    },
    "Task": {
        "type": "object",
        "required": ["taskId", "id", "status", "createdAt", "taskType", "options", "artifacts"],
        "properties": {
            "taskId": {"type": "string", "examples": ["user:1-runwayml:user@example.com-task:3"]},
            "id": {"type": "string"},
            "name": {"type": "string"},
            "createdAt": {"type": "string"},
            "updatedAt": {"type": "string"},
            "taskType": {
                "type": "string",
                "enum": ["gen3a", "gen3a_turbo", "gen4_aleph", "aleph2"],
            },
            "status": {
                "type": "string",
                "enum": ["PENDING", "RUNNING", "THROTTLED", "SUCCEEDED", "FAILED", "CANCELLED"],
            },
            "error": {
                "type": ["string", "object", "null"],
                "description": "Why it FAILED: text, or for a moderated prompt an object "
                "(errorMessage, reason SAFETY.INPUT.TEXT, message, moderation_category).",
            },
            "progressText": _NULL_STR,
            "progressRatio": {**_NULL_STR, "description": 'A string, "0".."1".'},
            "placeInLine": {"type": ["integer", "null"]},
            "estimatedTimeToStartSeconds": {"type": ["number", "null"]},
            "options": {
                "type": "object",
                "properties": {
                    "text_prompt": {"type": "string"},
                    "structure_transformation": {
                        "type": "number",
                        "description": "The request's value divided by 10 (0..1).",
                    },
                    "seed": {"type": "integer"},
                    "seconds": {"type": "integer"},
                    "exploreMode": {"type": "boolean"},
                    "video_prompt": {**_NULL_STR, "description": "Signed link to the input."},
                },
            },
            "artifacts": {"type": "array", "items": _ARTIFACT},
            "features": {"type": "object"},
            "replyUrl": _NULL_STR,
            "replyRef": _NULL_STR,
            "code": {"type": "integer"},
        },
    },
    "Asset": {
        "type": "object",
        "required": ["assetId", "mediaType", "url", "fileSize"],
        "properties": {
            "assetId": {"type": "string", "examples": ["user:1-runwayml:user@example.com-asset:7"]},
            "name": {"type": "string"},
            "mediaType": {"type": "string", "enum": ["video", "image", "audio"]},
            "url": {**_NULL_STR, "description": "Signed, expiring link to the bytes."},
            "fileSize": {"type": "integer"},
            "metadata": {
                "type": ["object", "null"],
                "description": "What the probe measured: duration, width, height, frameRate.",
            },
        },
    },
    "Account": {
        "type": "object",
        "required": ["email", "maxJobs"],
        "properties": {
            "email": {"type": "string"},
            "maxJobs": {"type": "integer"},
            "plan": {"type": "string", "enum": ["standard", "unlimited"]},
            "numPlanCredits": {"type": "integer"},
            "numPlanCreditsUsed": {"type": "integer"},
            "replyUrl": _NULL_STR,
            "error": {"type": "string", "description": "Set while the account is suspended."},
        },
    },
    "Features": {
        "type": "object",
        "required": ["permitted", "used", "plan", "maxJobs"],
        "properties": {
            "permitted": {"type": "object"},
            "used": {"type": "object"},
            "plan": {"type": "string"},
            "exploreMode": {"type": "boolean"},
            "maxJobs": {"type": "integer"},
            "engine": {"type": "string"},
            "maxSeconds": {"type": "integer"},
        },
    },
    "SchedulerEntry": {
        "type": "object",
        "required": ["taskId", "status"],
        "properties": {"taskId": {"type": "string"}, "status": {"type": "string"}},
    },
}
