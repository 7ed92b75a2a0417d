# The serving image: `gan-jax serve` on port 8080, the port SageMaker, Vertex AI and KServe use,
# and the Open Inference Protocol over gRPC (KServe v2) on 8081. Dependencies come at the exact
# versions of requirements/lock-py3.11.txt (the Python of the base image; scripts/lock.sh).
#
#   docker build -t gan-jax-serve .
#   docker run -p 8080:8080 -p 8081:8081 -v "$PWD/runs/bundle:/opt/ml/model:ro" -e GAN_JAX_API_TOKEN=... gan-jax-serve
#
# SageMaker starts the container as `docker run IMAGE serve` with the model in /opt/ml/model;
# Vertex AI sets AIP_HTTP_PORT, AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE and AIP_STORAGE_URI (gs://);
# KServe passes the bundle folder as an argument (e.g. `serve /mnt/models`). See the README.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY requirements/lock-py3.11.txt ./requirements/
COPY gan_jax ./gan_jax
COPY experiments ./experiments
# The `cloud` extra brings s3fs/gcsfs, so a bundle can be read straight from s3:// or gs://; `grpc`
# brings grpcio for --grpc-port. The lock is a constraint: only what these extras need is
# installed, each at its locked version. CI runs this very line in a fresh venv
# (python -m benchmarks.check_image_install), since base images cannot be pulled there.
RUN pip install --constraint requirements/lock-py3.11.txt ".[cloud,grpc]" \
    && useradd --uid 1000 --create-home --shell /usr/sbin/nologin gan

USER 1000
EXPOSE 8080 8081
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AIP_HTTP_PORT', os.environ.get('PORT', '8080')) + '/v2/health/ready', timeout=2)"]
ENTRYPOINT ["gan-jax"]
# SageMaker's `docker run IMAGE serve` and KServe's arguments replace this: HTTP only there.
CMD ["serve", "--grpc-port", "8081"]
