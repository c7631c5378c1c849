"""REST: the one error shape, what unknown routes, wrong methods, bad bodies and big
bodies get, /health, and the OpenAPI document."""
from __future__ import annotations

import json

import pytest

from app import create_app

from toolkit.rest import assert_error
from toolkit.wire import MAX_ID


# ---- the error shape -------------------------------------------------------------
def test_every_error_has_code_and_message_and_details_only_when_useful(client, alice):
    validation = assert_error(client.post("/api/tasks", json={}, headers=alice.headers), 422, "validation_error")
    forbidden = assert_error(client.get("/api/tasks/1", headers=alice.headers), 403, "forbidden")

    assert validation["details"] == {"title": ["Missing data for required field."]}
    assert "details" not in forbidden


# ---- unknown routes and wrong methods ------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/nope", "/api", "/api/nope", "/api/tasks/1/nope", "/api/auth", "/api/tasks/abc", "/api/tasks/1/members/x"]
)
def test_unknown_route_is_404_not_found(client, path):
    assert_error(client.get(path), 404, "not_found")


def test_unknown_route_is_404_even_with_a_token(client, alice):
    assert_error(client.post("/api/nothing-here", json={}, headers=alice.headers), 404, "not_found")


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("put", "/api/tasks", {"GET", "POST"}),
        ("delete", "/api/tasks", {"GET", "POST"}),
        ("put", "/api/tasks/1", {"GET", "PATCH", "DELETE"}),
        ("get", "/api/auth/login", {"POST"}),
        ("get", "/api/auth/register", {"POST"}),
        ("post", "/api/auth/me", {"GET"}),
        ("delete", "/api/tasks/1/members", {"GET", "POST"}),
        ("get", "/api/tasks/1/members/2", {"PATCH", "DELETE"}),
        ("delete", "/api/tasks/1/messages", {"GET", "POST"}),
        ("post", "/api/tasks/1/activity", {"GET"}),
        ("post", "/health", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow_header(client, method, path, allowed):
    response = getattr(client, method)(path)
    assert_error(response, 405, "method_not_allowed")
    assert allowed <= {m.strip() for m in response.headers.get("Allow", "").split(",")}


# ---- ids in the URL ---------------------------------------------------------------
@pytest.mark.parametrize("task_id", [0, MAX_ID + 1, 9999999999, 99999999999, 10**30, "01", "-1", "1.5"])
@pytest.mark.parametrize(
    "method, suffix",
    [("get", ""), ("patch", ""), ("delete", ""), ("get", "/members"), ("post", "/members"),
     ("get", "/messages"), ("post", "/messages"), ("get", "/activity")],
)
def test_task_ids_a_database_cannot_hold_are_404_for_every_method(client, alice, task_id, method, suffix):
    response = getattr(client, method)(f"/api/tasks/{task_id}{suffix}", json={}, headers=alice.headers)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("task_id", [1, 999999999, 1000000000, 1999999999, 2147483639, MAX_ID])
def test_task_ids_in_range_reach_the_service(client, alice, task_id):
    # No such task, so the answer is the service's 403, not the router's 404.
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(f"/api/tasks/{task_id}", json={"title": "x"}, headers=alice.headers)
        assert_error(response, 403, "forbidden")


@pytest.mark.parametrize("user_id", [0, MAX_ID + 1, 99999999999])
@pytest.mark.parametrize("method", ["patch", "delete"])
def test_member_ids_a_database_cannot_hold_are_404(client, task, alice, method, user_id):
    response = getattr(client, method)(f"/api/tasks/{task['id']}/members/{user_id}", json={"role": "viewer"},
                                       headers=alice.headers)
    assert_error(response, 404, "not_found")


# ---- bodies ----------------------------------------------------------------------
@pytest.mark.parametrize("body", ['{"title": ', "not json", "{'title': 'single quotes'}", "\xff\xfe"])
def test_malformed_json_is_400_bad_request(client, alice, body):
    response = client.post("/api/tasks", data=body, content_type="application/json", headers=alice.headers)
    assert_error(response, 400, "bad_request")
    assert client.get("/api/tasks", headers=alice.headers).get_json()["items"] == []


def test_malformed_json_on_an_open_route_is_400(client):
    response = client.post("/api/auth/register", data="{", content_type="application/json")
    assert_error(response, 400, "bad_request")


def test_a_body_that_is_not_json_is_read_as_missing_fields(client, alice):
    response = client.post("/api/tasks", data={"title": "form"}, headers=alice.headers)
    error = assert_error(response, 422, "validation_error")
    assert "title" in error["details"]


def test_body_over_max_content_length_is_413(app, client, alice):
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = json.dumps({"title": "big", "description": "x" * limit})

    response = client.post("/api/tasks", data=body, content_type="application/json", headers=alice.headers)

    assert_error(response, 413, "payload_too_large")
    assert client.get("/api/tasks", headers=alice.headers).get_json()["items"] == []


def test_body_over_max_content_length_is_413_on_an_open_route(app, client):
    body = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post("/api/auth/register", data=body, content_type="application/json")
    assert_error(response, 413, "payload_too_large")


# ---- /health ---------------------------------------------------------------------
def test_health_is_200_when_the_database_answers(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    "database_url",
    ["sqlite:////nonexistent-dir/taskchat/x.db", "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2"],
)
def test_health_is_503_when_the_database_cannot_be_reached(database_url):
    app = create_app(env={"APP_ENV": "testing", "DATABASE_URL": database_url, "JWT_SECRET_KEY": "k" * 40})

    response = app.test_client().get("/health")

    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] != "ok"
    assert body["database"] != "ok"


