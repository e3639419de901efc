"""The web console (SPEC §9): ``/ui/``, ``/ui/apps/{app_id}``, ``/ui/conversations/{id}``.

Why a small static page over the JSON API rather than server-rendered templates: the page then
reads exactly what every other client reads, through the same routes, access control, rate
limits and error bodies — there is no second read path to keep in step with the API, and no
session or cookie to protect (the API key stays in the browser tab and goes out as a bearer
header, so no other site can make the browser read on its behalf). It is plain HTML, CSS and
vanilla JavaScript shipped as package data: no build step, no framework, nothing fetched from
anywhere but this service.

Every page URL answers with the same HTML shell (so deep links work when opened directly);
``console.js`` reads the URL and draws the page. The shell goes out with a strict
Content-Security-Policy: only this origin's script, style, images and API, no inline script.
"""

from html import escape
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

router = APIRouter(prefix="/ui", include_in_schema=False)

_FILES = files("chat_ingest.api") / "console"
_ASSETS: dict[str, tuple[bytes, str]] = {
    "console.js": ((_FILES / "console.js").read_bytes(), "text/javascript; charset=utf-8"),
    "console.css": ((_FILES / "console.css").read_bytes(), "text/css; charset=utf-8"),
    "favicon.svg": ((_FILES / "favicon.svg").read_bytes(), "image/svg+xml"),
}
_SHELL = (_FILES / "index.html").read_text(encoding="utf-8")
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _shell(request: Request, status_code: int = 200) -> Response:
    """The page shell; ``root`` lets the page work behind a proxy that adds a path prefix."""
    root = escape(request.scope.get("root_path", "").rstrip("/"))
    return Response(
        _SHELL.replace("{root}", root),
        status_code=status_code,
        media_type="text/html; charset=utf-8",
        headers=_SECURITY_HEADERS,
    )


@router.get("")
async def console_root(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{request.scope.get('root_path', '')}/ui/")


@router.get("/")
@router.get("/apps/{app_id:path}")
@router.get("/conversations/{conversation_id:path}")
async def console_page(request: Request) -> Response:
    return _shell(request)


@router.get("/assets/{name}")
async def console_asset(name: str, request: Request) -> Response:
    if name not in _ASSETS:
        return _shell(request, status_code=404)
    content, media_type = _ASSETS[name]
    return Response(content, media_type=media_type, headers=_SECURITY_HEADERS)


@router.get("/{unknown:path}")
async def console_unknown(request: Request) -> Response:
    """Any other ``/ui/...`` URL: the shell with a 404 status; the page says "not found"."""
    return _shell(request, status_code=404)
