# syntax=docker/dockerfile:1
# The fuzzorch server: HTTP API and web UI, dispatcher and reconciler, ingest; also the
# image of the one-shot `fuzzorch db upgrade` (compose service `migrate`).
# Build from the repository root:  docker build -f docker/server.Dockerfile -t fuzzorch/server .
#
# The server never imports or runs repository code: it mirrors repositories and reads git
# blobs to discover harnesses, so it needs git and nothing else from the system, and runs
# as an unprivileged user.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FUZZORCH_HOME=/var/lib/fuzzorch

# The project, installed (not editable) from exactly what the wheel needs.
COPY pyproject.toml README.md /src/
COPY orchestrator/ /src/orchestrator/
COPY workers/ /src/workers/
COPY harnesses/ /src/harnesses/
RUN pip install --no-cache-dir --disable-pip-version-check /src \
    && rm -rf /src

# FUZZORCH_HOME holds the git mirrors and the reports; a named volume mounted here starts
# as a copy of this directory, owner included.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/fuzzorch \
        --shell /usr/sbin/nologin fuzzorch \
    && install -d -o fuzzorch -g fuzzorch -m 0750 /var/lib/fuzzorch
USER fuzzorch
WORKDIR /var/lib/fuzzorch

EXPOSE 8000
# GET /health answers 200 without a token once the server serves requests.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=6 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

ENTRYPOINT ["fuzzorch"]
CMD ["server", "--host", "0.0.0.0", "--port", "8000"]
