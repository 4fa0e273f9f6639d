"""A bare FastAPI app under the same uvicorn settings as `vidmorph serve`: the baselines
`bench/admission_bench.py` compares /healthz and POST /gen3/video with. Its POST route does
what the framework does for a create and nothing of the service's: a pydantic body from the
same JSON, and an answer of the task's shape and size (~1.3 KB), with no database, no
moderation, no signing.

    .venv/bin/python bench/bare_app.py PORT
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from vidmorph.api.server import uvicorn_options
from vidmorph.config import Settings

app = FastAPI()


@app.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "version": "0"}


class CreateIn(BaseModel):
    assetId: str
    text_prompt: str


@app.post("/v1/runwayml/gen3/video")
async def create(body: CreateIn) -> dict[str, Any]:
    task_id = f"user:1-runwayml:{body.assetId[-24:]}-task:{uuid.uuid4()}"
    url = "http://127.0.0.1/v1/runwayml/files/" + "x" * 150
    return {
        "taskId": task_id,
        "id": task_id[-36:],
        "name": f"Gen-3 Alpha {body.text_prompt[:40]}",
        "image": None,
        "createdAt": "2026-12-04T19:00:00.000Z",
        "updatedAt": "2026-12-04T19:00:00.000Z",
        "taskType": "gen3a",
        "options": {
            "name": f"Gen-3 Alpha {body.text_prompt[:40]}",
            "video_prompt": url,
            "video_prompt_preview_image": url,
            "text_prompt": body.text_prompt,
            "structure_transformation": 0.3,
            "seed": 12345,
            "seconds": 1,
            "width": 1280,
            "height": 768,
            "resolution": "720p",
            "exploreMode": False,
            "watermark": False,
            "image_as_end_frame": False,
            "enhance_prompt": False,
            "assetGroupName": "Generative Video",
            "recordingEnabled": True,
        },
        "status": "PENDING",
        "error": None,
        "progressText": None,
        "progressRatio": None,
        "estimatedTimeToStartSeconds": 12.5,
        "placeInLine": 1,
        "artifacts": [],
        "sharedAsset": None,
        "features": {"maxJobs": 10, "plan": "standard", "credits": 999},
        "replyUrl": None,
        "replyRef": None,
        "code": 200,
    }


if __name__ == "__main__":
    options = uvicorn_options(Settings(port=int(sys.argv[1]), host="127.0.0.1"))
    uvicorn.run(app, **{**options, "log_level": "warning"})
