"""`gan-jax serve [BUNDLE]`: the prediction server (gan_jax/serve/) under uvicorn.

BUNDLE defaults to $GAN_JAX_BUNDLE, then $AIP_STORAGE_URI (Vertex AI), then /opt/ml/model
(SageMaker); the port to $AIP_HTTP_PORT, then $PORT, then 8080 (what SageMaker, Vertex AI and
KServe expect). The token comes from --token-file, $GAN_JAX_API_TOKEN_FILE or $GAN_JAX_API_TOKEN.
With --grpc-port, the KServe v2 gRPC service runs too, on that port, in the same process and
event loop as HTTP (one data plane: same model, micro-batcher, token, limits and metrics); it
needs --workers 1 (one data plane per process).
An image bundle is served through the same routes with image bodies (see gan_jax/serve/app.py);
--max-image-side and --max-image-pixels bound what an upload may declare before it is decoded.
"""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", nargs="?", help="bundle folder URI (default: see gan-jax serve --help)")
    parser.add_argument("--host", default="0.0.0.0", help="interface to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (default $AIP_HTTP_PORT, $PORT or 8080)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    grpc_help = "also serve the Open Inference Protocol (KServe v2) over gRPC on this port (default: off)"
    parser.add_argument("--grpc-port", type=int, help=grpc_help)
    parser.add_argument("--model-name", default="gan_jax", help="name in the KServe v2 routes")
    parser.add_argument("--max-batch", type=int, default=1024, help="most cases per request (default 1024)")
    parser.add_argument("--max-body-bytes", type=int, default=4 << 20, help="largest body (default 4 MiB)")
    side_help = "image bundles: the widest or tallest image an upload may declare (default 8192 pixels)"
    parser.add_argument("--max-image-side", type=int, help=side_help)
    pixels_help = "image bundles: the most pixels (width x height) an upload may declare (default 4096^2)"
    parser.add_argument("--max-image-pixels", type=int, help=pixels_help)
    parser.add_argument("--token-file", help="file holding the bearer token (else $GAN_JAX_API_TOKEN[_FILE])")
    echo_help = "serve a do-nothing model, not a bundle (load-test the server alone)"
    parser.add_argument("--echo", action="store_true", help=echo_help)
    levels = ["critical", "error", "warning", "info", "debug"]
    parser.add_argument(
        "--log-level", default="info", choices=levels, help="server and uvicorn log level (default info)"
    )


def default_bundle() -> str | None:
    env = os.environ
    return (
        env.get("GAN_JAX_BUNDLE")
        or env.get("AIP_STORAGE_URI")
        or ("/opt/ml/model" if os.path.isdir("/opt/ml/model") else None)
    )


def log_config(level: str) -> dict:
    """uvicorn's logging set-up plus the server's own logger (gan_jax.serve) at `level`, with
    uvicorn's formatter, so start-up information is INFO and problems WARNING or ERROR."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["gan_jax"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def _check_grpc(grpc_port: int, http_port: int, workers: int) -> None:
    if workers != 1:
        raise ValueError("--grpc-port needs --workers 1 (gRPC and HTTP share one data plane per process)")
    if grpc_port == http_port or not 0 < grpc_port < 65536:
        raise ValueError(
            f"--grpc-port must be a free port other than the HTTP port {http_port}, got {grpc_port}"
        )
    try:
        import grpc  # noqa: F401
    except ImportError:
        raise ValueError("--grpc-port needs grpcio: pip install 'gan_jax[grpc]'") from None


def _image_limits(args: argparse.Namespace) -> dict:
    """The image limits given on the command line (the rest keep ImageLimits' defaults), checked."""
    from gan_jax.serve.uploads import ImageLimits

    given = {"max_side": args.max_image_side, "max_pixels": args.max_image_pixels}
    given = {k: v for k, v in given.items() if v is not None}
    if any(v < 1 for v in given.values()):
        raise ValueError("--max-image-side and --max-image-pixels must be >= 1")
    ImageLimits(**given)
    return given


def run(args: argparse.Namespace) -> int:
    import orjson
    import uvicorn

    from gan_jax.serve.app import ENV_SPEC
    from gan_jax.serve.middleware import load_token

    uri = args.bundle or default_bundle()
    if uri is None and not args.echo:
        raise ValueError(
            "no bundle given: pass BUNDLE or set $GAN_JAX_BUNDLE (write one with gan-jax export)"
        )
    if args.max_batch < 1 or args.max_body_bytes < 1 or args.workers < 1:
        raise ValueError("--max-batch, --max-body-bytes and --workers must be >= 1")
    image_limits = _image_limits(args)
    if not args.echo and args.workers > 1:
        from gan_jax.artifacts import bundle

        bundle.load(uri)  # fail here, with a clear message, before any worker starts
    port = args.port or int(os.environ.get("AIP_HTTP_PORT") or os.environ.get("PORT") or 8080)
    if args.grpc_port is not None:
        _check_grpc(args.grpc_port, port, args.workers)
    settings = {
        "token": load_token(args.token_file),
        "max_batch": args.max_batch,
        "max_body_bytes": args.max_body_bytes,
        "grpc_port": args.grpc_port,
        "grpc_host": args.host,
        "image_limits": image_limits,
    }
    spec = {
        "bundle": uri,
        "max_batch": args.max_batch,
        "model_name": args.model_name,
        "echo": args.echo,
        "settings": settings,
    }
    options = {"access_log": False, "log_level": args.log_level, "log_config": log_config(args.log_level)}
    if args.workers > 1:  # every worker process loads the bundle and serves HTTP
        os.environ[ENV_SPEC] = orjson.dumps(spec).decode()  # read by each worker's app factory
        uvicorn.run(
            "gan_jax.serve.app:app_from_env",
            factory=True,
            host=args.host,
            port=port,
            workers=args.workers,
            **options,
        )
        return 0
    import logging.config

    from gan_jax.serve import dataplane, predictor, server

    logging.config.dictConfig(options["log_config"])  # so that loading the bundle is logged too
    settings = dataplane.ServeSettings.from_env(**settings)
    served = predictor.load(
        uri,
        max_batch=args.max_batch,
        name=args.model_name,
        echo=args.echo,
        image_limits=settings.image_limits,
    )
    server.Server(dataplane.DataPlane(served, settings), args.host, port, **options).run()
    return 0
