"""probe_audio(): the contract's audio types described, and the files it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.videos import AUDIO_FORMATS, make_audio, make_image, make_video
from vidmorph.errors import InvalidMedia
from vidmorph.media.probe_audio import (
    AUDIO_TRUNCATED,
    NO_AUDIO,
    UNREADABLE_AUDIO,
    probe_audio,
)


def _refusal(path: Path) -> str:
    with pytest.raises(InvalidMedia) as caught:
        probe_audio(path)
    assert caught.value.status == 400
    return caught.value.public_message


@pytest.mark.parametrize("suffix", sorted(AUDIO_FORMATS))
def test_each_audio_type_is_described(tmp_path: Path, suffix: str) -> None:
    path = make_audio(tmp_path / f"tone{suffix}", seconds=1.5)
    info = probe_audio(path)
    assert info.media_type == "audio" and info.has_audio
    assert info.duration_s == pytest.approx(1.5, abs=0.03)
    assert (info.width, info.height, info.fps) == (0, 0, 0.0)
    assert info.size_bytes == path.stat().st_size


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".flac", ".webm"])
def test_a_file_cut_in_half_is_refused(tmp_path: Path, suffix: str) -> None:
    whole = make_audio(tmp_path / f"tone{suffix}", seconds=2)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert _refusal(cut) in (AUDIO_TRUNCATED, UNREADABLE_AUDIO)


def test_other_files_are_refused_with_a_reason(tmp_path: Path) -> None:
    silent = make_video(tmp_path / "silent.mp4", seconds=0.5, size=(64, 48))
    assert _refusal(silent) == UNREADABLE_AUDIO  # mp4 is not among the audio demuxers
    # a Matroska file (a demuxer audio shares) of pictures alone
    pictures = make_video(tmp_path / "pictures.mkv", seconds=0.5, size=(64, 48))
    assert _refusal(pictures) == NO_AUDIO
    # pictures with sound: described by the sound
    with_sound = make_video(tmp_path / "both.mkv", seconds=1, size=(64, 48), audio=True)
    assert probe_audio(with_sound).duration_s == pytest.approx(1, abs=0.05)
    assert _refusal(make_image(tmp_path / "still.png")) == UNREADABLE_AUDIO
    text = tmp_path / "notes.wav"
    text.write_bytes(b"RIFF" + b"not really a wave file" * 40)
    assert _refusal(text) == UNREADABLE_AUDIO
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    assert _refusal(empty) == "The file is empty."
