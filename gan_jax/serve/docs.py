"""/docs (Swagger UI) and /redoc served from files installed with the package, never a CDN.

Hospitals often run the server in networks with no internet, where FastAPI's default pages stay
blank (they load their JavaScript and CSS from a CDN). The assets come from the `fastapi-offline`
package (Swagger UI 5, which reads OpenAPI 3.1, and ReDoc); the pages are FastAPI's own
`get_swagger_ui_html` / `get_redoc_html` pointed at them, FastAPI's documented way to self-host.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/docs/static"


def static_dir() -> str:
    import fastapi_offline

    return os.path.join(os.path.dirname(fastapi_offline.__file__), "static")


def install(app: FastAPI) -> set[str]:
    """Adds /docs, /docs/oauth2-redirect, /redoc and their assets to `app` (created with
    docs_url=None, redoc_url=None). Returns every path they serve, to be left open by auth."""
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{title} - docs",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect():
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc():
        return get_redoc_html(
            openapi_url=app.openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )

    app.mount(STATIC_URL, StaticFiles(directory=static_dir()), name="docs-static")
    assets = {f"{STATIC_URL}/{name}" for name in os.listdir(static_dir())}
    return {"/docs", "/docs/oauth2-redirect", "/redoc", app.openapi_url, *assets}
