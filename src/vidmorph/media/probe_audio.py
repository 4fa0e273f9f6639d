"""Probing audio uploads (useapi's audio asset types: WAV, MP3, FLAC, Ogg, WebM).

The same rules as `probe` for video: only the demuxers of those types, every packet demuxed
(no decoding) to catch a file cut short, decoding only until the first samples come out.
"""

from __future__ import annotations

from pathlib import Path

import av
from av.audio.stream import AudioStream

from vidmorph.errors import InvalidMedia
from vidmorph.media.probe import MediaInfo, open_media

#: demuxers of the contract's audio types; none follows links to other files
AUDIO_DEMUXERS = "wav,mp3,flac,ogg,matroska,webm"

UNREADABLE_AUDIO = "The file is not a readable audio file (WAV, MP3, FLAC, Ogg or WebM)."
NO_AUDIO = "The file has no audio stream."
AUDIO_TRUNCATED = "The audio is truncated or corrupt."
NO_SAMPLES = "The audio has no decodable samples."


def probe_audio(path: Path) -> MediaInfo:
    """Describe the audio file `path`, or raise `InvalidMedia` if it is not a whole,
    decodable one. A file that also holds pictures (WebM with video, MP3 with cover art) is
    described by its first audio stream."""
    with open_media(path, AUDIO_DEMUXERS, UNREADABLE_AUDIO) as container:
        if not container.streams.audio:
            raise InvalidMedia(NO_AUDIO)
        stream = container.streams.audio[0]
        if stream.codec_context is None:  # a file cut inside its index
            raise InvalidMedia(AUDIO_TRUNCATED)
        decoded, end_s = False, 0.0
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                if packet.is_corrupt:
                    raise InvalidMedia(AUDIO_TRUNCATED)
                end_s = max(end_s, float((packet.pts + (packet.duration or 0)) * packet.time_base))
                if not decoded:
                    decoded = _decodes(stream, packet)
        except av.FFmpegError as error:
            raise InvalidMedia(AUDIO_TRUNCATED) from error
        if not decoded and not _decodes(stream, None):  # frames the decoder held back
            raise InvalidMedia(NO_SAMPLES)
        # The header's length (FLAC's sample count, MP3's Xing frames, WebM's segment
        # duration) against the last packet: a file cut short still demuxes, to its cut.
        declared_s = None
        if stream.duration and stream.time_base:
            declared_s = float(stream.duration * stream.time_base)
        elif container.format.name.startswith("matroska") and container.duration:
            declared_s = container.duration / av.time_base
        if declared_s is not None and end_s < declared_s - max(0.1, 0.02 * declared_s):
            raise InvalidMedia(AUDIO_TRUNCATED)
        duration_s = end_s if declared_s is None else declared_s
        return MediaInfo(
            media_type="audio",
            duration_s=duration_s,
            fps=0.0,
            width=0,
            height=0,
            has_audio=True,
            has_alpha=False,
            codec=stream.codec_context.name,
            size_bytes=path.stat().st_size,
            container=container.format.name.split(",")[0],
        )


def _decodes(stream: AudioStream, packet: av.Packet[AudioStream] | None) -> bool:
    try:
        return bool(stream.decode(packet))
    except av.FFmpegError:
        return False
