"""The pages a browser gets: the playground at `/`, and the API's docs at `/docs` and `/redoc`.

Everything they load ships in the installed packages: the playground's own three files
(`api/web/`) and the Swagger UI and ReDoc bundles of `fastapi-offline`, so they work on a
machine with no network. The playground holds no secret: the person pastes their token into
it, the browser keeps it, and every call it makes is an ordinary API call with that token.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(str(files("vidmorph.api") / "web"))
DOCS_STATIC = Path(str(files("fastapi_offline") / "static"))

#: scripts and styles from this server only; media may be signed links to object storage
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: blob: http: https:; media-src 'self' blob: http: https:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _redoc_bundle() -> str:
    """ReDoc's bundle with its footer logo (fetched from Redocly's CDN, with no option to turn
    it off) pointed at the icon served here, so the page asks no other host for anything."""
    text = (DOCS_STATIC / "redoc.standalone.js").read_text(encoding="utf-8")
    return text.replace(_REDOC_LOGO, "/docs-static/favicon.png")


_REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def install(app: FastAPI) -> None:
    """Routes for `/`, `/ui/*`, `/docs`, `/redoc` and their bundles under `/docs-static/*`."""

    @app.get("/", include_in_schema=False)
    async def playground() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers=_PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Vidmorph API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="Vidmorph API",
            redoc_js_url="/docs-static/redoc.standalone.js",
            redoc_favicon_url="/docs-static/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/docs-static/redoc.standalone.js", include_in_schema=False)
    async def redoc_js() -> Response:
        return Response(_redoc_bundle(), media_type="text/javascript")

    app.mount("/ui", StaticFiles(directory=WEB_DIR), name="ui")
    app.mount("/docs-static", StaticFiles(directory=DOCS_STATIC), name="docs-static")
