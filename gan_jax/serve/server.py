"""The server process: one data plane, its HTTP front end under uvicorn and, when asked, its gRPC
front end, both on one event loop (so their requests share one micro-batcher). The model is
warmed up before either port opens. The gRPC server is started here, beside the HTTP server,
not inside the HTTP app: the app stays a plain ASGI app that any ASGI server can run.
"""

from __future__ import annotations

import asyncio

import uvicorn

from gan_jax.serve import app as http_app
from gan_jax.serve.dataplane import DataPlane
from gan_jax.serve.middleware import log


class Server:
    """HTTP on (host, port) and, with `settings.grpc_port`, gRPC beside it. `serve()` runs until
    `should_exit` is set (or a signal, under uvicorn's handlers)."""

    def __init__(self, plane: DataPlane, host: str, port: int, **uvicorn_options):
        self.plane = plane
        self.http = uvicorn.Server(
            uvicorn.Config(http_app.create_app(plane), host=host, port=port, **uvicorn_options)
        )
        self.grpc_port = None  # the port gRPC listens on, once started

    @property
    def started(self) -> bool:
        return self.http.started

    @property
    def should_exit(self) -> bool:
        return self.http.should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self.http.should_exit = value

    async def serve(self) -> None:
        self.plane.start()  # compile before any port opens
        grpc_server = None
        settings = self.plane.settings
        if settings.grpc_port is not None:
            from gan_jax.serve import grpc_server as grpc_front  # grpcio is an optional extra

            grpc_server = await grpc_front.start(self.plane, settings.grpc_host, settings.grpc_port)
            self.grpc_port = settings.grpc_port
        try:
            await self.http.serve()
        finally:
            if grpc_server is not None:
                await grpc_server.stop(grace=2)
                log.info("gRPC server stopped")

    def run(self) -> None:
        # uvicorn's loop (uvloop when installed, as `uvicorn.run` picks it): both servers run on it.
        with asyncio.Runner(loop_factory=self.http.config.get_loop_factory()) as runner:
            runner.run(self.serve())
