"""Schemathesis over every operation of the API's OpenAPI document: no input is a 5xx.

Each operation gets cases that fit the schema and cases that break it, from an admin and from
an anonymous caller, and ``not_a_server_error`` is checked on every answer. Random path
values almost always name nothing, so the store is seeded (a repository with harnesses, a
branch policy, a webhook secret, a campaign, crash groups with testcases, a corpus) and a
share of the cases use those real names, to get past the 404s into the routes' work.

Which operations are fuzzed comes from ``test_api_routes.ROUTES``, the one table of routes
that is itself checked against the app; the test below checks it against the OpenAPI
document too, so no operation is left out. What the document cannot describe gets Hypothesis
tests of its own: the raw bodies and headers of the webhooks (always refused, being unsigned)
and the web UI's pages and forms.

SQLite only: this looks for unhandled input, not for differences between the databases.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import tarfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error

from orchestrator.registry import Registry
from orchestrator.store.crashes import Sighting, record_sighting
from orchestrator.store.database import Database
from tests.integration.test_api_routes import PAGES, PUBLIC, ROUTES, UNDOCUMENTED, WEBHOOKS
from tests.support import fixture_repos
from tests.support.api import Api, running_api
from workers.contract import CrashReport
from workers.git import Git

# The docs and the web UI's pages are outside the document, so schemathesis cannot generate
# cases for them: the pages get a Hypothesis test of their own at the end of this module.
OPERATIONS = sorted(key for key in ROUTES if key not in UNDOCUMENTED)
CALLERS = ("admin", "anonymous")
MAX_EXAMPLES = 25  # per operation, caller and kind of case (generated, or with real names)
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,  # one inner test serves every operation: saved examples would cross over
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
REPO = "mixed"
AnyCase = Case[Any]

# Known server errors, as ``{(method, path, caller): reason}``; each case is a strict xfail.
KNOWN_5XX: dict[tuple[str, str, str], str] = {}


@dataclass
class World:
    """The app, its OpenAPI schema and the real names the store was seeded with."""

    api: Api
    schema: Any  # schemathesis's OpenApiSchema
    path_values: dict[str, list[str]] = field(default_factory=dict)
    query_values: dict[str, list[str]] = field(default_factory=dict)
    bodies: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)


def _crash(signature: str, key: str) -> CrashReport:
    return CrashReport(
        signature=signature, canonical=f"exception|{signature}", kind="exception",
        exception_type="ValueError", message="boom", title=f"ValueError in {signature}",
        frames=("minipkg/parser.py:parse",), stack=(), testcase_key=key, found_after_s=1.0,
    )  # fmt: skip


def _corpus_tar(units: list[bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for number, data in enumerate(units):
            info = tarfile.TarInfo(f"unit-{number}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _seed(api: Api, tmp_path: Path) -> World:
    """Store a repository, policy, secret, campaign, crash groups and corpus; name them."""
    services, admin = api.services, api.auth("admin")
    # The app refuses local sources (as a server does by default), so that a generated source
    # such as "." cannot make it mirror the working tree; the fixture repository is added
    # through a registry that allows them, over the same store and mirrors.
    source = fixture_repos.mixed_tests(tmp_path).path
    local = Registry(
        services.database, services.objects, Git(allow_local=True), tmp_path / "git",
        allow_local=True, clock=time.time,
    )  # fmt: skip
    registration = local.add(str(source), name=REPO)
    commit = registration.repo.head_commit
    assert commit is not None
    harnesses = [h.name for h in registration.collection.harnesses]
    assert harnesses, registration.collection
    for path, body in (("secret", None), ("policies", {"branch": "release/*"})):
        answer = api.client.post(f"/api/v1/repos/{REPO}/{path}", headers=admin, json=body)
        assert answer.status_code in (200, 201), answer.text
    started = api.client.post("/api/v1/campaigns", headers=admin,
                              json={"repo": REPO, "branch": "main", "duration": 30})  # fmt: skip
    assert started.status_code == 201, started.text
    campaign = started.json()["id"]
    groups = []
    with services.database.transaction() as conn:
        for signature in ("sig-a", "sig-b", "sig-c"):
            key = f"crashes/{REPO}/{signature}"
            services.objects.put_if_absent(key, b"a,b,\x00" + signature.encode())
            where = Sighting(repo=REPO, campaign_id=campaign, job_id=None, attempt=None,
                             commit=commit, harness=harnesses[0], found_after_s=1.0,
                             now=time.time())  # fmt: skip
            groups.append(record_sighting(conn, _crash(signature, key), where)[0])
    uploaded = api.client.post(f"/api/v1/repos/{REPO}/corpus", headers=admin,
                               params={"harness": harnesses[0]},
                               content=_corpus_tar([b"a,b", b"c", b""]))  # fmt: skip
    assert uploaded.status_code == 200, uploaded.text
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    return World(
        api=api,
        schema=schema,
        path_values={"name": [REPO], "campaign_id": [campaign], "group_id": groups},
        query_values={
            "harness": harnesses,
            "repo": [REPO],
            "campaign": [campaign],
            "ref": ["main", commit],
            "branch": ["release/*"],
        },
        bodies={
            ("POST", "/api/v1/campaigns"): [
                {"repo": REPO, "branch": "main", "duration": 5, "workers": 1},
                {"repo": REPO, "branch": commit, "fail_on": "new"},
            ],
            ("POST", "/api/v1/crashes/{group_id}/status"): [{"status": "wontfix"}],
            ("POST", "/api/v1/crashes/{group_id}/merge"): [{"duplicates": groups[1:]}],
            ("POST", "/api/v1/repos/{name}/policies"): [{"branch": "feature/**", "workers": 3}],
            ("POST", "/api/v1/session"): [{"token": api.secrets["viewer"]}],
        },
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The seeded app on SQLite, shared by every operation's test."""
    tmp_path = tmp_path_factory.mktemp("schema")
    database = Database.open(f"sqlite:///{tmp_path / 'schema.db'}", upgrade=True)
    with running_api(tmp_path, database, allow_local=False) as api:
        yield _seed(api, tmp_path)
    database.dispose()


