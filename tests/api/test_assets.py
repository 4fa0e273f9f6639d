"""/assets: raw-body uploads probed on arrival, clear 4xx for bad bodies, list/get/delete."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx

from tests.harness import LiveServer, start_server
from tests.videos import make_audio, make_image, make_video


def _leftovers(server: LiveServer) -> list[Path]:
    data = server.ctx.settings.data_dir
    return [p for p in (data / "tmp").rglob("*") if p.is_file()] + [
        p for p in (data / "files").rglob("*") if p.is_file()
    ]


def test_upload_is_probed_and_reported_in_both_metadata_forms(
    server: LiveServer, tmp_path: Path
) -> None:
    asset = server.upload_video(tmp_path, seconds=2, size=(320, 240), fps=30, audio=True)
    assert asset["assetId"].startswith("user:1-runwayml:default@vidmorph.local-asset:")
    assert asset["assetId"].endswith(asset["id"])
    meta = asset["metadata"]
    assert meta["dimensions"] == [320, 240] and meta["size"] == {"width": 320, "height": 240}
    assert meta["width"] == 320 and meta["height"] == 240 and meta["hasAudio"] is True
    assert abs(meta["duration"] - 2.0) < 0.1 and round(meta["frameRate"]) == 30
    assert asset["isUserUpload"] is True and asset["mediaType"] == "video"
    video = httpx.get(asset["url"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert httpx.get(asset["previewUrls"][0]).content[:2] == b"\xff\xd8"


def test_asset_ids_work_raw_and_percent_encoded(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    for form in (asset["assetId"], quote(asset["assetId"], safe="")):
        resp = server.client.get(f"{server.api}/assets/{form}")
        assert resp.status_code == 200 and resp.json()["id"] == asset["id"]


def test_bad_bodies_get_clear_400s_and_leave_nothing_behind(
    server: LiveServer, tmp_path: Path
) -> None:
    good = make_video(tmp_path / "good.mp4", seconds=2, faststart=False).read_bytes()
    bodies = {
        "empty": b"",
        "text": b"hello, this is not a video at all" * 10,
        "truncated": good[: len(good) // 2],
    }
    for label, body in bodies.items():
        resp = server.client.post(
            f"{server.api}/assets/?name={label}",
            content=body,
            headers={"Content-Type": "video/mp4"},
        )
        assert resp.status_code == 400, (label, resp.text)
        assert resp.json()["code"] == 400 and len(resp.json()["error"]) > 10
    resp = server.client.post(
        f"{server.api}/assets/?name=x", content=good, headers={"Content-Type": "text/plain"}
    )
    assert resp.status_code == 400 and "Content-Type" in resp.json()["error"]
    for name in ("a%0D%0AX-Injected:%201", "tab%09", "del%7F", "c1%C2%85"):
        resp = server.client.post(
            f"{server.api}/assets/?name={name}", content=good, headers={"Content-Type": "video/mp4"}
        )
        assert resp.status_code == 400, (name, resp.text)
        assert resp.json() == {"error": "name: must not hold control characters.", "code": 400}
    assert _leftovers(server) == []
    assert server.client.get(f"{server.api}/assets/?offset=0&limit=10").json() == []


def test_upload_over_the_limit_is_413_with_nothing_left(
    make_settings: object, tmp_path: Path
) -> None:
    settings = make_settings(max_upload_bytes=20_000)  # type: ignore[operator]
    with start_server(settings) as live:
        big = make_video(tmp_path / "big.mp4", seconds=2, pattern="noise").read_bytes()
        assert len(big) > 20_000
        resp = live.client.post(
            f"{live.api}/assets/?name=big", content=big, headers={"Content-Type": "video/mp4"}
        )
        assert resp.status_code == 413 and resp.json()["code"] == 413

        def chunks() -> object:
            for i in range(0, len(big), 4096):
                yield big[i : i + 4096]

        streamed = live.client.post(  # no Content-Length: the limit is enforced while reading
            f"{live.api}/assets/?name=big", content=chunks(), headers={"Content-Type": "video/mp4"}
        )
        assert streamed.status_code == 413
        assert _leftovers(live) == []


def test_list_filters_by_media_type_and_validates_paging(
    server: LiveServer, tmp_path: Path
) -> None:
    video = server.upload_video(tmp_path, seconds=1)
    image = server.upload(make_image(tmp_path / "still.png", (64, 48), "PNG"), "image/png")
    assert image["mediaType"] == "image"
    listed = server.client.get(f"{server.api}/assets/?offset=0&limit=10&mediaType=video").json()
    assert [a["id"] for a in listed] == [video["id"]]
    # useapi §3: the list's createdBy is the user's number, the upload's the user object
    assert listed[0]["createdBy"] == listed[0]["userId"] == 1
    assert video["createdBy"]["id"] == 1
    assert len(server.client.get(f"{server.api}/assets/?offset=0&limit=10").json()) == 2
    for query in ("limit=51", "offset=-1", "mediaType=pdf", "limit=abc"):
        resp = server.client.get(f"{server.api}/assets/?{query}")
        assert resp.status_code == 400, query


def test_an_image_is_kept_as_the_format_it_is_whatever_its_header_says(
    server: LiveServer, tmp_path: Path
) -> None:
    cases = [  # (what it is, what the upload said, the extension kept)
        (make_image(tmp_path / "a.png", (64, 48), "PNG"), "image/jpeg", "png"),
        (make_image(tmp_path / "b.jpg", (64, 48), "JPEG"), "image/png", "jpg"),
        (make_image(tmp_path / "c.webp", (64, 48), "WEBP"), "image/jpeg", "webp"),
        (make_image(tmp_path / "d.gif", (64, 48), "GIF"), "image/gif", "gif"),
    ]
    for path, said, ext in cases:
        asset = server.upload(path, said)
        assert asset["fileExtStandardized"] == ext, path.name
        got = httpx.get(asset["url"])
        assert got.content == path.read_bytes()
        assert got.headers["content-type"] == f"image/{'jpeg' if ext == 'jpg' else ext}"


def test_a_video_or_audio_is_kept_as_its_container_whatever_its_header_says(
    server: LiveServer, tmp_path: Path
) -> None:
    small = {"seconds": 0.5, "size": (64, 48)}
    webm = make_video(tmp_path / "a.webm", codec="libvpx-vp9", **small)  # type: ignore[arg-type]
    mkv = make_video(tmp_path / "b.mkv", **small)  # type: ignore[arg-type]
    mp4 = make_video(tmp_path / "c.mp4", **small)  # type: ignore[arg-type]
    mov = make_video(tmp_path / "d.mov", container_format="mov", **small)  # type: ignore[arg-type]
    cases = [  # (file, what the upload said, the type served, the extension kept)
        (webm, "video/mp4", "video/webm", "webm"),
        (mkv, "video/webm", "video/x-matroska", "mkv"),  # H.264 is no WebM codec
        (mkv, "video/mp4", "video/x-matroska", "mkv"),
        (mp4, "video/x-matroska", "video/mp4", "mp4"),
        # one demuxer reads both; the major brand tells them apart
        (mp4, "video/quicktime", "video/mp4", "mp4"),
        (mov, "video/mp4", "video/quicktime", "mov"),
        (mov, "video/quicktime", "video/quicktime", "mov"),
        (make_audio(tmp_path / "t.flac"), "audio/mpeg", "audio/flac", "flac"),
        (make_audio(tmp_path / "t.webm"), "audio/ogg", "audio/webm", "webm"),
        (make_audio(tmp_path / "t.wav"), "audio/wave", "audio/wav", "wav"),
    ]
    for path, said, kept, ext in cases:
        asset = server.upload(path, said)
        assert (asset["fileExtStandardized"], said) == (ext, said), path.name
        got = httpx.get(asset["url"])
        assert got.content == path.read_bytes()
        assert got.headers["content-type"] == kept, (path.name, said)


def test_audio_is_kept_as_an_asset_but_is_no_tasks_input(
    server: LiveServer, tmp_path: Path
) -> None:
    uploads = {
        "audio/wav": make_audio(tmp_path / "tone.wav", seconds=1.5),
        "audio/mpeg": make_audio(tmp_path / "tone.mp3", seconds=1.5),
        "audio/flac": make_audio(tmp_path / "tone.flac", seconds=1.5),
        "audio/ogg": make_audio(tmp_path / "tone.ogg", seconds=1.5),
        "audio/webm": make_audio(tmp_path / "tone.webm", seconds=1.5),
    }
    made = {ctype: server.upload(path, ctype) for ctype, path in uploads.items()}
    for ctype, asset in made.items():
        assert asset["mediaType"] == "audio" and asset["type"]["name"] == "audio", ctype
        assert asset["previewUrls"] == [] and asset["isUserUpload"] is True
        assert asset["metadata"]["hasAudio"] is True
        assert abs(asset["metadata"]["duration"] - 1.5) < 0.05, ctype
        assert httpx.get(asset["url"]).content == uploads[ctype].read_bytes()
    assert made["audio/mpeg"]["fileExtStandardized"] == "mp3"
    listed = server.client.get(f"{server.api}/assets/?offset=0&limit=10&mediaType=audio").json()
    assert {a["assetId"] for a in listed} == {a["assetId"] for a in made.values()}
    task = server.create({"assetId": made["audio/wav"]["assetId"], "text_prompt": "x"})
    assert task.status_code == 400 and "is not a video" in task.json()["error"]
    # the kind is checked: a video sent as audio, noise sent as audio, are 400s naming why
    for ctype, body in (
        ("audio/mpeg", make_video(tmp_path / "v.mp4", seconds=0.5, size=(64, 48)).read_bytes()),
        ("audio/wav", b"RIFF" + b"noise" * 200),
    ):
        resp = server.client.post(
            f"{server.api}/assets/?name=x", content=body, headers={"Content-Type": ctype}
        )
        assert resp.status_code == 400 and "audio" in resp.json()["error"], ctype
    wav_id = made["audio/wav"]["assetId"]
    assert server.client.delete(f"{server.api}/assets/{wav_id}").status_code == 204
    assert httpx.get(made["audio/wav"]["url"]).status_code == 404


def test_delete_removes_the_asset_and_its_files(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    assert server.client.delete(f"{server.api}/assets/{asset['assetId']}").status_code == 204
    assert server.client.get(f"{server.api}/assets/{asset['assetId']}").status_code == 404
    assert httpx.get(asset["url"]).status_code == 404
    assert _leftovers(server) == []


def test_a_tasks_output_names_its_task_and_goes_only_with_it(
    server: LiveServer, tmp_path: Path
) -> None:
    source = server.upload_video(tmp_path, seconds=1)
    task = server.create({"assetId": source["assetId"], "text_prompt": "noir"}).json()
    done = server.wait_task(task["taskId"], {"SUCCEEDED"})
    (artifact,) = done["artifacts"]
    listed = server.client.get(f"{server.api}/assets/").json()
    by_id = {a["assetId"]: a for a in listed}
    assert by_id[artifact["assetId"]]["taskId"] == task["taskId"]
    assert by_id[artifact["assetId"]]["isUserUpload"] is False
    assert by_id[source["assetId"]]["taskId"] is None
    one = server.client.get(f"{server.api}/assets/{artifact['assetId']}").json()
    assert one["taskId"] == task["taskId"]
    # a SUCCEEDED task keeps the video it names: the output goes with its task only
    refused = server.client.delete(f"{server.api}/assets/{artifact['assetId']}")
    assert refused.status_code == 409 and task["taskId"] in refused.json()["error"]
    after = server.client.get(f"{server.api}/tasks/{task['taskId']}").json()
    assert [a["assetId"] for a in after["artifacts"]] == [artifact["assetId"]]
    assert httpx.get(after["artifacts"][0]["url"]).status_code == 200
    assert server.client.delete(f"{server.api}/tasks/{task['taskId']}").status_code == 204
    gone = server.client.get(f"{server.api}/assets/{artifact['assetId']}")
    assert gone.status_code == 404


def test_signed_urls_refuse_tampering(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    url = asset["url"]
    assert httpx.get(url.replace("sig=", "sig=0")).status_code == 404
    assert httpx.get(url.replace("video.mp4", "preview.jpg")).status_code == 404
    escaped = url.split("/files/")[0] + "/files/../vidmorph.db?expires=9999999999&sig=x"
    assert httpx.get(escaped).status_code == 404


def test_one_pixel_wide_media_is_accepted_with_a_preview(
    server: LiveServer, tmp_path: Path
) -> None:
    image = server.upload(make_image(tmp_path / "dot.png", (1, 1), "PNG"), "image/png")
    assert image["metadata"]["dimensions"] == [1, 1]
    assert httpx.get(image["previewUrls"][0]).content[:2] == b"\xff\xd8"


def test_signed_links_serve_ranges_and_ignore_malformed_ones(
    server: LiveServer, tmp_path: Path
) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    url, whole = asset["url"], httpx.get(asset["url"]).content
    part = httpx.get(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == whole[:10]
    tail = httpx.get(url, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == whole[-5:]
    for bad in ("bytes=abc", "bytes=9-2", "items=0-1", "bytes=", "bytes=1-2-3"):
        got = httpx.get(url, headers={"Range": bad})
        assert (got.status_code, got.content) == (200, whole), bad
    beyond = httpx.get(url, headers={"Range": f"bytes={len(whole) + 10}-"})
    assert beyond.status_code == 416
