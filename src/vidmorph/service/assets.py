"""Assets: ingest an upload (type check, probe, preview, store), list, get and delete.

Videos and images are probed and given a preview; audio files are probed and kept as they
are (no preview, no engine takes them)."""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import tempfile
from pathlib import Path

from vidmorph import errors
from vidmorph.domain import ids
from vidmorph.domain.clock import utcnow
from vidmorph.domain.media_types import (
    AUDIO_TYPES,
    EXTENSIONS,
    IMAGE_BY_CODEC,
    IMAGE_TYPES,
    TYPES_BY_DEMUXER,
    VIDEO_TYPES,
    WEBM_CODECS,
)
from vidmorph.domain.models import Account, Asset, MediaMeta, User
from vidmorph.media.decode import read_clip
from vidmorph.media.encode import write_jpeg
from vidmorph.media.probe import MediaInfo, probe
from vidmorph.media.probe_audio import probe_audio
from vidmorph.service.context import AppContext

log = logging.getLogger(__name__)

PREVIEW_WIDTH = 640


def media_type_of(content_type: str | None) -> tuple[str, str]:
    """(media type, file extension) for a Content-Type, or UnsupportedMediaType."""
    base = (content_type or "").split(";")[0].strip().lower()
    if base in VIDEO_TYPES:
        return "video", VIDEO_TYPES[base]
    if base in IMAGE_TYPES:
        return "image", IMAGE_TYPES[base]
    if base in AUDIO_TYPES:
        return "audio", AUDIO_TYPES[base]
    raise errors.UnsupportedMediaType(
        f"Unsupported Content-Type {base or '(none)'!r}; send a video ({', '.join(VIDEO_TYPES)}),"
        f" an image ({', '.join(IMAGE_TYPES)}) or audio ({', '.join(AUDIO_TYPES)})."
    )


def stored_type(media_type: str, announced: str, ext: str, info: MediaInfo) -> tuple[str, str]:
    """The (Content-Type, extension) an upload is kept and served as: its probed format's."""
    if media_type == "image":
        return IMAGE_BY_CODEC.get(info.codec, (announced, ext))
    base = announced.split(";")[0].strip().lower()
    types = _types_it_may_be(media_type, info)
    if types is None or base in types:
        return announced, ext
    usual = types[0]
    if info.container == "matroska" and info.codec in WEBM_CODECS:
        usual = "audio/webm" if media_type == "audio" else "video/webm"
    elif media_type == "audio":
        usual = next((t for t in types if t.startswith("audio/")), usual)
    return usual, EXTENSIONS[usual]


def _types_it_may_be(media_type: str, info: MediaInfo) -> tuple[str, ...] | None:
    """The types a probed file may be kept as, its usual one first; None for any."""
    if info.container == "mov" and info.brand:
        # one demuxer reads MP4, MOV and 3GP; the file's major brand tells them apart
        return (mov_family_type(info.brand),)
    if info.container == "matroska" and media_type == "video" and info.codec not in WEBM_CODECS:
        return ("video/x-matroska",)  # WebM holds VP8, VP9 or AV1 only
    return TYPES_BY_DEMUXER.get(info.container)


def mov_family_type(brand: str) -> str:
    """The type of a file FFmpeg's mov demuxer read, by its major brand: QuickTime's "qt",
    3GPP's "3gp*"/"3g2*", MP4 otherwise (isom, mp41, mp42, avc1, M4V ...)."""
    if brand.lower() == "qt":
        return "video/quicktime"
    if brand.lower().startswith(("3gp", "3g2")):
        return "video/3gpp"
    return "video/mp4"


def content_type_for(filename: str) -> str:
    """The Content-Type a file name suggests among those taken here; video/mp4 otherwise (the
    probe has the last word either way)."""
    guessed = mimetypes.guess_type(filename)[0] or ""
    return guessed if guessed in VIDEO_TYPES or guessed in IMAGE_TYPES else "video/mp4"


