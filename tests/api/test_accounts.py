"""/accounts: create, update, read, list, delete; maxJobs rules; passwords never echoed."""

from __future__ import annotations

from tests.harness import LiveServer


def test_create_update_read_and_delete_an_account(server: LiveServer) -> None:
    api = server.api
    resp = server.client.post(
        f"{api}/accounts/me@x.com", json={"email": "me@x.com", "password": "pw", "maxJobs": 5}
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["email"] == "me@x.com" and body["maxJobs"] == 5
    assert "password" not in body and "pw" not in resp.text
    updated = server.client.post(f"{api}/accounts/me@x.com", data={"maxJobs": "2"}).json()
    assert updated["maxJobs"] == 2
    assert server.client.get(f"{api}/accounts/me@x.com").json()["maxJobs"] == 2
    assert set(server.client.get(f"{api}/accounts").json()) == {
        "default@vidmorph.local",
        "me@x.com",
    }
    assert server.client.delete(f"{api}/accounts/me@x.com").status_code == 204
    gone = server.client.get(f"{api}/accounts/me@x.com")
    assert gone.status_code == 404 and "Configuration not found" in gone.json()["error"]
    assert server.client.delete(f"{api}/accounts/me@x.com").status_code == 404


def test_account_validation_errors_are_400(server: LiveServer) -> None:
    api = server.api
    cases = [
        ("new@x.com", {"password": "x"}),  # maxJobs required on create
        ("new@x.com", {"maxJobs": 11}),
        ("new@x.com", {"maxJobs": 0}),
        ("new@x.com", {"email": "other@x.com", "maxJobs": 1}),
        ("not-an-email", {"maxJobs": 1}),
        ("new@x.com", {"maxJobs": 1, "plan": "gold"}),
    ]
    for email, body in cases:
        resp = server.client.post(f"{api}/accounts/{email}", json=body)
        assert resp.status_code == 400, (email, body, resp.text)
        assert resp.json()["code"] == 400 and resp.json()["error"]


def test_features_report_plan_credits(server: LiveServer) -> None:
    body = server.client.get(f"{server.api}/features/").json()
    assert body["permitted"]["numPlanCredits"] == 100_000
    assert body["used"]["numPlanCredits"] == 0
    assert body["permitted"]["storageGB"] > 0
