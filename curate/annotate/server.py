"""The ranking page and its JSON API: Starlette (a small ASGI toolkit: routing, JSON and static files, nothing
else) served by uvicorn, bound to a loopback address. Every script and style comes from `static/`; the page
fetches nothing from elsewhere. Both are imported only here, so `curate --help` never loads them.

The API answers only requests that name their annotator in the `X-Annotator` header (URL-encoded) and whose
Host is a loopback name: a browser sends neither from another site's page without asking first (a CORS
preflight this server never grants), which keeps other pages from writing into the annotations.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path
from urllib.parse import unquote

from curate.annotate.store import AnnotationError, Store
from curate.errors import UsageError
from curate.io import InputError

STATIC = Path(__file__).parent / "static"
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether the page may be served on (or asked for through) `host`.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _body(data) -> dict:
    if not isinstance(data, dict):
        raise AnnotationError("expected a JSON object")
    return data


# One entry per API route: (method, path, handler(store, annotator, path params, body, query) -> JSON).
ROUTES = [
    ("GET", "/api/prompts/{pos:int}", lambda s, a, p, b, q: s.view(a, p["pos"])),
    (
        "PUT",
        "/api/prompts/{pos:int}/ranking",
        lambda s, a, p, b, q: s.set_ranking(a, p["pos"], b.get("ranking")),
    ),
    (
        "PUT",
        "/api/prompts/{pos:int}/flags/{k:int}",
        lambda s, a, p, b, q: s.set_flag(a, p["pos"], p["k"], b.get("reason")),
    ),
    ("PUT", "/api/prompts/{pos:int}/edit", lambda s, a, p, b, q: s.set_edit(a, p["pos"], b.get("text"))),
    (
        "POST",
        "/api/prompts/{pos:int}/submit",
        lambda s, a, p, b, q: {**s.submit(a, p["pos"]), "next": s.next_open(a, after=p["pos"])},
    ),
    (
        "POST",
        "/api/prompts/{pos:int}/skip",
        lambda s, a, p, b, q: {
            **s.skip(a, p["pos"], b.get("reason")),
            "next": s.next_open(a, after=p["pos"]),
        },
    ),
    ("GET", "/api/next", lambda s, a, p, b, q: {"pos": s.next_open(a, after=int(q.get("after", -1)))}),
    (
        "GET",
        "/api/overview",
        lambda s, a, p, b, q: {"total": len(s.rows), "done": s.done_count(a), "prompts": s.overview(a)},
    ),
]


def create_app(store: Store):
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    def refuse(message: str, status: int) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def endpoint(handler, *, register: bool = False):
        async def call(request):
            if not is_loopback(request.url.hostname or ""):
                return refuse("this server answers only on a loopback address", 403)
            name = unquote(request.headers.get("x-annotator", ""))
            if not name:
                return refuse("name the annotator in the X-Annotator header", 400)
            try:
                raw = await request.body()
                body = _body(json.loads(raw)) if raw else {}
                if register:
                    return JSONResponse({"name": store.add_annotator(name)})
                store.check_annotator(name)
                return JSONResponse(handler(store, name, request.path_params, body, request.query_params))
            except ValueError as e:  # AnnotationError, a bad JSON body, a bad query number
                return refuse(str(e) if isinstance(e, AnnotationError) else f"bad request: {e}", 400)

        return call

    async def index(request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", index),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/annotators", endpoint(None, register=True), methods=["POST"]),
        *(Route(path, endpoint(fn), methods=[method]) for method, path, fn in ROUTES),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` (port 0: a free one); refuses any address but a loopback one."""
    if not is_loopback(host):
        raise UsageError(f"--host {host}: the page is served on a loopback address only (127.0.0.1, ::1)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it an answer's body waits for the ACK of its headers (Nagle and
    # delayed ACK), about 35 ms more per action in benchmarks/bench_annotate.py.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise InputError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve(store: Store, sock: socket.socket) -> None:
    """Serve until interrupted (Ctrl+C or SIGTERM); every action is already saved when it returns."""
    import uvicorn

    config = uvicorn.Config(create_app(store), log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