def _strategies(world: World, operation: Any) -> list[st.SearchStrategy[AnyCase]]:
    """Cases that fit the schema or break it; fitting cases naming what the store holds; and
    the seeded bodies."""
    # Negative cases alone are impossible for an operation whose only parameter is a free
    # string (nothing breaks its schema), hence one strategy for both kinds.
    generated = st.one_of([operation.as_strategy(mode) for mode in GenerationMode])
    names = [p.name for p in operation.path_parameters]
    known_paths = [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(world.path_values.get(n, []) for n in names))
    ]
    queries = [
        {p.name: value} for p in operation.query for value in world.query_values.get(p.name, [])
    ]
    known = [
        operation.as_strategy(path_parameters=fixed or None, query=query)
        for fixed in known_paths
        for query in [None, *queries]
        if fixed or query
    ]
    bodies = [
        operation.as_strategy(path_parameters=fixed or None, body=body,
                              media_type="application/json")
        for fixed in known_paths[:1]
        for body in world.bodies.get((operation.method.upper(), operation.path), [])
    ]  # fmt: skip
    return (
        [generated]
        + ([st.one_of(known)] if known else [])
        + ([st.one_of(bodies)] if bodies else [])
    )


def _caller_headers(world: World, caller: str) -> dict[str, str]:
    return world.api.auth(caller) if caller != "anonymous" else {}


def _check(world: World, caller: str, method: str, path: str) -> Callable[[AnyCase], None]:
    public = ROUTES[(method, path)] == PUBLIC
    headers = _caller_headers(world, caller)

    def check(case: AnyCase) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error], headers=headers)
        status = response.status_code
        if path in WEBHOOKS:  # never signed here: refused, whatever else was sent
            refused = 400 <= status < 500
        elif not public and caller == "anonymous":
            # Refused before anything is looked up, so never a 404 either.
            refused = 400 <= status < 500 and status != 404
        else:
            refused = True
        if not refused:
            curl = case.as_curl_command(headers=headers)
            raise AssertionError(f"not refused: {curl} -> {status}: {response.text[:300]}")

    return check


def _param(method: str, path: str, caller: str) -> Any:
    reason = KNOWN_5XX.get((method, path, caller))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(method, path, caller, id=f"{caller} {method} {path}", marks=marks)


def test_every_operation_of_the_document_is_fuzzed(world: World) -> None:
    documented = {
        (result.ok().method.upper(), result.ok().path)
        for result in world.schema.get_all_operations()
    }
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize(
    ("method", "path", "caller"),
    [_param(method, path, caller) for caller in CALLERS for method, path in OPERATIONS],
)
def test_no_input_is_a_server_error(world: World, method: str, path: str, caller: str) -> None:
    operation = world.schema[path][method]
    check = _check(world, caller, method, path)
    strategies = _strategies(world, operation)

    # One run per strategy, so that each gets its share of examples: a single one_of would
    # leave the handful of cases with real names to chance.
    for strategy in strategies:

        @SETTINGS
        @given(case=strategy)
        def run(case: AnyCase) -> None:
            check(case)

        run()


def _mostly(valid: st.SearchStrategy[Any], broken: st.SearchStrategy[Any]) -> Any:
    """``valid`` three times in four: a delivery must get past most checks to reach the last."""
    return st.sampled_from([valid, valid, valid, broken]).flatmap(lambda chosen: chosen)


_ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
_DELIVERY = _mostly(st.uuids().map(str), _ASCII)
_URLS = st.sampled_from(["https://example.com/team/mixed.git", "git@example.com:team/mixed.git"])
# Every ref names a branch: a delivery the parser ignores (a tag push, a ping) is answered
# 200 before its signature is checked, the app bug test_api_routes holds as a strict xfail.
_PUSHES = st.fixed_dictionaries({
    "object_kind": _mostly(st.just("push"), st.sampled_from(["tag_push", "note"])),
    "ref": _mostly(st.sampled_from(["refs/heads/main", "refs/heads/release/2.0"]),
                   st.one_of(_ASCII.map("refs/heads/{}".format), st.integers())),
    "after": _mostly(st.sampled_from(["a" * 40, "0" * 40]), _ASCII),
    "deleted": _mostly(st.booleans(), st.integers()),
    "repository": st.fixed_dictionaries({"full_name": st.just("team/mixed")},
                                        optional={"clone_url": _URLS, "html_url": _ASCII}),
    "project": st.fixed_dictionaries({"path_with_namespace": st.just("team/mixed")},
                                     optional={"git_http_url": _URLS, "web_url": _ASCII}),
}).map(lambda payload: json.dumps(payload).encode())  # fmt: skip
_HEX = st.text("0123456789abcdef", min_size=64, max_size=64)
_FORGE_HEADERS = {
    "github": st.fixed_dictionaries(
        {"X-GitHub-Event": st.just("push"), "X-GitHub-Delivery": _DELIVERY},
        optional={"X-Hub-Signature-256": _mostly(_HEX.map("sha256={}".format), _ASCII)},
    ),
    "gitlab": st.fixed_dictionaries(
        {"X-Gitlab-Event": st.just("Push Hook"), "X-Gitlab-Event-UUID": _DELIVERY},
        optional={"X-Gitlab-Token": _ASCII},
    ),
}  # fmt: skip


@pytest.mark.parametrize("forge", sorted(_FORGE_HEADERS))
def test_a_webhook_answers_any_unsigned_delivery_with_a_4xx(world: World, forge: str) -> None:
    # Schemathesis knows nothing of the raw body and headers a webhook reads; these do.
    @settings(SETTINGS, max_examples=150)
    @given(
        headers=_FORGE_HEADERS[forge],
        body=_mostly(_PUSHES, st.binary(max_size=512)),
        repo=_mostly(st.just(REPO), st.sampled_from([None, "nope"])),
    )
    def run(headers: dict[str, str], body: bytes, repo: str | None) -> None:
        params = {"repo": repo} if repo else {}
        answer = world.api.client.post(f"/api/v1/webhooks/{forge}", params=params,
                                       content=body, headers=headers)  # fmt: skip
        assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
        assert answer.json()["detail"]

    run()


_FORMS = ("POST", "/login"), ("POST", "/logout")
_TEXT = st.text(max_size=40)


@pytest.mark.parametrize(("method", "path"), sorted(PAGES | {("GET", "/login"), *_FORMS}))
def test_no_page_or_form_input_is_a_server_error(world: World, method: str, path: str) -> None:
    # The web UI is outside the OpenAPI document: its path values, query and form fields are
    # generated here, from names the store holds and from anything at all.
    client = world.api.client
    known = {**world.path_values, "action": ["status", "merge", "split"]}
    names = re.findall(r"\{(\w+)\}", path)
    fields = st.fixed_dictionaries({}, optional={
        "token": st.one_of(_TEXT, st.just(world.api.secrets["viewer"])),
        "status": st.one_of(st.sampled_from(["open", "wontfix", "fixed"]), _TEXT),
        "duplicate": st.one_of(st.sampled_from(world.path_values["group_id"]), _TEXT),
        "csrf_token": _TEXT,
    })  # fmt: skip

    @settings(SETTINGS, max_examples=40)
    @given(
        values=st.tuples(*(st.one_of(st.sampled_from(known[n]), _TEXT) for n in names)),
        query=st.fixed_dictionaries({}, optional={"notice": _TEXT, "error": _TEXT}),
        form=fields,
        caller=st.sampled_from(["admin", "triager", "viewer", "anonymous"]),
    )
    def run(
        values: tuple[str, ...], query: dict[str, str], form: dict[str, str], caller: str
    ) -> None:
        concrete = path
        for name, value in zip(names, values, strict=True):
            concrete = concrete.replace(f"{{{name}}}", urllib.parse.quote(value, safe=""))
        client.cookies.clear()  # a login in one example must not carry over to the next
        answer = client.request(
            method, concrete, params=query, data=form if method == "POST" else None,
            headers=_caller_headers(world, caller), follow_redirects=False,
        )  # fmt: skip
        assert answer.status_code < 500, (method, concrete, query, form, caller, answer.text)

    try:
        run()
    finally:
        client.cookies.clear()
