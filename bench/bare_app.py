"""A one-route FastAPI app under the same uvicorn settings as `vidmorph serve`: the baseline
`bench/admission_bench.py` compares /healthz with.

    .venv/bin/python bench/bare_app.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from fastapi import FastAPI

from vidmorph.api.server import uvicorn_options
from vidmorph.config import Settings

app = FastAPI()


@app.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "version": "0"}


if __name__ == "__main__":
    options = uvicorn_options(Settings(port=int(sys.argv[1]), host="127.0.0.1"))
    uvicorn.run(app, **{**options, "log_level": "warning"})
