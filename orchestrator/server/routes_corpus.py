"""Routes: a harness's corpus as a tar, downloaded or uploaded (with limits).

An upload is read into memory up to its size limit and validated whole before a single
unit is stored: a tar with ``..``, absolute paths, links, devices or a decompression bomb is
refused with a message naming the member and the rule.
"""

# No "from __future__ import annotations": FastAPI reads the annotations at runtime.
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from orchestrator.server.auth import Auth
from orchestrator.store import repos
from orchestrator.tarsafe import TarLimits, TarRefused, read_corpus_tar, write_corpus_tar
from workers.corpus import add_units, corpus_prefix

if TYPE_CHECKING:
    from orchestrator.server.app import Services

# One upload is held in memory while it is validated: keep it well below the defaults.
LIMITS = TarLimits(max_archive_bytes=64 * 1024 * 1024, max_total_bytes=256 * 1024 * 1024)
_TOO_LARGE = {"max_archive_bytes", "max_total_bytes", "max_members"}
MAX_DOWNLOAD_UNITS = 200_000


def register(app: FastAPI, services: "Services", auth: Auth) -> None:
    """Add the routes to ``app``."""

    def harness_of(name: str, harness: str) -> str:
        with services.database.transaction() as conn:
            record = repos.get_repo(conn, name)
        if record.head_commit is None:
            raise LookupError(f"repository {name!r} has no head commit yet")
        known = {h.name for h in services.registry.collection(name, record.head_commit).harnesses}
        if harness not in known:
            raise LookupError(f"no harness {harness!r} in {name!r} at its head")
        return corpus_prefix(name, harness)

    @app.get(
        "/api/v1/repos/{name}/corpus", dependencies=[auth.viewer], tags=["corpus"],
        response_class=StreamingResponse,
    )  # fmt: skip
    def download(
        name: str, harness: str = Query(min_length=1, max_length=1024)
    ) -> StreamingResponse:
        """The harness's corpus as an uncompressed tar of ``<sha1>`` files."""
        prefix = harness_of(name, harness)

        def units() -> Iterator[tuple[str, bytes]]:
            for count, key in enumerate(services.objects.iter_keys(prefix)):
                if count >= MAX_DOWNLOAD_UNITS:
                    return
                yield key[len(prefix) :], services.objects.get(key, max_bytes=LIMITS.max_unit_bytes)

        return StreamingResponse(
            write_corpus_tar(units()),
            media_type="application/x-tar",
            headers={"Content-Disposition": 'attachment; filename="corpus.tar"'},
        )

    @app.post("/api/v1/repos/{name}/corpus", dependencies=[auth.admin], tags=["corpus"])
    async def upload(
        name: str, request: Request, harness: str = Query(min_length=1, max_length=1024)
    ) -> dict[str, Any]:
        """Add the files of a tar (plain, gz, bz2 or xz) to the harness's corpus; all or
        nothing."""
        prefix = await run_in_threadpool(harness_of, name, harness)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > LIMITS.max_archive_bytes:
                raise HTTPException(
                    status.HTTP_413_CONTENT_TOO_LARGE,
                    f"the archive is larger than {LIMITS.max_archive_bytes} bytes",
                )
        try:
            units = await run_in_threadpool(read_corpus_tar, io.BytesIO(bytes(body)), LIMITS)
        except TarRefused as exc:
            code = 413 if exc.rule in _TOO_LARGE else status.HTTP_400_BAD_REQUEST
            raise HTTPException(code, str(exc)) from None
        stats = await run_in_threadpool(
            add_units, services.objects, prefix, units, max_unit_bytes=LIMITS.max_unit_bytes
        )
        return {"harness": harness, "added": stats.added, "present": stats.present,
                "skipped": stats.skipped}  # fmt: skip
