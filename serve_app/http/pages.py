"""The browser pages of the gateway: the playground and the API docs, all served from files installed with the
project (no CDN), with a Content-Security-Policy that keeps every request on the server and its storage.

Public on purpose: a page holds no data; the API calls it makes carry the user's key.
"""

from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve_app.settings import StorageArgs

PLAYGROUND_DIR = Path(__file__).parent / "playground"
DOCS_ASSETS = resources.files("fastapi_offline") / "static"  # Swagger UI and ReDoc bundles, pinned in pyproject
SWAGGER_PARAMETERS = {"validatorUrl": None}  # Swagger UI's badge would send the spec to validator.swagger.io
BASE_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def storage_origins(storage: StorageArgs) -> list[str]:
    """Origins the browser talks to besides the gateway: where presigned uploads go and results play from."""
    if storage.backend == "local":
        url = urlsplit(storage.public_base_url)
        return [f"{url.scheme}://{url.netloc}"]
    if storage.endpoint_url:
        url = urlsplit(storage.endpoint_url)
        return [f"{url.scheme}://{url.netloc}", f"{url.scheme}://*.{url.netloc}"]  # path- or virtual-host style
    return ["https://*.amazonaws.com"]


def page_policies(origins: list[str]) -> dict[str, str]:
    """Content-Security-Policy per page path. The playground runs only its own files; the docs pages need
    inline script and styles (FastAPI's Swagger UI page starts it inline; ReDoc styles itself at run time)."""
    storage = " ".join(origins)
    common = "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    docs = f"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; {common}"
    return {
        "/playground": (
            f"default-src 'self'; img-src 'self' data: blob:; media-src 'self' {storage}; "
            f"connect-src 'self' {storage}; {common}"
        ),
        "/docs": f"{docs}; img-src 'self' data:",
        "/redoc": f"{docs}; img-src 'self' data:; worker-src 'self' blob:",
    }


class SecurityHeaders:
    """Pure ASGI (a BaseHTTPMiddleware would buffer the event streams): `nosniff` and no referrer on every
    answer, and each page's CSP on the page and its assets."""

    def __init__(self, app: ASGIApp, policies: dict[str, str]) -> None:
        self._app, self._policies = app, policies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        policy = next((p for prefix, p in self._policies.items() if _under(path, prefix)), None)
        extra = {**BASE_HEADERS, **({"content-security-policy": policy, "x-frame-options": "DENY"} if policy else {})}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self._app(scope, receive, send_with_headers)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


@cache
def redoc_bundle() -> bytes:
    """ReDoc's script, its sidebar logo pointed at nothing: ReDoc always loads Redocly's logo from their CDN (no
    option turns it off); with `data:,` the image fails at once and ReDoc hides it, and nothing leaves."""
    return (DOCS_ASSETS / "redoc.standalone.js").read_text(encoding="utf-8").replace(REDOC_LOGO, "data:,").encode()


def add_pages(app: FastAPI, storage: StorageArgs) -> None:
    """/playground, /docs (Swagger UI) and /redoc, from local files; `app` must be built with docs_url=None."""
    app.add_middleware(SecurityHeaders, policies=page_policies(storage_origins(storage)))

    @app.get("/docs/assets/redoc.standalone.js", include_in_schema=False)
    async def redoc_script() -> Response:
        """The ReDoc bundle without its one CDN image (matched before the assets folder below)."""
        return Response(redoc_bundle(), media_type="text/javascript", headers={"cache-control": "max-age=3600"})

    app.mount("/docs/assets", StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")
    app.mount("/playground/assets", StaticFiles(directory=str(PLAYGROUND_DIR)), name="playground-assets")

    @app.get("/playground", include_in_schema=False)
    async def playground() -> FileResponse:
        """The playground page (its script builds the form from /openapi.json)."""
        return FileResponse(PLAYGROUND_DIR / "index.html", headers={"cache-control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        """Swagger UI from the installed bundle."""
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        """ReDoc from the installed bundle, without Google Fonts."""
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}/docs/assets/redoc.standalone.js",
            redoc_favicon_url=f"{root}/docs/assets/favicon.png",
            with_google_fonts=False,
        )
