"""The CLI's HTTP client for ``fuzzorch server`` (``FUZZORCH_SERVER_URL``, ``FUZZORCH_TOKEN``)."""

from __future__ import annotations

import urllib.parse
from typing import Any

import httpx

from orchestrator.errors import ConflictError, FuzzorchError, NotFoundError, UsageError

TIMEOUT_S = 60.0


class ServerError(FuzzorchError):
    """The server could not be reached or failed."""


class Client:
    """Typed calls of the ``/api/v1`` routes the CLI uses."""

    def __init__(self, base_url: str, token: str | None, *, transport: Any = None) -> None:
        if not token:
            raise UsageError("FUZZORCH_SERVER_URL is set, so FUZZORCH_TOKEN must be too")
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_S,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot reach the server at {self.base_url}: {exc}") from exc
        if response.is_success:
            return response.json()
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        shown = detail if isinstance(detail, str) else repr(detail)  # 422: a list of errors
        message = f"{method} {path}: {shown}"
        if response.status_code in (400, 401, 403, 422):
            raise UsageError(message)
        if response.status_code == 404:
            raise NotFoundError(message)
        if response.status_code == 409:
            raise ConflictError(message)
        raise ServerError(f"the server failed ({response.status_code}): {message}")

    def add_repo(self, source: str, name: str | None) -> Any:
        """Register a repository."""
        return self._call("POST", "/api/v1/repos", json={"source": source, "name": name})

    def list_repos(self) -> Any:
        """Every repository."""
        return self._call("GET", "/api/v1/repos")

    def show_repo(self, name: str) -> Any:
        """One repository."""
        return self._call("GET", f"/api/v1/repos/{_part(name)}")

    def policies(self, repo: str) -> Any:
        """A repository's branch policies."""
        return self._call("GET", f"/api/v1/repos/{_part(repo)}/policies")

    def add_policy(self, repo: str, body: dict[str, Any]) -> Any:
        """Add a branch policy."""
        return self._call("POST", f"/api/v1/repos/{_part(repo)}/policies", json=body)

    def remove_policy(self, repo: str, branch: str) -> Any:
        """Remove the branch policy for a glob."""
        return self._call(
            "DELETE", f"/api/v1/repos/{_part(repo)}/policies", params={"branch": branch}
        )

    def new_secret(self, repo: str) -> Any:
        """Generate a repository's webhook secret (shown once)."""
        return self._call("POST", f"/api/v1/repos/{_part(repo)}/secret")

    def crashes(self, params: dict[str, str]) -> Any:
        """Crash groups, filtered."""
        return self._call("GET", "/api/v1/crashes", params=params)

    def crash(self, group_id: str) -> Any:
        """One crash group."""
        return self._call("GET", f"/api/v1/crashes/{_part(group_id)}")

    def crash_status(self, group_id: str, status: str) -> Any:
        """Set a crash group's status."""
        return self._call(
            "POST", f"/api/v1/crashes/{_part(group_id)}/status", json={"status": status}
        )

    def merge(self, into: str, duplicates: list[str]) -> Any:
        """Mark groups as duplicates of ``into``."""
        return self._call(
            "POST", f"/api/v1/crashes/{_part(into)}/merge", json={"duplicates": duplicates}
        )

    def split(self, group_id: str) -> Any:
        """Undo a merge."""
        return self._call("POST", f"/api/v1/crashes/{_part(group_id)}/split")

    def start_campaign(self, body: dict[str, Any]) -> Any:
        """Start a campaign; the answer carries its id."""
        return self._call("POST", "/api/v1/campaigns", json=body)

    def list_campaigns(self, repo: str | None) -> Any:
        """Campaigns, newest first."""
        params = {"repo": repo} if repo else {}
        return self._call("GET", "/api/v1/campaigns", params=params)

    def campaign(self, campaign_id: str) -> Any:
        """A campaign's status and summary."""
        return self._call("GET", f"/api/v1/campaigns/{_part(campaign_id)}")

    def cancel(self, campaign_id: str) -> Any:
        """Cancel a campaign."""
        return self._call("POST", f"/api/v1/campaigns/{_part(campaign_id)}/cancel")


def _part(value: str) -> str:
    """One path segment: a name cannot reach another route."""
    return urllib.parse.quote(value, safe="")
