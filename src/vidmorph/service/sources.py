"""Runway's media URIs as assets: `runway://` uploads, data URIs and https URLs.

Runway's API names a task's input by URI, not by asset id. Each URI becomes an ordinary asset
of the caller's account (probed, with its preview), so the task that follows is the same as
one made through useapi's surface. Every way in is bounded: data URIs by Runway's own limits
(16 MB for a video, 5 MB for an image), fetched URLs by the upload limit and the callback guard.
A URI must name the kind of media its field takes (a video for `videoUri`, an image for
`references`): its announced type is checked before anything is stored, the probe after.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import mimetypes
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from vidmorph import errors
from vidmorph.callbacks.fetch import fetch_to_file
from vidmorph.domain.clock import utcnow
from vidmorph.domain.media_types import IMAGE_TYPES, VIDEO_TYPES
from vidmorph.domain.models import Asset, User
from vidmorph.service import assets as asset_service
from vidmorph.service.context import AppContext

RUNWAY_SCHEME = "runway://upload/"
#: Runway's own limits on data URIs, decoded
DATA_URI_MAX_BYTES = {"video": 16 * 2**20, "image": 5 * 2**20}
#: how long a `runway://` URI names its upload
UPLOAD_LIFETIME = timedelta(hours=24)


def asset_for_uri(
    ctx: AppContext, user: User, email: str, uri: str, field: str, media_type: str = "video"
) -> Asset:
    """The asset `uri` names, made from it if need be; BadRequest naming `field` otherwise."""
    if uri.startswith("runway://"):
        found = _uploaded(ctx, user, email, uri, field, media_type)
        if found.media_type != media_type:
            raise errors.BadRequest(
                f"{field}: this upload is {_a(found.media_type)}, not {_a(media_type)}."
            )
        return found
    if uri.startswith("data:"):
        return _from_data_uri(ctx, user, email, uri, field, media_type)
    path = _temp_path(ctx)
    limit = ctx.settings.max_upload_bytes
    try:
        with _fetch_slot(user.id):
            content_type = fetch_to_file(
                uri,
                path,
                allow_private=ctx.settings.callback_allow_private,
                max_bytes=limit,
                total_s=ctx.settings.fetch_total_s,
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    name = Path(uri.split("?")[0]).stem[:200] or field
    try:
        content_type = _content_type(content_type, uri, media_type, field)
    except errors.BadRequest:
        path.unlink(missing_ok=True)
        raise
    return _ingest(ctx, user, email, name, content_type, path, field)


#: URL fetches at once, per user and per process: each holds one of the API's threads for
#: up to VIDMORPH_FETCH_TOTAL_S, so one user's slow hosts must not hold them all
FETCHES_PER_USER, FETCHES_PER_PROCESS = 2, 8
_fetching: Counter[int] = Counter()
_fetching_lock = threading.Lock()


@contextlib.contextmanager
def _fetch_slot(user_id: int) -> Iterator[None]:
    with _fetching_lock:
        if _fetching[user_id] >= FETCHES_PER_USER:
            raise errors.TooManyRequests(
                f"At most {FETCHES_PER_USER} of your media URLs are fetched at once; try again"
                " when one is done."
            )
        if _fetching.total() >= FETCHES_PER_PROCESS:
            raise errors.ServiceUnavailable("Too many media URLs are being fetched; try again.")
        _fetching[user_id] += 1
    try:
        yield
    finally:
        with _fetching_lock:
            _fetching[user_id] -= 1
            if not _fetching[user_id]:
                del _fetching[user_id]


def discard(ctx: AppContext, asset: Asset) -> None:
    """Remove an asset a refused (or reference-only) URI brought in: its row and its files."""
    ctx.assets.delete(asset.user_id, asset.uuid)
    asset_service.delete_files(ctx, asset)


def _uploaded(
    ctx: AppContext, user: User, email: str, uri: str, field: str, media_type: str
) -> Asset:
    uuid = uri.removeprefix(RUNWAY_SCHEME)
    upload = ctx.uploads.get(uuid, user.id) if uri.startswith(RUNWAY_SCHEME) else None
    if upload is None:
        raise errors.BadRequest(f"{field}: no upload has this runway:// URI.")
    if upload.expires_at < utcnow():
        raise errors.BadRequest(f"{field}: this upload expired (runway:// URIs last 24 hours).")
    if upload.asset_uuid is None:
        # The bytes went straight to object storage (a presigned POST): probe them now.
        with contextlib.ExitStack() as stack:
            try:
                copy = ctx.storage.local_copy(upload.storage_key, ctx.tmp_dir)
                stored = stack.enter_context(copy)
            except FileNotFoundError:
                raise errors.BadRequest(f"{field}: nothing was uploaded to this URI yet.") from None
            path = _temp_path(ctx)
            try:
                shutil.copyfile(stored, path)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        content_type = _content_type("", upload.filename, media_type, field)
        made = _ingest(ctx, user, email, Path(upload.filename).stem, content_type, path, field)
        if ctx.uploads.set_asset(upload.uuid, made.uuid):
            ctx.storage.delete(upload.storage_key)
            return made
        asset_service.delete(ctx, user, made.asset_id)  # another request made it first
        upload = ctx.uploads.get(uuid, user.id)
        assert upload is not None and upload.asset_uuid is not None
    found = ctx.assets.get(user.id, upload.asset_uuid)
    if found is None:
        raise errors.BadRequest(f"{field}: the uploaded file was deleted.")
    return found


def _from_data_uri(
    ctx: AppContext, user: User, email: str, uri: str, field: str, media_type: str
) -> Asset:
    head, sep, payload = uri.partition(",")
    content_type = head.removeprefix("data:").split(";")[0].strip().lower()
    if not sep or not head.endswith(";base64"):
        raise errors.BadRequest(f"{field}: a data URI must be base64 (data:video/mp4;base64,...).")
    if content_type and not content_type.startswith(f"{media_type}/"):
        raise errors.BadRequest(
            f"{field}: this data URI holds {content_type}; it must be {_a(media_type)} "
            f"(data:{media_type}/...;base64,...)."
        )
    limit = DATA_URI_MAX_BYTES[media_type]
    if len(payload) > limit * 4 // 3 + 4:
        # a 400, as Runway answers it: the body was within its limit, the URI in it is not
        raise errors.BadRequest(f"{field}: a data URI may hold at most {limit} bytes.")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise errors.BadRequest(f"{field}: the data URI is not valid base64.") from None
    path = _temp_path(ctx)
    path.write_bytes(data)
    return _ingest(ctx, user, email, field, content_type or f"{media_type}/mp4", path, field)


def _ingest(
    ctx: AppContext, user: User, email: str, name: str, content_type: str, path: Path, field: str
) -> Asset:
    try:
        return asset_service.ingest(ctx, user, email, name, content_type, path)
    except errors.BadRequest as exc:
        raise type(exc)(f"{field}: {exc.public_message}") from None


def _content_type(announced: str, name: str, media_type: str, field: str) -> str:
    """The type to ingest a fetched or uploaded file as: the announced one, else the one its
    name suggests, else the field's usual one; BadRequest when either says another kind."""
    base = announced.split(";")[0].strip().lower()
    if base.startswith(f"{media_type}/"):
        return base
    if base.startswith(("video/", "image/")):
        raise errors.BadRequest(f"{field}: this is {base}; it must be {_a(media_type)}.")
    guessed = mimetypes.guess_type(name.split("?")[0])[0] or ""
    if guessed.startswith(("video/", "image/")) and not guessed.startswith(f"{media_type}/"):
        raise errors.BadRequest(f"{field}: {guessed} by its name; it must be {_a(media_type)}.")
    if guessed in VIDEO_TYPES or guessed in IMAGE_TYPES:
        return guessed
    # No kind is said, or one this server does not name: the probe decides (a file of the
    # other kind is then a 400 naming the field).
    return "video/mp4" if media_type == "video" else "image/png"


def _temp_path(ctx: AppContext) -> Path:
    with tempfile.NamedTemporaryFile(dir=ctx.tmp_dir, prefix="source-", delete=False) as tmp:
        return Path(tmp.name)


def _a(media_type: str) -> str:
    return f"an {media_type}" if media_type == "image" else f"a {media_type}"
