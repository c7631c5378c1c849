"""Chat attachments over REST: upload (POST /api/tasks/<id>/attachments), download by members,
sending messages that carry uploads, and the file going with its deleted message."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from app.extensions import db
from app.models import Attachment, utcnow
from toolkit.rest import assert_error
from toolkit.wire import ATTACHMENT_KEYS


# ---- helpers -----------------------------------------------------------------------------------
def download(client, url: str, user):
    return client.get(url, headers=user.headers if user else {})


def stored_files(app) -> list[Path]:
    """Every file in the attachment storage directory (a fresh one per test)."""
    root = Path(app.config["ATTACHMENTS_DIR"])
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# ---- upload ------------------------------------------------------------------------------------
def test_upload_answers_201_with_the_description(app, task, bob, chat):
    response = chat.upload(task, bob, b"line one\nline two\n", "notes.txt")

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
def test_the_type_comes_from_the_extension(task, alice, name, mime_type, chat):
    assert chat.uploaded(task, alice, b"\x89PNG....", name)["mimeType"] == mime_type


def test_the_clients_content_type_is_ignored(task, alice, chat):
    # Claiming text/html for a .txt must not make it text/html, nor a disallowed type allowed.
    response = chat.upload(task, alice, b"<script>", "page.txt", content_type="text/html")
    assert response.get_json()["mimeType"] == "text/plain"
    refused = chat.upload(task, alice, b"MZ", "tool.exe", content_type="text/plain")
    assert_error(refused, 415, "unsupported_media_type")


@pytest.mark.parametrize("name", ["page.html", "tool.exe", "script.js", "image.svg", "no_extension"])
def test_types_not_allowed_are_415_and_leave_no_file(app, task, alice, name, chat):
    assert_error(chat.upload(task, alice, b"content", name), 415, "unsupported_media_type")
    assert stored_files(app) == []


@pytest.mark.parametrize("settings", [{"ATTACHMENT_TYPES": "image/png"}])
def test_allowed_types_come_from_settings(task, alice, settings, chat):
    assert chat.uploaded(task, alice, b"png", "ok.png")["mimeType"] == "image/png"
    assert_error(chat.upload(task, alice, b"text", "no.txt"), 415, "unsupported_media_type")


@pytest.mark.parametrize("settings", [{"ATTACHMENT_MAX_BYTES": "10"}])
def test_size_limit_comes_from_settings(app, task, alice, settings, chat):
    assert chat.uploaded(task, alice, b"x" * 10)["size"] == 10

    assert_error(chat.upload(task, alice, b"x" * 11), 413, "payload_too_large")
    assert_error(chat.upload(task, alice, b"x" * 200_000), 413, "payload_too_large")
    assert len(stored_files(app)) == 1, "the refused uploads left nothing behind"


def test_default_limit_allows_files_bigger_than_a_json_body(task, alice, chat):
    # The app's MAX_CONTENT_LENGTH (1 MiB) is for JSON bodies; uploads have their own limit (10 MiB).
    assert chat.uploaded(task, alice, b"x" * (3 * 1024 * 1024))["size"] == 3 * 1024 * 1024


def test_default_limit_is_10_mib(app, task, alice, chat):
    limit = 10 * 1024 * 1024
    assert chat.uploaded(task, alice, b"x" * limit)["size"] == limit
    assert_error(chat.upload(task, alice, b"x" * (limit + 1)), 413, "payload_too_large")
    assert len(stored_files(app)) == 1


def test_an_empty_file_is_422(app, task, alice, chat):
    assert "file" in assert_error(chat.upload(task, alice, b""), 422, "validation_error")["details"]
    assert stored_files(app) == []


def test_missing_file_field_is_422(task, alice, chat):
    response = chat.upload(task, alice, field="document")
    assert "file" in assert_error(response, 422, "validation_error")["details"]


def test_json_instead_of_multipart_is_422(client, task, alice):
    response = client.post(f"/api/tasks/{task['id']}/attachments", json={"file": "aGVsbG8="}, headers=alice.headers)
    assert_error(response, 422, "validation_error")


def test_viewer_may_not_upload(app, task, alice, carol, add_member, chat):
    add_member(alice, task, carol, "viewer")
    assert_error(chat.upload(task, carol), 403, "forbidden")
    assert stored_files(app) == []


@pytest.mark.parametrize("role", ["commenter", "editor", "owner"])
def test_members_who_may_comment_may_upload(task, alice, carol, add_member, role, chat):
    add_member(alice, task, carol, role)
    assert chat.uploaded(task, carol)["name"] == "notes.txt"


def test_non_member_may_not_upload(app, task, carol, chat):
    not_mine = chat.upload(task, carol)
    missing = chat.upload({"id": task["id"] + 1000}, carol)
    assert_error(not_mine, 403, "forbidden")
    assert not_mine.get_json() == missing.get_json()
    assert stored_files(app) == []


def test_upload_without_token_is_401(app, task, chat):
    assert chat.upload(task, None).status_code == 401
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
    client, app, task, alice, tmp_path, sent_name, shown_name, chat):
    body = chat.uploaded(task, alice, b"payload", sent_name)

    assert body["name"] == shown_name
    root = Path(app.config["ATTACHMENTS_DIR"]).resolve()
    [on_disk] = stored_files(app)
    assert root in on_disk.resolve().parents
    assert [p for p in tmp_path.rglob("*") if p.is_file() and root not in p.resolve().parents] == []
    response = download(client, body["url"], alice)
    assert response.data == b"payload"
    assert "/" not in response.headers["Content-Disposition"] and "\\" not in response.headers["Content-Disposition"]


# ---- download ----------------------------------------------------------------------------------
def test_members_download_the_exact_bytes(client, task, alice, bob, carol, add_member, chat):
    add_member(alice, task, carol, "viewer")
    content = bytes(range(256)) * 40
    body = chat.uploaded(task, bob, content, "blob.zip")

    for user in (alice, bob, carol):  # any member, a viewer too
        response = download(client, body["url"], user)
        assert response.status_code == 200
        assert response.data == content
        assert response.mimetype == "application/zip"
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert "blob.zip" in response.headers["Content-Disposition"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_non_ascii_name_survives_the_download(client, task, alice, chat):
    body = chat.uploaded(task, alice, b"%PDF", "résumé.pdf")
    disposition = download(client, body["url"], alice).headers["Content-Disposition"]
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in disposition


def test_non_member_gets_404_like_for_a_missing_file(client, task, alice, carol, chat):
    body = chat.uploaded(task, alice)

    not_mine = download(client, body["url"], carol)
    missing = download(client, f"/api/tasks/{task['id']}/attachments/{body['id'] + 100}", alice)

    assert_error(not_mine, 404, "not_found")
    assert_error(missing, 404, "not_found")
    assert not_mine.get_json() == missing.get_json()


def test_a_removed_member_can_no_longer_download(client, task, alice, bob, chat):
    body = chat.uploaded(task, alice)
    assert client.delete(f"/api/tasks/{task['id']}/members/{bob.id}", headers=alice.headers).status_code in (200, 204)
    assert_error(download(client, body["url"], bob), 404, "not_found")


def test_a_file_is_only_found_under_its_own_task(client, task, make_task, alice, chat):
    other = make_task(alice, "Other")
    body = chat.uploaded(other, alice)

    response = download(client, f"/api/tasks/{task['id']}/attachments/{body['id']}", alice)

    assert_error(response, 404, "not_found")


def test_download_without_token_is_401(client, task, alice, chat):
    body = chat.uploaded(task, alice)
    assert download(client, body["url"], None).status_code == 401


# ---- sending with attachments ------------------------------------------------------------------
def test_message_carries_the_full_attachment_objects(client, task, alice, bob, chat):
    first = chat.uploaded(task, bob, b"one", "one.txt")
    second = chat.uploaded(task, bob, b"%PDF-1.4", "two.pdf")

    message = chat.sent(task, bob, "see attached", attachments=[second["id"], str(first["id"])])

    assert message["attachments"] == [second, first]
    assert chat.history(task, alice, after=0)["items"][0]["attachments"] == [second, first]
    for item in message["attachments"]:
        assert download(client, item["url"], alice).status_code == 200


def test_up_to_ten_attachments_per_message(task, alice, chat):
    ids = [chat.uploaded(task, alice, f"{i}".encode(), f"f{i}.txt")["id"] for i in range(11)]

    response = chat.send(task, alice, "see attached", attachments=ids)
    assert "attachments" in assert_error(response, 422, "validation_error")["details"]
    assert chat.history(task, alice, after=0)["items"] == []
    assert [a["id"] for a in chat.sent(task, alice, "see attached", attachments=ids[:10])["attachments"]] == ids[:10]


def test_the_same_id_twice_attaches_the_file_once(task, alice, chat):
    file = chat.uploaded(task, alice)
    assert chat.sent(task, alice, "see attached", attachments=[file["id"], file["id"]])["attachments"] == [file]


@pytest.mark.parametrize("case", ["another user's", "another task's", "already sent", "unknown"])
def test_unusable_uploads_are_422_and_send_nothing(task, make_task, alice, bob, case, chat):
    if case == "another user's":
        file_id = chat.uploaded(task, bob)["id"]
    elif case == "another task's":
        file_id = chat.uploaded(make_task(alice, "Other"), alice)["id"]
    elif case == "already sent":
        file_id = chat.uploaded(task, alice)["id"]
        chat.sent(task, alice, "first use", attachments=[file_id])
    else:
        file_id = 987654
    good = chat.uploaded(task, alice, b"fine", "fine.txt")
    before = chat.history(task, alice, after=0)["items"]

    response = chat.send(task, alice, "see attached", attachments=[good["id"], file_id])

    assert "attachments" in assert_error(response, 422, "validation_error")["details"]
    assert chat.history(task, alice, after=0)["items"] == before
    # The refused send took nothing: the good upload is still free to use.
    assert chat.sent(task, alice, "see attached", attachments=[good["id"]])["attachments"] == [good]


@pytest.mark.parametrize("attachments", ["file", [True], [0], [-1], [{"url": "https://example.com/x.png"}], [1.5]])
def test_attachments_must_be_a_list_of_upload_ids(task, alice, attachments, chat):
    response = chat.send(task, alice, "see attached", attachments=attachments)
    assert "attachments" in assert_error(response, 422, "validation_error")["details"]


def test_editing_a_message_keeps_its_files(client, task, alice, chat):
    file = chat.uploaded(task, alice, b"kept")
    message = chat.sent(task, alice, "see attached", attachments=[file["id"]])

    response = client.patch(f"/api/tasks/{task['id']}/messages/{message['id']}", json={"message": "reworded"},
                            headers=alice.headers)

    assert response.get_json()["attachments"] == [file]
    assert download(client, file["url"], alice).data == b"kept"


@pytest.mark.parametrize("deleter", ["author", "owner"])
def test_deleting_the_message_removes_its_files(client, app, task, alice, bob, deleter, chat):
    files = [chat.uploaded(task, bob, b"gone", "a.txt"), chat.uploaded(task, bob, b"gone too", "b.txt")]
    keep = chat.uploaded(task, bob, b"unsent, stays", "c.txt")
    message = chat.sent(task, bob, "see attached", attachments=[f["id"] for f in files])

    response = client.delete(f"/api/tasks/{task['id']}/messages/{message['id']}",
                             headers=(bob if deleter == "author" else alice).headers)

    assert response.status_code == 200
    assert response.get_json()["attachments"] == []
    for file in files:
        assert_error(download(client, file["url"], bob), 404, "not_found")
    assert chat.history(task, alice, after=0)["items"][0]["attachments"] == []
    assert [p.read_bytes() for p in stored_files(app)] == [b"unsent, stays"]
    assert download(client, keep["url"], bob).data == b"unsent, stays"


def test_deleting_the_task_removes_its_files(client, app, task, make_task, alice, bob, chat):
    other = make_task(alice, "Other task")
    chat.sent(task, bob, "see attached", attachments=[chat.uploaded(task, bob, b"sent", "a.txt")["id"]])
    chat.uploaded(task, bob, b"unsent", "b.txt")
    survivor = chat.uploaded(other, alice, b"another task's", "c.txt")

    assert client.delete(f"/api/tasks/{task['id']}", headers=alice.headers).status_code == 204

    assert [p.read_bytes() for p in stored_files(app)] == [b"another task's"]
    assert download(client, survivor["url"], alice).data == b"another task's"


def test_purge_uploads_deletes_only_old_unsent_files(client, app, task, alice, bob, chat):
    chat.sent(task, bob, "see attached", attachments=[chat.uploaded(task, bob, b"sent long ago", "a.txt")["id"]])
    stale = chat.uploaded(task, bob, b"never sent", "b.txt")
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
