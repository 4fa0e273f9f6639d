"""Runway API uploads: `POST /v1/uploads` makes a form target, the file arrives there.

The SDK posts the form (the given `fields` and the file as `file`) with no Authorization
header, so the target itself is the credential: S3's presigned POST where media live in S3,
else Vidmorph's own `POST /v1/uploads/{uuid}?expires=&sig=`, signed with the fleet's URL key
for that one upload, expiring after `FORM_TTL_S`, and refused once it has been used.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from pathlib import Path
from typing import Any

from vidmorph import errors
from vidmorph.domain import ids
from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import User
from vidmorph.service import accounts
from vidmorph.service import assets as asset_service
from vidmorph.service.context import AppContext
from vidmorph.service.sources import RUNWAY_SCHEME, UPLOAD_LIFETIME
from vidmorph.store.uploads import Upload

#: how long an upload target takes a file
FORM_TTL_S = 3600
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def create(ctx: AppContext, user: User, filename: str) -> dict[str, Any]:
    """`{runwayUri, uploadUrl, fields}` for a new ephemeral upload of `filename`; NotFound
    for a user with no account to keep it in (the link could never be used)."""
    accounts.default_account(ctx, user)
    uuid = ids.new_uuid()
    safe = _UNSAFE.sub("_", filename)[-100:].lstrip(".") or "upload"
    key = f"uploads/{user.id}/{uuid}/{safe}"
    now = utcnow()
    form = ctx.storage.upload_form(key, ctx.settings.max_upload_bytes, FORM_TTL_S)
    if form is None:
        expires = int(time.time()) + FORM_TTL_S
        base = f"{ctx.settings.public_url}/v1/uploads/{uuid}"
        form = (f"{base}?expires={expires}&sig={_sign(ctx, uuid, expires)}", {})
    ctx.uploads.add(
        Upload(
            uuid=uuid,
            user_id=user.id,
            filename=filename,
            storage_key=key,
            asset_uuid=None,
            created_at=now,
            expires_at=now + UPLOAD_LIFETIME,
        )
    )
    url, fields = form
    return {"runwayUri": f"{RUNWAY_SCHEME}{uuid}", "uploadUrl": url, "fields": fields}


def check_target(ctx: AppContext, uuid: str, expires: int, sig: str) -> Upload:
    """The upload this signed target is for; NotFound for a wrong, expired or used one (the
    same answer for each, so a guess learns nothing)."""
    good = expires >= time.time() and hmac.compare_digest(
        _sign(ctx, uuid, expires).encode(), sig.encode()
    )
    upload = ctx.uploads.get(uuid) if good else None
    if upload is None or upload.asset_uuid is not None:
        raise errors.NotFound("This upload link has expired or is not valid.")
    return upload


def receive(ctx: AppContext, upload: Upload, file: Path, content_type: str) -> None:
    """Probe the posted file into an asset of the uploader's default account."""
    owner = ctx.users.get(upload.user_id)
    if owner is None:
        file.unlink(missing_ok=True)
        raise errors.NotFound("This upload link has expired or is not valid.")
    account = accounts.default_account(ctx, owner)
    if not content_type.startswith(("video/", "image/")):
        content_type = asset_service.content_type_for(upload.filename)
    asset = asset_service.ingest(
        ctx, owner, account.email, Path(upload.filename).stem, content_type, file
    )
    if not ctx.uploads.set_asset(upload.uuid, asset.uuid):  # a second post raced this one
        asset_service.delete(ctx, owner, asset.asset_id)
        raise errors.NotFound("This upload link has expired or is not valid.")


def _sign(ctx: AppContext, uuid: str, expires: int) -> str:
    message = f"upload\n{uuid}\n{expires}".encode()
    return hmac.new(ctx.url_key, message, hashlib.sha256).hexdigest()
