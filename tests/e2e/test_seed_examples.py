"""The seed page's own curl, fetch and requests examples, unchanged but for base URL and token."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.harness import LiveServer

CURL = [
    "curl",
    "-s",
    "-H",
    "Accept: application/json",
    "-H",
    "Content-Type: application/json",
    "-H",
    "Authorization: Bearer {token}",
    "-X",
    "POST",
    "{base}/gen3/video",
    "-d",
    '{{"assetId": "{asset}", "text_prompt": "{prompt}"}}',
]

FETCH = """
const assetId = "{asset}";
const text_prompt = "{prompt}";
const apiUrl = `{base}/gen3/video`;
const token = "{token}";
const data = {{
  method: 'POST',
  headers: {{
    'Authorization': `Bearer ${{token}}`,
    'Content-Type': 'application/json' }}
}};
data.body = JSON.stringify({{
  assetId, text_prompt
}});
const response = await fetch(apiUrl, data);
const result = await response.json();
console.log(JSON.stringify(result));
"""

REQUESTS = """
import requests
assetId = "{asset}"
text_prompt = "{prompt}"
apiUrl = f"{base}/gen3/video"
token = "{token}"
headers = {{
    "Content-Type": "application/json",
    "Authorization" : f"Bearer {{token}}"
}}
body = {{
    "assetId": f"{{assetId}}",
    "text_prompt": f"{{text_prompt}}"
}}
response = requests.post(apiUrl, headers=headers, json=body)
print(response.json() and __import__("json").dumps(response.json()))
"""


def _values(server: LiveServer, tmp_path: Path) -> dict[str, str]:
    asset = server.upload_video(tmp_path, seconds=1)
    return {
        "asset": asset["assetId"],
        "prompt": "the same street, but at night in the rain",
        "token": server.token,
        "base": server.api,
    }


def _check(server: LiveServer, output: str) -> None:
    task = json.loads(output.strip().splitlines()[-1])
    assert task["status"] == "PENDING" and task["taskType"] == "gen3a", task
    done = server.wait_task(task["taskId"], {"SUCCEEDED", "FAILED"})
    assert done["status"] == "SUCCEEDED" and done["artifacts"][0]["url"]


def test_seed_curl_example(server: LiveServer, tmp_path: Path) -> None:
    assert shutil.which("curl"), "curl is required for the seed example test"
    v = _values(server, tmp_path)
    cmd = [part.format(**v) for part in CURL]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    _check(server, out.stdout)


def test_seed_javascript_fetch_example(server: LiveServer, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "node is required for the seed example test"
    script = tmp_path / "example.mjs"
    script.write_text(FETCH.format(**_values(server, tmp_path)))
    out = subprocess.run(
        [node, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    _check(server, out.stdout)


def test_seed_python_requests_example(server: LiveServer, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(REQUESTS.format(**_values(server, tmp_path)))
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    _check(server, out.stdout)
