"""Probing uploads: open a file safely, check it is a whole, decodable video or image, describe it.

Every refusal is an `InvalidMedia` whose message a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
from av.container import InputContainer
from av.stream import Stream
from av.video.stream import VideoStream

from vidmorph.errors import InvalidMedia

MediaType = Literal["video", "image", "audio"]

# Only demuxers for the contract's video and image types. Others (hls, concat, tty...) would
# follow links inside the file to other files or URLs, or read any text file as "video".
ALLOWED_DEMUXERS = (
    "mov,matroska,webm,avi,flv,mpeg,mpegts,ogg,mjpeg,mpjpeg,gif,png_pipe,jpeg_pipe,webp_pipe,image2"
)
_IMAGE_DEMUXERS = frozenset({"gif", "png_pipe", "jpeg_pipe", "webp_pipe", "image2"})
# Headers that declare the duration up front, so a missing tail shows as missing packets.
_DECLARED_DURATION_DEMUXERS = frozenset({"matroska", "flv"})
_VIDEO_MAGICS = (b"ftyp", b"moov", b"mdat", b"free", b"wide")
_IMAGE_PREFIXES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8")

#: streams a file may hold (a video, its audio, subtitles and the like; not hundreds)
MAX_STREAMS = 16
EMPTY = "The file is empty."
UNREADABLE = "The file is not a readable video or image."
TRUNCATED = "The video is truncated or corrupt."
IMAGE_CORRUPT = "The image is truncated or corrupt."
NO_VIDEO = "The file has no video stream."
NO_FRAMES = "The video has no decodable frames."


@dataclass(frozen=True)
class MediaInfo:
    """What an upload holds. Width and height are as displayed (after any rotation flag)."""

    media_type: MediaType
    duration_s: float
    fps: float
    width: int
    height: int
    has_audio: bool
    has_alpha: bool
    codec: str
    size_bytes: int
    #: the demuxer that read it, FFmpeg's first name for it: "mov" (MP4, MOV, 3GP), "matroska"
    #: (MKV, WebM), "avi", "wav"...
    container: str = ""
    #: an ISO/QuickTime file's major brand ("isom", "mp42", "qt", "3gp4"...), "" for others
    brand: str = ""


@dataclass
class _Demuxed:
    """Totals from one pass over every packet of the file."""

    video_packets: int = 0
    corrupt_packets: int = 0
    first_video_s: float | None = None
    end_video_s: float = 0.0
    end_any_s: float = 0.0
    first_frame: av.VideoFrame | None = None


def open_media(
    path: Path, demuxers: str = ALLOWED_DEMUXERS, unreadable: str | None = None
) -> InputContainer:
    """Open `path` with only `demuxers` (the video and image ones by default); an empty or
    unreadable file raises `InvalidMedia`, with `unreadable` as the message when given (else
    one that tells a damaged video or image from neither)."""
    try:
        size_bytes = path.stat().st_size
    except OSError as error:
        raise InvalidMedia(unreadable or UNREADABLE) from error
    if size_bytes == 0:
        raise InvalidMedia(EMPTY)
    try:
        return av.open(str(path), options={"format_whitelist": demuxers})
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise InvalidMedia(unreadable or _unreadable_message(path)) from error


def _unreadable_message(path: Path) -> str:
    """A file that starts like a known container but will not open was cut short or damaged."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if head[4:8] in _VIDEO_MAGICS or head.startswith((b"\x1a\x45\xdf\xa3", b"FLV", b"OggS")):
        return TRUNCATED
    if head.startswith(_IMAGE_PREFIXES):
        return IMAGE_CORRUPT
    return UNREADABLE


