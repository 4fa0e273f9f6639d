"""The OpenAPI document tells the truth, and the docs pages need no network.

The spec is checked for what it must say (bodies, the bearer scheme, the envelope on every
error status, no 422), then schemathesis (its own CLI, `st run`) fuzzes a live server from it:
every answer must be a documented status with a body that fits its schema, never a 5xx, and a
405 names every method its path takes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import LiveServer, start_server
from vidmorph.config import Settings

ST = str(Path(sys.executable).with_name("st"))
#: a generated videoUri is a URL the server would resolve and fetch: never one off this machine
NO_FETCHING = ("--exclude-path", "/v1/video_to_video")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("openapi") / "data"
    settings = Settings(data_dir=data, api_token="user:1-openapitoken000000000000")
    with start_server(settings) as server:
        yield server


@pytest.fixture(scope="module")
def spec(live: LiveServer) -> dict[str, Any]:
    resp = httpx.get(f"{live.base_url}/openapi.json")
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    return body


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_every_operation_documents_its_errors_in_the_envelope_and_never_422(
    spec: dict[str, Any],
) -> None:
    ops = list(_operations(spec))
    assert len(ops) >= 18
    for method, path, op in ops:
        codes = set(op["responses"])
        assert "422" not in codes, (method, path)
        assert {"400", "404"} <= codes, (method, path)
        public = op.get("security") == []
        assert ("401" in codes) != public, (method, path)
        envelope = "Error" if path.startswith("/v1/runwayml/") else "RunwayError"
        for code, response in op["responses"].items():
            if int(code) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": f"#/components/schemas/{envelope}"}, (path, code)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    runway = [(m, p) for m, p, _ in ops if not p.startswith("/v1/runwayml/")]
    assert ("POST", "/v1/video_to_video") in runway and ("GET", "/v1/organization") in runway
    assert ("POST", "/v1/organization/usage") in runway
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "code"]


def test_the_bearer_scheme_guards_everything_but_signed_downloads(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A Vidmorph API token.",
    }
    assert spec["security"] == [{"bearer": []}]
    public = [(m, p) for m, p, op in _operations(spec) if op.get("security") == []]
    assert sorted(public) == [
        ("GET", "/v1/runwayml/files/{key}"),
        ("POST", "/v1/uploads/{upload_id}"),
    ]
    version = next(
        p
        for p in spec["paths"]["/v1/organization"]["get"]["parameters"]
        if p["name"] == "X-Runway-Version"
    )
    assert version["required"] and version["schema"]["enum"] == ["2024-11-06"]
    for _, _, op in _operations(spec):  # the scheme says it, not a header parameter
        assert all(p["name"] != "authorization" for p in op.get("parameters", []))


def test_create_bodies_are_documented_as_json_and_form_with_the_seeds_ranges(
    spec: dict[str, Any], live: LiveServer
) -> None:
    schemas = spec["components"]["schemas"]
    for path in ("/v1/runwayml/gen3/video", "/v1/runwayml/gen3turbo/video"):
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "multipart/form-data"}
        assert content["application/json"]["schema"]["$ref"].endswith("In")
        assert content["multipart/form-data"]["schema"]["$ref"].endswith("InForm")
        assert {"409", "412", "413", "429"} <= set(spec["paths"][path]["post"]["responses"])
    props = schemas["Gen3VideoIn"]["properties"]
    assert props["text_prompt"]["maxLength"] == 1000
    assert props["text_prompt"]["examples"]
    assert (
        props["structure_transformation"]["minimum"],
        props["structure_transformation"]["maximum"],
    ) == (0, 10)
    seed = next(c for c in props["seed"]["anyOf"] if c.get("type") == "integer")
    assert (seed["minimum"], seed["maximum"]) == (1, 4294967294)
    seconds = next(c for c in props["seconds"]["anyOf"] if c.get("type") == "integer")
    assert seconds["maximum"] == live.ctx.settings.max_seconds == 10  # this deployment's
    form = schemas["Gen3VideoInForm"]["properties"]
    assert form["seconds"]["type"] == "integer"  # a form field is absent or text, never null
    assert "null" not in str(form)
    turbo = schemas["Gen3TurboVideoIn"]["properties"]["aspect_ratio"]
    assert turbo["enum"] == ["landscape", "portrait"]


def test_uploads_take_raw_video_bodies_and_events_are_a_stream(spec: dict[str, Any]) -> None:
    upload = spec["paths"]["/v1/runwayml/assets/"]["post"]
    content = upload["requestBody"]["content"]
    assert "video/mp4" in content
    assert content["video/mp4"]["schema"] == {"type": "string", "format": "binary"}
    assert "413" in upload["responses"]
    events = spec["paths"]["/v1/runwayml/tasks/{task_id}/events"]["get"]
    assert set(events["responses"]["200"]["content"]) == {"text/event-stream"}
    poll = spec["paths"]["/v1/runwayml/tasks/{task_id}"]["get"]
    assert [p["name"] for p in poll["parameters"]] == ["task_id"]
    assert poll["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Task"
    }


def test_docs_pages_load_their_scripts_from_this_server(live: LiveServer) -> None:
    for page in ("/docs", "/redoc"):
        html = httpx.get(live.base_url + page).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources, page
        assert "cdn" not in html.lower()
        for source in sources:
            assert source.startswith("/"), (page, source)
            if source.startswith("/docs-static/"):
                asset = httpx.get(live.base_url + source)
                assert asset.status_code == 200 and len(asset.content) > 1000, source


def test_a_405_names_every_method_of_its_path(live: LiveServer) -> None:
    cases = {
        "/v1/runwayml/accounts/a@b.c": "DELETE, GET, HEAD, POST",
        "/v1/runwayml/tasks/some-task": "DELETE, GET, HEAD",
        "/v1/runwayml/tasks/some-task/events": "GET",
        "/v1/runwayml/assets/": "GET, HEAD, POST",
        "/v1/runwayml/files/some/key.mp4": "GET, HEAD",
        "/v1/uploads/some-upload": "POST",
        "/v1/uploads/some-upload/": "POST",
        "/v1/organization": "GET, HEAD",
    }
    for path, allow in cases.items():
        resp = live.client.request("PATCH", live.base_url + path)
        assert resp.status_code == 405, path
        assert resp.headers["allow"] == allow, path
        useapi = path.startswith("/v1/runwayml/")  # Runway's own envelope has no code
        expected = {"error": "Method not allowed.", **({"code": 405} if useapi else {})}
        assert resp.json() == expected, path
    # and every other documented path
    for documented in live.client.get(live.base_url + "/openapi.json").json()["paths"]:
        path = re.sub(r"\{[^}]+\}", "x", documented)
        resp = live.client.request("PATCH", live.base_url + path)
        if resp.status_code == 405:
            assert resp.headers["allow"], path


def _schemathesis(live: LiveServer, report: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        ST,
        "run",
        f"{live.base_url}/openapi.json",
        "-H",
        f"Authorization: Bearer {live.token}",
        # One worker: with two threads, hypothesis's ast.parse of its lambdas hits CPython
        # 3.11.7's "AST constructor recursion depth mismatch" SystemError (cpython#106905).
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--seed",
        "20261202",
        "--generation-database",
        "none",
        "--report-dir",
        str(report),
        "--no-color",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


def test_schemathesis_finds_no_undocumented_status_and_no_server_error(
    live: LiveServer, tmp_path: Path
) -> None:
    # positive_data_acceptance is left out: the server refuses some schema-valid requests for
    # reasons no schema can carry (an image's assetId given as the video, exploreMode on a
    # standard plan) with a documented 400. NUL is left out of generated strings here: the
    # next test sends it.
    done = _schemathesis(
        live,
        tmp_path,
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        "25",
        "--generation-allow-x00",
        "false",
        *NO_FETCHING,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Tested: 25" in done.stdout, done.stdout[-3000:]


def test_schemathesis_with_nul_characters_gets_no_server_error(
    live: LiveServer, tmp_path: Path
) -> None:
    done = _schemathesis(
        live,
        tmp_path,
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance",
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        "15",
        *NO_FETCHING,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
