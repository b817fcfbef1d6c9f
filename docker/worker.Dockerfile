# syntax=docker/dockerfile:1
# The fuzzorch worker: a dramatiq consumer of the `fuzz` and `triage` queues that runs
# untrusted harness code in a sandbox. Build from the repository root:
#   docker build -f docker/worker.Dockerfile -t fuzzorch/worker .
#
# It runs as root inside the container on purpose: the sandbox creates namespaces and
# mounts with bubblewrap, then switches each harness to its own unprivileged uid (61000 and
# up, picked by the worker itself: no user is created for them). The container therefore
# needs CAP_SYS_ADMIN and unconfined seccomp and AppArmor profiles; see docker/README.md.
FROM python:3.11-slim-bookworm

# git: mirrors and worktrees of the target repositories. bubblewrap: the sandbox's
# namespaces and private filesystem. util-linux: prlimit, setpriv and unshare (already in
# the base image, Essential in Debian; named so the dependency is explicit).
# Target environments are built with this image's `python -m venv` and pip, from wheels;
# a target that must compile C extensions from source needs build-essential added here.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap ca-certificates git util-linux \
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

# FUZZORCH_HOME/worker holds the caches (worktrees, target environments, scratch): the
# harness uids read them, so the top is world-searchable. The uid lock directory is
# root-only, as workers/uidpool.py requires; named volumes mounted on either start as a
# copy of these directories, modes included.
RUN install -d -m 0755 /var/lib/fuzzorch \
    && install -d -m 0700 /run/fuzzorch-harness-uids
WORKDIR /var/lib/fuzzorch

ENTRYPOINT ["fuzzorch"]
CMD ["worker"]
