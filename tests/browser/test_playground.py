"""The playground at `/` through a real Chromium against a real server: upload, generate with
live progress, watch the output play, cancel, see the API's own errors; the offline docs pages;
and not one request to anywhere but the server itself."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import TIMEOUT_MS, Browsing
from tests.harness import LiveServer, start_server
from tests.videos import make_video
from vidmorph.config import Settings

SCREENSHOT_COPY = Path("/tmp/playground.png")

#: records what #status, #detail and #progress showed on every change, as the person saw it
WATCH_STATUS = """() => {
  window.seen = [];
  const note = () => {
    const bar = document.getElementById('progress');
    window.seen.push({
      status: document.getElementById('status').textContent,
      detail: document.getElementById('detail').textContent,
      progress: bar.hasAttribute('value') ? bar.value : null,
    });
  };
  const watcher = new MutationObserver(note);
  for (const id of ['status', 'detail']) {
    watcher.observe(document.getElementById(id), {childList: true, characterData: true,
      subtree: true});
  }
  watcher.observe(document.getElementById('progress'), {attributes: true});
}"""

PLAYS = """(id) => { const v = document.getElementById(id);
  return v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0; }"""


def connect(page: Page, live: LiveServer, token: str | None = None) -> None:
    page.goto(f"{live.base_url}/")
    page.fill("#token", token or live.token)
    page.click("#save")


def upload(page: Page, path: Path) -> None:
    page.set_input_files("#video", str(path))


def latest_task(live: LiveServer) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = live.client.get(f"{live.api}/tasks/").json()
    return tasks[0]


def test_a_video_goes_in_the_progress_shows_live_and_the_output_plays(
    slow_server: LiveServer, browsing: Browsing, tmp_path: Path
) -> None:
    live, page = slow_server, browsing.page
    features = live.client.get(f"{live.api}/features/").json()
    permitted = features["permitted"]["numPlanCredits"]
    connect(page, live)
    expect(page.locator("#credits")).to_have_text(
        f"0 / {permitted:,} credits · {features['plan']} · {features['engine']}"
    )
    expect(page.locator("#submit")).to_be_disabled()

    upload(page, make_video(tmp_path / "street.mp4", seconds=3, size=(320, 240), fps=24))
    probe = page.locator("#probe")
    for fact in ("3.00 s", "320×240", "24 fps", "Audio", "no", "KB"):
        expect(probe).to_contain_text(fact)
    expect(page.locator("#submit")).to_be_enabled()
    asset_url = page.locator("#input").get_attribute("src")
    assert asset_url and asset_url.startswith(f"{live.api}/files/")

    page.evaluate(WATCH_STATUS)
    page.fill("#text_prompt", "the same street, at night in the rain")
    page.click("#submit")
    expect(page.locator("#cancel")).to_be_visible()
    expect(page.locator("#status")).to_have_text("SUCCEEDED", timeout=TIMEOUT_MS)
    expect(page.locator("#cancel")).to_be_hidden()

    seen: list[dict[str, Any]] = page.evaluate("window.seen")
    statuses = [s["status"] for s in seen]
    assert "RUNNING" in statuses and statuses[-1] == "SUCCEEDED", statuses
    running = [s["progress"] for s in seen if s["status"] == "RUNNING" and s["progress"]]
    assert any(0 < p < 1 for p in running), seen
    assert running == sorted(running), running
    assert any("%" in s["detail"] for s in seen if s["status"] == "RUNNING"), seen

    task = latest_task(live)
    assert task["status"] == "SUCCEEDED"
    artifact_url = task["artifacts"][0]["url"]
    output = page.locator("#output")
    output_src = output.get_attribute("src")
    assert output_src and output_src.split("?")[0] == artifact_url.split("?")[0]
    input_src = page.locator("#input").get_attribute("src") or ""
    # Signed links may be minted afresh on each read: the same file, maybe another signature.
    assert input_src.split("?")[0] == task["options"]["video_prompt"].split("?")[0]
    # The browser decodes and plays both: H.264 in MP4 from the server's signed links.
    page.wait_for_function(PLAYS, arg="output", timeout=TIMEOUT_MS)
    page.evaluate("document.getElementById('input').play()")
    page.wait_for_function(PLAYS, arg="input", timeout=TIMEOUT_MS)
    width = page.evaluate("document.getElementById('output').videoWidth")
    assert width == task["artifacts"][0]["metadata"]["width"]
    download = page.locator("#download")
    expect(download).to_be_visible()
    assert download.get_attribute("href") == output_src
    assert download.get_attribute("download")

    row = page.locator(f'#tasks tr[data-task-id="{task["taskId"]}"]')
    expect(row).to_have_attribute("data-status", "SUCCEEDED")
    expect(row).to_contain_text("the same street, at night in the rain")
    expect(row.get_by_role("link", name="Download")).to_be_visible()
    used = live.client.get(f"{live.api}/features/").json()["used"]["numPlanCredits"]
    assert used > 0
    expect(page.locator("#credits")).to_contain_text(f"{used:,} / {permitted:,} credits")
    expect(page.locator("#error")).to_be_hidden()

    page.evaluate(
        "document.getElementById('output').pause(); document.getElementById('input').pause()"
    )
    shot = tmp_path / "playground.png"
    page.screenshot(path=str(shot), full_page=True)
    shutil.copyfile(shot, SCREENSHOT_COPY)
    browsing.assert_only_from(live.base_url)


def test_cancel_stops_the_task_and_the_api_agrees(
    slow_server: LiveServer, browsing: Browsing, tmp_path: Path
) -> None:
    live, page = slow_server, browsing.page
    connect(page, live)
    upload(page, make_video(tmp_path / "long.mp4", seconds=6))
    expect(page.locator("#probe")).to_contain_text("6.00 s")
    page.fill("#text_prompt", "snow")
    page.click("#submit")
    expect(page.locator("#status")).to_have_text("RUNNING")
    page.click("#cancel")
    expect(page.locator("#status")).to_have_text("CANCELLED")
    expect(page.locator("#cancel")).to_be_hidden()
    task = latest_task(live)
    assert task["status"] == "CANCELLED"
    assert live.client.get(f"{live.api}/tasks/{task['taskId']}").json()["status"] == "CANCELLED"
    row = page.locator(f'#tasks tr[data-task-id="{task["taskId"]}"]')
    expect(row).to_have_attribute("data-status", "CANCELLED")

    # A finished task's row deletes it.
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    assert live.client.get(f"{live.api}/tasks/{task['taskId']}").status_code == 404
    expect(page.locator("#error")).to_be_hidden()
    browsing.assert_only_from(live.base_url)


def test_the_apis_own_error_messages_are_shown(
    server: LiveServer, browsing: Browsing, tmp_path: Path
) -> None:
    live, page = server, browsing.page
    error = page.locator("#error")
    wrong = httpx.get(f"{live.api}/features/", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    connect(page, live, token="nope")
    expect(error).to_have_text(wrong.json()["error"])
    expect(error).to_be_visible()

    page.fill("#token", live.token)
    page.click("#save")
    expect(error).to_be_hidden()
    expect(page.locator("#credits")).to_contain_text("credits")

    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")
    refused = live.client.post(
        f"{live.api}/assets/",
        params={"name": notes.name},
        content=notes.read_bytes(),
        headers={"Content-Type": "text/plain"},
    )
    assert refused.status_code == 400
    upload(page, notes)
    expect(error).to_have_text(refused.json()["error"])
    expect(page.locator("#submit")).to_be_disabled()

    # An empty prompt: the API's validation message, verbatim.
    upload(page, make_video(tmp_path / "clip.mp4", seconds=1))
    expect(page.locator("#submit")).to_be_enabled()
    expect(error).to_be_hidden()
    asset_id = live.client.get(f"{live.api}/assets/").json()[0]["assetId"]
    bad_prompt = live.create({"assetId": asset_id, "text_prompt": ""})
    assert bad_prompt.status_code == 400
    page.click("#submit")
    expect(error).to_have_text(bad_prompt.json()["error"])

    # The token stays in this browser, never in the address.
    page.reload()
    expect(page.locator("#credits")).to_contain_text("credits")
    assert live.token not in page.url
    assert page.evaluate("localStorage.getItem('vidmorph.token')") == live.token
    browsing.assert_only_from(live.base_url)


def test_the_docs_pages_render_offline(server: LiveServer, browsing: Browsing) -> None:
    page = browsing.page
    page.goto(f"{server.base_url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Vidmorph")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    page.goto(f"{server.base_url}/redoc")
    expect(page.locator("h1").first).to_contain_text("Vidmorph")
    expect(page.get_by_text("/v1/runwayml/gen3/video").first).to_be_attached()
    # The playground links to both.
    page.goto(f"{server.base_url}/")
    expect(page.get_by_role("link", name="API docs")).to_have_attribute("href", "/docs")
    expect(page.get_by_role("link", name="ReDoc")).to_have_attribute("href", "/redoc")
    browsing.assert_only_from(server.base_url)


def test_the_playground_loads_nothing_from_elsewhere(
    server: LiveServer, browsing: Browsing
) -> None:
    page = browsing.page
    response = page.goto(f"{server.base_url}/")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.fill("#token", server.token)
    page.click("#save")
    expect(page.locator("#tasks")).to_contain_text("No tasks yet.")
    loaded = {url.removeprefix(server.base_url).split("?")[0] for url in browsing.requests}
    assert {"/", "/ui/app.js", "/ui/style.css", "/v1/runwayml/features/"} <= loaded, loaded
    browsing.assert_only_from(server.base_url)


def test_a_failed_task_shows_its_error(
    make_settings: Callable[..., Settings], browsing: Browsing, tmp_path: Path
) -> None:
    page = browsing.page
    with start_server(make_settings(engine="tests.engines.fixtures:raises")) as live:
        connect(page, live)
        upload(page, make_video(tmp_path / "clip.mp4", seconds=2))
        page.fill("#text_prompt", "fog")
        page.click("#submit")
        expect(page.locator("#status")).to_have_text("FAILED")
        task = latest_task(live)
        assert task["status"] == "FAILED" and task["error"]
        error = task["error"]
        expect(page.locator("#detail")).to_have_text(f"{error['errorMessage']} ({error['reason']})")
        expect(page.locator("#output")).not_to_have_attribute("src", re.compile(".+"))
        expect(page.locator("#download")).to_be_hidden()
        row = page.locator(f'#tasks tr[data-task-id="{task["taskId"]}"]')
        expect(row).to_have_attribute("data-status", "FAILED")
        browsing.assert_only_from(live.base_url)


def test_a_token_with_several_accounts_picks_one_and_works_in_it(
    server: LiveServer, browsing: Browsing, tmp_path: Path
) -> None:
    live, page = server, browsing.page
    made = live.client.post(
        f"{live.api}/accounts/second@x.com", json={"email": "second@x.com", "maxJobs": 2}
    )
    assert made.status_code == 200
    connect(page, live)
    account = page.locator("#account")
    expect(account).to_be_visible()
    expect(account).to_have_value("default@vidmorph.local")  # the first, by email
    expect(page.locator("#credits")).to_contain_text("credits")
    account.select_option("second@x.com")
    upload(page, make_video(tmp_path / "clip.mp4", seconds=1))
    expect(page.locator("#submit")).to_be_enabled()
    page.fill("#text_prompt", "snow")
    page.click("#submit")
    expect(page.locator("#status")).to_have_text("SUCCEEDED", timeout=TIMEOUT_MS)
    (task,) = live.client.get(f"{live.api}/tasks/?email=second@x.com").json()
    assert "-runwayml:second@x.com-task:" in task["taskId"]
    expect(page.locator(f'#tasks tr[data-task-id="{task["taskId"]}"]')).to_be_visible()
    account.select_option("default@vidmorph.local")  # its own list: none yet
    expect(page.locator("#tasks")).to_contain_text("No tasks yet.")
    account.select_option("second@x.com")
    expect(page.locator(f'#tasks tr[data-task-id="{task["taskId"]}"]')).to_be_visible()
    page.reload()  # the choice is kept
    expect(page.locator("#account")).to_have_value("second@x.com")
    expect(page.locator(f'#tasks tr[data-task-id="{task["taskId"]}"]')).to_be_visible()
    expect(page.locator("#error")).to_be_hidden()
    browsing.assert_only_from(live.base_url)