# ---- the OpenAPI document --------------------------------------------------------
def test_openapi_document_lists_every_route(client):
    response = client.get("/api/openapi.json")

    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    operations = {(path, method) for path, item in doc["paths"].items() for method in item if method != "parameters"}
    assert operations >= {
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/refresh", "post"),
        ("/api/auth/me", "get"),
        ("/api/tasks", "get"),
        ("/api/tasks", "post"),
        ("/api/tasks/{task_id}", "get"),
        ("/api/tasks/{task_id}", "patch"),
        ("/api/tasks/{task_id}", "delete"),
        ("/api/tasks/{task_id}/members", "get"),
        ("/api/tasks/{task_id}/members", "post"),
        ("/api/tasks/{task_id}/members/{user_id}", "patch"),
        ("/api/tasks/{task_id}/members/{user_id}", "delete"),
        ("/api/tasks/{task_id}/messages", "get"),
        ("/api/tasks/{task_id}/messages", "post"),
        ("/api/tasks/{task_id}/activity", "get"),
    }


def test_openapi_document_describes_ids_and_bodies_from_the_schemas(client):
    doc = client.get("/api/openapi.json").get_json()

    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/tasks/{task_id}/members/{user_id}"]["parameters"]}
    assert params["task_id"]["type"] == params["user_id"]["type"] == "integer"
    assert params["task_id"]["minimum"] == 1 and params["task_id"]["maximum"] == MAX_ID
    schemas = doc["components"]["schemas"]
    assert {"email", "password", "firstName", "lastName"} <= set(schemas["RegisterIn"]["properties"])
    assert schemas["TaskCreateIn"]["properties"]["status"]["enum"] == ["todo", "in_progress", "done"]
    limit = next(p for p in doc["paths"]["/api/tasks/{task_id}/messages"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 100


# ---- ids are JSON integers everywhere ----------------------------------------------
def _ids(value, key=""):
    """Every (key, value) pair in a JSON document whose key names an id."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _ids(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _ids(v, key)
    elif key == "id" or key.endswith("Id") or key in ("createdBy", "replyTo"):
        yield key, value


def test_ids_are_json_integers_in_every_answer(client, task, alice, bob):
    base = f"/api/tasks/{task['id']}"
    first = client.post(f"{base}/messages", json={"message": "one"}, headers=alice.headers).get_json()
    client.post(f"{base}/messages", json={"message": "two", "replyTo": str(first["id"])}, headers=bob.headers)
    answers = [
        client.post("/api/auth/login", json={"email": alice.email, "password": alice.password}).get_json(),
        client.get("/api/auth/me", headers=alice.headers).get_json(),
        client.get("/api/tasks", headers=alice.headers).get_json(),
        client.get(base, headers=alice.headers).get_json(),
        client.patch(base, json={"status": "done"}, headers=alice.headers).get_json(),
        client.get(f"{base}/members", headers=alice.headers).get_json(),
        client.get(f"{base}/messages", headers=alice.headers).get_json(),
        client.get(f"{base}/activity", headers=alice.headers).get_json(),
    ]

    found = [pair for answer in answers for pair in _ids(answer)]

    assert {key for key, _ in found} >= {"id", "taskId", "userId", "createdBy", "replyTo", "entityId"}
    bad = [(key, value) for key, value in found if value is not None and type(value) is not int]
    assert bad == []
    assert any(key == "replyTo" and value == first["id"] for key, value in found)
