"""The media types Vidmorph takes and serves: each Content-Type's extension, each probed
format's types, and the type a stored file is served with."""

from __future__ import annotations

import mimetypes

# compat(useapi §3): the contract's video types; images are accepted too.
VIDEO_TYPES = {
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/3gpp": "3gp",
    "video/x-matroska": "mkv",
    "video/x-flv": "flv",
    "video/mpeg": "mpeg",
    "video/mp2t": "ts",
    "video/x-msvideo": "avi",
    "video/x-motion-jpeg": "mjpeg",
    "video/webm": "webm",
    "video/ogg": "ogv",
}
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}
#: what an image is by its probed codec: (Content-Type, extension)
IMAGE_BY_CODEC = {
    "png": ("image/png", "png"),
    "mjpeg": ("image/jpeg", "jpg"),
    "gif": ("image/gif", "gif"),
    "webp": ("image/webp", "webp"),
}
# compat(useapi §3): audio is kept as an asset (no engine here takes it as a task's input).
AUDIO_TYPES = {
    "audio/wav": "wav",
    "audio/wave": "wav",
    "audio/x-wav": "wav",
    "audio/mpeg": "mp3",
    "audio/flac": "flac",
    "audio/ogg": "ogg",
    "audio/webm": "webm",
}

#: each demuxer's own types, the first its usual one: an upload announced as one of them is
#: kept as announced (MP4 and MOV are one demuxer), any other as the first
TYPES_BY_DEMUXER = {
    "mov": ("video/mp4", "video/quicktime", "video/3gpp"),
    "matroska": ("video/x-matroska", "video/webm", "audio/webm"),
    "avi": ("video/x-msvideo",),
    "flv": ("video/x-flv",),
    "mpeg": ("video/mpeg",),
    "mpegts": ("video/mp2t",),
    "ogg": ("video/ogg", "audio/ogg"),
    "mjpeg": ("video/x-motion-jpeg",),
    "mpjpeg": ("video/x-motion-jpeg",),
    "wav": ("audio/wav", "audio/wave", "audio/x-wav"),
    "mp3": ("audio/mpeg",),
    "flac": ("audio/flac",),
}
#: codecs a WebM file may hold: Matroska with only these is WebM
WEBM_CODECS = frozenset({"vp8", "vp9", "av1", "opus", "vorbis"})
#: every type's extension
EXTENSIONS = {**VIDEO_TYPES, **IMAGE_TYPES, **AUDIO_TYPES, "image/webp": "webp"}
#: what a stored file is served as, by its extension (the first type of each)
_BY_EXTENSION = {ext: t for t, ext in reversed(EXTENSIONS.items())}


def served_type(name: str) -> str:
    """The Content-Type a stored file named `name` (`video.mp4`, `audio.webm`, `preview.jpg`:
    its kind, then its extension) is served with: its own format's, audio as audio."""
    kind, _, ext = name.rpartition("/")[2].rpartition(".")
    if kind == "audio" and ext in ("webm", "ogg"):
        return f"audio/{ext}"
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return _BY_EXTENSION.get(ext.lower(), guessed)
