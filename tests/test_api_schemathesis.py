"""The OpenAPI document against the app, by schemathesis.

schemathesis reads /api/openapi.json from the app, served over HTTP on a loopback port by a
server thread of this process on the suite's database (SQLite, or PostgreSQL when
DATABASE_URL names it); it generates requests for every operation the document lists, valid
and invalid ones, and holds every answer to the document with every check it has: no server
error, status codes, content types and bodies as documented, valid data accepted, invalid
data refused, tokens not ignored, deleted things gone... Its phases run as `schemathesis
run` runs them: the document's examples, the edges of each schema (coverage), fuzzing, then
stateful sequences along the links it infers (POST /api/tasks gives the task_id that the
task's other operations take), so the ids in paths name objects that exist, not only ones
that do not.

Nothing here lists the operations: what the document gains or loses is tested as it is.
Bounded: a fixed seed, a few examples per operation, nothing kept between runs (about a
minute and a half on this suite's machines).

The user is real (registered over REST); each request gets a fresh access token from the
refresh endpoint, since POST /api/auth/logout, generated like any other operation, revokes
the token it is sent with; an operation documented with the refresh token gets that one.

What the document says in words because JSON Schema cannot hold it, the run is told:
- a field marked `x-refers-to` must also name something that exists (a message of the task,
  a member, the user's refresh token...); a request that names nothing is well formed and
  still refused, 422 `validation_error` naming the field (docs/security.md). Such a refusal,
  and only such (every field it names is marked so), is no "valid data rejected". That the
  same fields' documented form is exactly what the server takes is tests/test_api_openapi.py's
  part (test_a_custom_field_accepts_exactly_what_its_documented_schema_allows).
- OpenAPI has no rule across query parameters: "at most one of before, after and around" is
  in the operation's description only, so no request holding two of them is sent as valid.
- an upload's type is read from its file name, which a multipart body's schema cannot
  constrain: its 415 is no "valid data rejected" either (the file's description says so).
"""
from __future__ import annotations

import threading
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, StopReason, events, from_schema
from schemathesis.openapi.checks import RejectedPositiveData
from werkzeug.serving import WSGIRequestHandler, make_server

from app.api.openapi import ACCESS_TOKEN, REFRESH_TOKEN

SEED = 20260101
MAX_EXAMPLES = 10
STATEFUL_STEPS = 10
ANCHORS = ("before", "after", "around")


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


@contextmanager
def serving(app):
    """The app on a loopback port, one thread per request, for the length of the block."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def _config(base_url: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "color": False,
        "base-url": base_url,
        # Nothing kept between runs (hypothesis' example database, schemathesis' cache):
        # each run is the same run.
        "cache": {"enabled": False},
        "generation": {"max-examples": MAX_EXAMPLES, "mode": "all", "database": "none"},
        "phases": {"stateful": {"max-steps": STATEFUL_STEPS}},
        # Every check schemathesis has, each on (the default), said outright.
        "checks": {"enabled": True},
    })


def _tokens(client, user):
    """The access token for the request about to be sent, and the user's refresh token."""

    class Tokens:
        def get(self, case, ctx):
            response = client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {user.refresh_token}"})
            assert response.status_code == 200, response.get_data(as_text=True)
            return {ACCESS_TOKEN: response.get_json()["accessToken"], REFRESH_TOKEN: user.refresh_token}

        def set(self, case, data, ctx):
            # The token the operation's `security` names (else the document's, as OpenAPI
            # reads it); none for an open operation.
            default = case.operation.schema.raw_schema.get("security", [])
            for requirement in case.operation.definition.raw.get("security", default):
                for scheme in requirement:
                    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data[scheme]}"}

    return Tokens


def _referring_fields(document: dict) -> set[str]:
    """The body fields the document marks `x-refers-to`."""
    return {
        name for schema in document["components"]["schemas"].values()
        for name, prop in schema.get("properties", {}).items() if "x-refers-to" in prop
    }


def _teach(schema, referring: set[str]) -> None:
    @schema.hook
    def filter_case(context, case):
        positive = case.meta is None or case.meta.generation.mode.is_positive
        return not (positive and sum(name in (case.query or {}) for name in ANCHORS) > 1)

    @schema.hook
    def filter_failure(context, failure, case, response):
        if not isinstance(failure, RejectedPositiveData):
            return True
        if response.status_code == 415 and (case.media_type or "").startswith("multipart/"):
            return False
        try:
            error = response.json()["error"]
        except Exception:
            return True
        details = error.get("details")
        named_nothing = (
            response.status_code == 422 and error.get("code") == "validation_error"
            and isinstance(details, dict) and details and set(details) <= referring
        )
        return not named_nothing


@dataclass
class Run:
    failures: list[str] = field(default_factory=list)
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    phases: dict[str, Status] = field(default_factory=dict)
    stop: StopReason | None = None
    # Failures `filter_failure` dropped (see `_teach`).
    excused: int = 0


def _run(schema) -> Run:
    run = Run()
    failures, statuses = run.failures, run.statuses
    for event in from_schema(schema).execute():
        if isinstance(event, events.PhaseFinished):
            run.phases[event.phase.name] = event.status
        elif isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            run.excused += sum(recorder.filtered_failures.values())
            for case_id, interaction in recorder.interactions.items():
                if interaction.response is not None and case_id in recorder.cases:
                    label = recorder.cases[case_id].value.operation.label
                    statuses[label][interaction.response.status_code] += 1
            for checks in recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures.append(
                            f"{recorder.label}: {check.name}: {failure.title}\n{failure.message}\n"
                            f"{check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            said = event.info.format() if hasattr(event.info, "format") else repr(event.value)
            failures.append(f"{event.label}: error: {said}")
        elif isinstance(event, events.FatalError):
            failures.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            run.stop = event.stop_reason
    return run


def test_the_app_answers_as_its_document_says(app, client, register):
    user = register("Sam", "Thesis")

    with serving(app) as base_url:
        schema = schemathesis.openapi.from_url(f"{base_url}/api/openapi.json", config=_config(base_url))
        schema.auth(refresh_interval=None)(_tokens(client, user))
        _teach(schema, _referring_fields(schema.raw_schema))
        run = _run(schema)

    summary = "\n".join(f"{label}: {dict(sorted(counts.items()))}" for label, counts in sorted(run.statuses.items()))
    print(f"{summary}\nexcused refusals: {run.excused}")
    assert not run.failures, "\n\n".join(dict.fromkeys(run.failures)) + "\n\nanswers by operation:\n" + summary
    assert run.stop == StopReason.COMPLETED
    assert {run.phases.get(name) for name in ("coverage", "fuzzing", "stateful")} == {Status.SUCCESS}, run.phases
    # It reached objects that exist: most operations on an id were answered 2xx at least once.
    on_ids = {label: counts for label, counts in run.statuses.items() if "{" in label}
    reached = [label for label, counts in on_ids.items() if any(200 <= status < 300 for status in counts)]
    assert len(reached) > len(on_ids) / 2, summary