def probe(path: Path, *, max_pixels: int | None = None) -> MediaInfo:
    """Describe `path`, or raise `InvalidMedia` if it is not a whole, decodable video or image,
    or if its frames are larger than `max_pixels` (width x height).

    The size comes from the header, before anything is decoded (and the decoder itself is
    told the limit, for headers that do not say). Demuxes every packet (cheap: no decoding) to
    catch files cut short, and decodes only until the first video frame comes out.
    """
    with open_media(path) as container:
        if not container.streams.video:
            raise InvalidMedia(NO_VIDEO)
        stream = container.streams.video[0]
        if not _has_codec(container):
            raise InvalidMedia(TRUNCATED)
        if len(container.streams) > MAX_STREAMS:
            raise InvalidMedia(
                f"The file holds {len(container.streams)} streams; at most {MAX_STREAMS} are taken."
            )
        if max_pixels is not None:
            # every video stream, not only the one rendered: the file may be passed on whole
            for each in container.streams.video:
                if each.codec_context is not None:
                    _check_pixels(each.codec_context.width, each.codec_context.height, max_pixels)
            stream.codec_context.options = {"max_pixels": str(max_pixels)}
        demuxed = _demux_all(container, stream)
        frame = demuxed.first_frame
        if frame is not None and max_pixels is not None:
            _check_pixels(frame.width, frame.height, max_pixels)
        is_image = container.format.name in _IMAGE_DEMUXERS and demuxed.video_packets == 1
        if frame is None:
            raise InvalidMedia(IMAGE_CORRUPT if is_image else NO_FRAMES)
        if not is_image:
            _check_complete(container, stream, demuxed)
        quarter_turn = abs(frame.rotation) % 180 == 90
        width, height = (frame.height, frame.width) if quarter_turn else (frame.width, frame.height)
        return MediaInfo(
            media_type="image" if is_image else "video",
            duration_s=0.0 if is_image else _duration_s(stream, demuxed),
            fps=0.0 if is_image else _fps(stream, demuxed),
            width=width,
            height=height,
            has_audio=bool(container.streams.audio),
            has_alpha=_has_alpha(frame),
            codec=stream.codec_context.name,
            size_bytes=path.stat().st_size,
            container=container.format.name.split(",")[0],
            brand=str(container.metadata.get("major_brand", "")).strip()[:16],
        )


def _has_codec(container: InputContainer) -> bool:
    """Whether the first video and audio streams say what codec they hold: a file cut inside
    its index (an MP4's moov) can list a stream with none, which nothing can decode."""
    return all(
        streams[0].codec_context is not None
        for streams in (container.streams.video, container.streams.audio)
        if streams
    )


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InvalidMedia(
            f"The frames are {width}x{height} ({width * height / 1e6:.1f} megapixels); this "
            f"server takes at most {max_pixels / 1e6:.1f} megapixels per frame."
        )


def _demux_all(container: InputContainer, stream: VideoStream) -> _Demuxed:
    demuxed = _Demuxed()
    try:
        for packet in container.demux():
            if packet.size == 0 or packet.pts is None:
                continue
            end_s = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            demuxed.end_any_s = max(demuxed.end_any_s, end_s)
            if packet.stream.index != stream.index:
                continue
            demuxed.video_packets += 1
            demuxed.corrupt_packets += packet.is_corrupt
            start_s = float(packet.pts * packet.time_base)
            if demuxed.first_video_s is None or start_s < demuxed.first_video_s:
                demuxed.first_video_s = start_s
            demuxed.end_video_s = max(demuxed.end_video_s, end_s)
            if demuxed.first_frame is None:
                demuxed.first_frame = _try_decode(stream, packet)
    except av.FFmpegError as error:
        raise InvalidMedia(TRUNCATED) from error
    if demuxed.first_frame is None:
        demuxed.first_frame = _try_decode(stream, None)  # flush frames the decoder held back
    return demuxed


def _try_decode(stream: VideoStream, packet: av.Packet[Stream] | None) -> av.VideoFrame | None:
    """The first frame `packet` yields; a damaged packet yields none (later ones may decode)."""
    try:
        frames = stream.decode(packet)
    except av.FFmpegError:
        return None
    return frames[0] if frames else None


def _check_complete(container: InputContainer, stream: VideoStream, demuxed: _Demuxed) -> None:
    """Refuse files whose packets stop short of what the header promised."""
    if demuxed.corrupt_packets:
        raise InvalidMedia(TRUNCATED)
    if stream.frames and demuxed.video_packets < stream.frames:
        raise InvalidMedia(TRUNCATED)
    if container.format.name.split(",")[0] in _DECLARED_DURATION_DEMUXERS and container.duration:
        declared_s = container.duration / av.time_base
        start_s = (container.start_time or 0) / av.time_base
        fps = _fps(stream, demuxed)
        frame_s = 1 / fps if fps else 0.0
        # Allow a couple of frames of rounding between the header and the last packet.
        if start_s + declared_s - demuxed.end_any_s > 2 * frame_s + 0.01 * declared_s:
            raise InvalidMedia(TRUNCATED)


def _has_alpha(frame: av.VideoFrame) -> bool:
    """Whether the first frame is see-through anywhere (GIFs always decode with an alpha plane)."""
    if not any(component.is_alpha for component in frame.format.components):
        return False
    alpha = frame.to_ndarray(format="rgba")[..., 3]
    return bool(alpha.min() < 255)


def _duration_s(stream: VideoStream, demuxed: _Demuxed) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return max(0.0, demuxed.end_video_s - (demuxed.first_video_s or 0.0))


def _fps(stream: VideoStream, demuxed: _Demuxed) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if rate:
        return float(rate)
    span_s = demuxed.end_video_s - (demuxed.first_video_s or 0.0)
    return demuxed.video_packets / span_s if span_s > 0 else 0.0
