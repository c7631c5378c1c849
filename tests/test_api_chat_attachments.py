"""Chat attachments over REST: upload (POST /api/tasks/<id>/attachments), download by members,
sending messages that carry uploads, and the file going with its deleted message."""
from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from app.extensions import db
from app.models import Attachment, utcnow
from toolkit.rest import assert_error

ATTACHMENT_KEYS = {"id", "name", "size", "mimeType", "url"}


# ---- helpers -----------------------------------------------------------------------------------
def upload(client, task: dict, user, content: bytes = b"hello file", name: str = "notes.txt",
           content_type: str | None = None, field: str = "file"):
    data = {field: (io.BytesIO(content), name, content_type) if content_type else (io.BytesIO(content), name)}
    headers = user.headers if user else {}
    return client.post(f"/api/tasks/{task['id']}/attachments", data=data, headers=headers,
                       content_type="multipart/form-data")


def uploaded(client, task: dict, user, content: bytes = b"hello file", name: str = "notes.txt") -> dict:
    response = upload(client, task, user, content, name)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def download(client, url: str, user):
    return client.get(url, headers=user.headers if user else {})


def post_message(client, task: dict, user, attachments, text: str = "see attached"):
    return client.post(f"/api/tasks/{task['id']}/messages", json={"message": text, "attachments": attachments},
                       headers=user.headers)