def ingest(
    ctx: AppContext, user: User, email: str, name: str, content_type: str, upload: Path
) -> Asset:
    """Probe `upload` and keep it as a new asset; the upload file is consumed either way."""
    try:
        media_type, ext = media_type_of(content_type)
        if media_type == "audio":
            info = probe_audio(upload)
        else:
            info = probe(upload, max_pixels=ctx.settings.max_input_pixels)
        if info.media_type != media_type:
            raise errors.InvalidMedia(
                f"Content-Type says {media_type} but the file is {info.media_type}."
            )
        # The file's own format, not the header's word for it (a PNG sent as image/jpeg, a
        # WebM sent as video/mp4, is kept and served as what it is)
        content_type, ext = stored_type(media_type, content_type, ext, info)
        uid = ids.new_uuid()
        base = f"{user.id}/{uid}"
        preview_key = None
        if media_type != "audio":
            preview_key = _store_preview(ctx, upload, info, f"{base}/preview.jpg")
        blob_key = f"{base}/{media_type}.{ext}"
        try:
            ctx.storage.put(blob_key, upload)
        except errors.StorageUnavailable:
            if preview_key is not None:
                with contextlib.suppress(errors.StorageUnavailable):
                    ctx.storage.delete(preview_key)  # no asset will own it
            raise
    finally:
        upload.unlink(missing_ok=True)
    now = utcnow()
    asset = Asset(
        uuid=uid,
        user_id=user.id,
        email=email,
        name=name,
        media_type=media_type,
        content_type=content_type.split(";")[0].strip().lower(),
        ext=ext,
        blob_key=blob_key,
        preview_key=preview_key,
        size_bytes=info.size_bytes,
        meta=meta_of(info),
        is_user_upload=True,
        task_uuid=None,
        created_at=now,
        updated_at=now,
    )
    ctx.assets.add(asset)
    return asset


def meta_of(info: MediaInfo) -> MediaMeta:
    return MediaMeta(
        duration_s=info.duration_s,
        fps=info.fps,
        width=info.width,
        height=info.height,
        has_audio=info.has_audio,
        has_alpha=info.has_alpha,
    )


def _store_preview(ctx: AppContext, source: Path, info: MediaInfo, key: str) -> str:
    width = max(2, min(PREVIEW_WIDTH, info.width) // 2 * 2)
    height = max(2, round(info.height * width / info.width) // 2 * 2)
    clip = read_clip(
        source,
        width=width,
        height=height,
        fps=24.0,
        max_seconds=1 / 24,
        duration_s=info.duration_s,
        max_pixels=ctx.settings.max_input_pixels,  # a later frame may be larger than the first
    )
    with tempfile.NamedTemporaryFile(suffix=".jpg", dir=ctx.tmp_dir, delete=False) as tmp:
        path = Path(tmp.name)
    try:
        write_jpeg(clip.frames[0], path)
        ctx.storage.put(key, path)
    finally:
        path.unlink(missing_ok=True)  # put keeps its source when the store refuses it
    return key


def get(ctx: AppContext, user: User, asset_id: str) -> Asset:
    parsed = ids.parse_own_id(asset_id, "asset", user.id)
    asset = None if parsed is None else ctx.assets.get(user.id, parsed.uuid)
    if asset is None or parsed is None or asset.email != parsed.email:  # its own account
        raise _not_found(asset_id)
    return asset


def get_with_account(ctx: AppContext, user: User, asset_id: str) -> tuple[Asset, Account | None]:
    """The user's asset and the account it belongs to, in one statement."""
    parsed = ids.parse_own_id(asset_id, "asset", user.id)
    found = None if parsed is None else ctx.assets.with_account(user.id, parsed.uuid)
    if found is None or parsed is None or found[0].email != parsed.email:
        raise _not_found(asset_id)
    return found


def _not_found(asset_id: str) -> errors.NotFound:
    return errors.NotFound(f"Unable to retrieve assetId {asset_id} (Not found.)")


def delete(ctx: AppContext, user: User, asset_id: str) -> None:
    """Delete an uploaded asset with its files. A task's output goes with its task only
    (DELETE /tasks/{taskId}), so a SUCCEEDED task always has the video it names."""
    asset = get(ctx, user, asset_id)
    if asset.task_uuid is not None:
        task_id = ids.format_id(asset.user_id, asset.email, "task", asset.task_uuid)
        raise errors.Conflict(
            f"This asset is the output of task {task_id}; delete that task to delete it."
        )
    ctx.assets.delete(user.id, asset.uuid)
    delete_files(ctx, asset)


def delete_files(ctx: AppContext, asset: Asset) -> None:
    """Remove an asset's video (or image) and its preview from storage. Its row is gone
    already, so an unreachable store leaves only unreachable bytes behind: logged, not raised."""
    for key in (asset.blob_key, asset.preview_key):
        if key:
            try:
                ctx.storage.delete(key)
            except errors.StorageUnavailable:
                log.warning("could not delete %s from storage; the blob is left behind", key)
