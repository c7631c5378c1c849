"""REST requests and answers of the Flask test client."""
from __future__ import annotations


def assert_error(response, status: int, code: str) -> dict:
    """A REST error in the one shape: {"error": {"code", "message", "details"?}}."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


def members_url(task: dict, user=None) -> str:
    """The task's members, or one of them."""
    url = f"/api/tasks/{task['id']}/members"
    return f"{url}/{user.id}" if user is not None else url