def sent(client, task: dict, user, attachments, text: str = "see attached") -> dict:
    response = post_message(client, task, user, attachments, text)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def messages(client, task: dict, user) -> list[dict]:
    response = client.get(f"/api/tasks/{task['id']}/messages", query_string={"after": 0}, headers=user.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def stored_files(app) -> list[Path]:
    """Every file in the attachment storage directory (a fresh one per test)."""
    root = Path(app.config["ATTACHMENTS_DIR"])
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# ---- upload ------------------------------------------------------------------------------------
def test_upload_answers_201_with_the_description(client, app, task, bob):
    response = upload(client, task, bob, b"line one\nline two\n", "notes.txt")

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == ATTACHMENT_KEYS
    assert type(body["id"]) is int
    assert (body["name"], body["size"], body["mimeType"]) == ("notes.txt", 18, "text/plain")
    assert body["url"] == f"/api/tasks/{task['id']}/attachments/{body['id']}"
    assert "token" not in body["url"].lower() and "?" not in body["url"], "the url carries no credential"
    [on_disk] = stored_files(app)
    assert on_disk.read_bytes() == b"line one\nline two\n"
    assert on_disk.name != "notes.txt", "stored under a generated name"


@pytest.mark.parametrize(
    "name, mime_type",
    [("photo.PNG", "image/png"), ("scan.pdf", "application/pdf"), ("data.csv", "text/csv"), ("a.jpeg", "image/jpeg")],
)
def test_the_type_comes_from_the_extension(client, task, alice, name, mime_type):
    assert uploaded(client, task, alice, b"\x89PNG....", name)["mimeType"] == mime_type


def test_the_clients_content_type_is_ignored(client, task, alice):
    # Claiming text/html for a .txt must not make it text/html, nor a disallowed type allowed.
    response = upload(client, task, alice, b"<script>", "page.txt", content_type="text/html")
    assert response.get_json()["mimeType"] == "text/plain"
    refused = upload(client, task, alice, b"MZ", "tool.exe", content_type="text/plain")
    assert_error(refused, 415, "unsupported_media_type")


@pytest.mark.parametrize("name", ["page.html", "tool.exe", "script.js", "image.svg", "no_extension"])
def test_types_not_allowed_are_415_and_leave_no_file(client, app, task, alice, name):
    assert_error(upload(client, task, alice, b"content", name), 415, "unsupported_media_type")
    assert stored_files(app) == []


@pytest.mark.parametrize("settings", [{"ATTACHMENT_TYPES": "image/png"}])
def test_allowed_types_come_from_settings(client, task, alice, settings):
    assert uploaded(client, task, alice, b"png", "ok.png")["mimeType"] == "image/png"
    assert_error(upload(client, task, alice, b"text", "no.txt"), 415, "unsupported_media_type")


@pytest.mark.parametrize("settings", [{"ATTACHMENT_MAX_BYTES": "10"}])
def test_size_limit_comes_from_settings(client, app, task, alice, settings):
    assert uploaded(client, task, alice, b"x" * 10)["size"] == 10

    assert_error(upload(client, task, alice, b"x" * 11), 413, "payload_too_large")
    assert_error(upload(client, task, alice, b"x" * 200_000), 413, "payload_too_large")
    assert len(stored_files(app)) == 1, "the refused uploads left nothing behind"


def test_default_limit_allows_files_bigger_than_a_json_body(client, task, alice):
    # The app's MAX_CONTENT_LENGTH (1 MiB) is for JSON bodies; uploads have their own limit (10 MiB).
    assert uploaded(client, task, alice, b"x" * (3 * 1024 * 1024))["size"] == 3 * 1024 * 1024


def test_default_limit_is_10_mib(client, app, task, alice):
    limit = 10 * 1024 * 1024
    assert uploaded(client, task, alice, b"x" * limit)["size"] == limit
    assert_error(upload(client, task, alice, b"x" * (limit + 1)), 413, "payload_too_large")
    assert len(stored_files(app)) == 1


def test_an_empty_file_is_422(client, app, task, alice):
    assert "file" in assert_error(upload(client, task, alice, b""), 422, "validation_error")["details"]
    assert stored_files(app) == []


def test_missing_file_field_is_422(client, task, alice):
    response = upload(client, task, alice, field="document")
    assert "file" in assert_error(response, 422, "validation_error")["details"]


def test_json_instead_of_multipart_is_422(client, task, alice):
    response = client.post(f"/api/tasks/{task['id']}/attachments", json={"file": "aGVsbG8="}, headers=alice.headers)
    assert_error(response, 422, "validation_error")


def test_viewer_may_not_upload(client, app, task, alice, carol, add_member):
    add_member(alice, task, carol, "viewer")
    assert_error(upload(client, task, carol), 403, "forbidden")
    assert stored_files(app) == []


@pytest.mark.parametrize("role", ["commenter", "editor", "owner"])
def test_members_who_may_comment_may_upload(client, task, alice, carol, add_member, role):
    add_member(alice, task, carol, role)
    assert uploaded(client, task, carol)["name"] == "notes.txt"


def test_non_member_may_not_upload(client, app, task, carol):
    not_mine = upload(client, task, carol)
    missing = upload(client, {"id": task["id"] + 1000}, carol)
    assert_error(not_mine, 403, "forbidden")
    assert not_mine.get_json() == missing.get_json()
    assert stored_files(app) == []


def test_upload_without_token_is_401(client, app, task):
    assert upload(client, task, None).status_code == 401
    assert stored_files(app) == []


# Backslash paths cannot be tested here: werkzeug's multipart parser already reads `\` in the
# quoted filename as an escape, so C:\a\b.txt arrives as C:ab.txt.
@pytest.mark.parametrize(
    "sent_name, shown_name",
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("/absolute/path/report.pdf", "report.pdf"),
        ("bad\x00\x01name.txt", "badname.txt"),
        (".hidden.txt", "hidden.txt"),
    ],
)
def test_path_names_are_kept_as_a_plain_name_inside_the_storage(
    client, app, task, alice, tmp_path, sent_name, shown_name,
):
    body = uploaded(client, task, alice, b"payload", sent_name)

    assert body["name"] == shown_name
    root = Path(app.config["ATTACHMENTS_DIR"]).resolve()
    [on_disk] = stored_files(app)
    assert root in on_disk.resolve().parents
    assert [p for p in tmp_path.rglob("*") if p.is_file() and root not in p.resolve().parents] == []
    response = download(client, body["url"], alice)
    assert response.data == b"payload"
    assert "/" not in response.headers["Content-Disposition"] and "\\" not in response.headers["Content-Disposition"]


# ---- download ----------------------------------------------------------------------------------
def test_members_download_the_exact_bytes(client, task, alice, bob, carol, add_member):
    add_member(alice, task, carol, "viewer")
    content = bytes(range(256)) * 40
    body = uploaded(client, task, bob, content, "blob.zip")

    for user in (alice, bob, carol):  # any member, a viewer too
        response = download(client, body["url"], user)
        assert response.status_code == 200
        assert response.data == content
        assert response.mimetype == "application/zip"
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert "blob.zip" in response.headers["Content-Disposition"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_non_ascii_name_survives_the_download(client, task, alice):
    body = uploaded(client, task, alice, b"%PDF", "résumé.pdf")
    disposition = download(client, body["url"], alice).headers["Content-Disposition"]
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in disposition


def test_non_member_gets_404_like_for_a_missing_file(client, task, alice, carol):
    body = uploaded(client, task, alice)

    not_mine = download(client, body["url"], carol)
    missing = download(client, f"/api/tasks/{task['id']}/attachments/{body['id'] + 100}", alice)

    assert_error(not_mine, 404, "not_found")
    assert_error(missing, 404, "not_found")
    assert not_mine.get_json() == missing.get_json()


def test_a_removed_member_can_no_longer_download(client, task, alice, bob):
    body = uploaded(client, task, alice)
    assert client.delete(f"/api/tasks/{task['id']}/members/{bob.id}", headers=alice.headers).status_code in (200, 204)
    assert_error(download(client, body["url"], bob), 404, "not_found")


def test_a_file_is_only_found_under_its_own_task(client, task, make_task, alice):
    other = make_task(alice, "Other")
    body = uploaded(client, other, alice)

    response = download(client, f"/api/tasks/{task['id']}/attachments/{body['id']}", alice)

    assert_error(response, 404, "not_found")


def test_download_without_token_is_401(client, task, alice):
    body = uploaded(client, task, alice)
    assert download(client, body["url"], None).status_code == 401


# ---- sending with attachments ------------------------------------------------------------------
def test_message_carries_the_full_attachment_objects(client, task, alice, bob):
    first = uploaded(client, task, bob, b"one", "one.txt")
    second = uploaded(client, task, bob, b"%PDF-1.4", "two.pdf")

    message = sent(client, task, bob, [second["id"], str(first["id"])])

    assert message["attachments"] == [second, first]
    assert messages(client, task, alice)[0]["attachments"] == [second, first]
    for item in message["attachments"]:
        assert download(client, item["url"], alice).status_code == 200


def test_up_to_ten_attachments_per_message(client, task, alice):
    ids = [uploaded(client, task, alice, f"{i}".encode(), f"f{i}.txt")["id"] for i in range(11)]

    assert "attachments" in assert_error(post_message(client, task, alice, ids), 422, "validation_error")["details"]
    assert messages(client, task, alice) == []
    assert [a["id"] for a in sent(client, task, alice, ids[:10])["attachments"]] == ids[:10]


def test_the_same_id_twice_attaches_the_file_once(client, task, alice):
    file = uploaded(client, task, alice)
    assert sent(client, task, alice, [file["id"], file["id"]])["attachments"] == [file]


@pytest.mark.parametrize("case", ["another user's", "another task's", "already sent", "unknown"])
def test_unusable_uploads_are_422_and_send_nothing(client, task, make_task, alice, bob, case):
    if case == "another user's":
        file_id = uploaded(client, task, bob)["id"]
    elif case == "another task's":
        file_id = uploaded(client, make_task(alice, "Other"), alice)["id"]
    elif case == "already sent":
        file_id = uploaded(client, task, alice)["id"]
        sent(client, task, alice, [file_id], "first use")
    else:
        file_id = 987654
    good = uploaded(client, task, alice, b"fine", "fine.txt")
    before = messages(client, task, alice)

    response = post_message(client, task, alice, [good["id"], file_id])

    assert "attachments" in assert_error(response, 422, "validation_error")["details"]
    assert messages(client, task, alice) == before
    # The refused send took nothing: the good upload is still free to use.
    assert sent(client, task, alice, [good["id"]])["attachments"] == [good]


@pytest.mark.parametrize("attachments", ["file", [True], [0], [-1], [{"url": "https://example.com/x.png"}], [1.5]])
def test_attachments_must_be_a_list_of_upload_ids(client, task, alice, attachments):
    response = post_message(client, task, alice, attachments)
    assert "attachments" in assert_error(response, 422, "validation_error")["details"]


def test_editing_a_message_keeps_its_files(client, task, alice):
    file = uploaded(client, task, alice, b"kept")
    message = sent(client, task, alice, [file["id"]])

    response = client.patch(f"/api/tasks/{task['id']}/messages/{message['id']}", json={"message": "reworded"},
                            headers=alice.headers)

    assert response.get_json()["attachments"] == [file]
    assert download(client, file["url"], alice).data == b"kept"


@pytest.mark.parametrize("deleter", ["author", "owner"])
def test_deleting_the_message_removes_its_files(client, app, task, alice, bob, deleter):
    files = [uploaded(client, task, bob, b"gone", "a.txt"), uploaded(client, task, bob, b"gone too", "b.txt")]
    keep = uploaded(client, task, bob, b"unsent, stays", "c.txt")
    message = sent(client, task, bob, [f["id"] for f in files])

    response = client.delete(f"/api/tasks/{task['id']}/messages/{message['id']}",
                             headers=(bob if deleter == "author" else alice).headers)

    assert response.status_code == 200
    assert response.get_json()["attachments"] == []
    for file in files:
        assert_error(download(client, file["url"], bob), 404, "not_found")
    assert messages(client, task, alice)[0]["attachments"] == []
    assert [p.read_bytes() for p in stored_files(app)] == [b"unsent, stays"]
    assert download(client, keep["url"], bob).data == b"unsent, stays"


def test_deleting_the_task_removes_its_files(client, app, task, make_task, alice, bob):
    other = make_task(alice, "Other task")
    sent(client, task, bob, [uploaded(client, task, bob, b"sent", "a.txt")["id"]])
    uploaded(client, task, bob, b"unsent", "b.txt")
    survivor = uploaded(client, other, alice, b"another task's", "c.txt")

    assert client.delete(f"/api/tasks/{task['id']}", headers=alice.headers).status_code == 204

    assert [p.read_bytes() for p in stored_files(app)] == [b"another task's"]
    assert download(client, survivor["url"], alice).data == b"another task's"


def test_purge_uploads_deletes_only_old_unsent_files(client, app, task, alice, bob):
    sent(client, task, bob, [uploaded(client, task, bob, b"sent long ago", "a.txt")["id"]])
    stale = uploaded(client, task, bob, b"never sent", "b.txt")
    runner = app.test_cli_runner()

    kept = runner.invoke(args=["purge-uploads", "--older-than", "1h"])
    assert (kept.exit_code, kept.output) == (0, "deleted 0 unsent uploads\n")

    with app.app_context():  # age the uploads by two hours
        db.session.execute(update(Attachment).values(created_at=utcnow() - timedelta(hours=2)))
        db.session.commit()
    purged = runner.invoke(args=["purge-uploads", "--older-than", "1h"])

    assert (purged.exit_code, purged.output) == (0, "deleted 1 unsent uploads\n")
    assert [p.read_bytes() for p in stored_files(app)] == [b"sent long ago"]
    assert_error(download(client, stale["url"], bob), 404, "not_found")


def test_purge_uploads_refuses_a_malformed_age(app):
    result = app.test_cli_runner().invoke(args=["purge-uploads", "--older-than", "soon"])
    assert result.exit_code == 2 and "not a duration" in result.output
