"""Mel features follow the official recipe; each video frame gets the official inference window."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import lfilter
from wav2lip_inputs import speech_like

from deployments.wav2lip import audio


def test_mel_shape_range_and_frame_count() -> None:
    wav = speech_like(1.3)  # 20_800 samples
    mel = audio.melspectrogram(wav)
    assert mel.shape == (80, 1 + len(wav) // 200) == (80, 105)
    assert mel.dtype == np.float32
    assert mel.min() >= -4.0 and mel.max() <= 4.0
    assert mel.std() > 0.5  # speech-like input spreads over the range, not a constant


def test_silence_sits_at_the_floor() -> None:
    assert np.all(audio.melspectrogram(np.zeros(8000, np.float32)) == -4.0)


def test_a_tone_peaks_in_its_mel_band() -> None:
    t = np.arange(16_000) / 16_000
    mel = audio.melspectrogram(0.5 * np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    centres = librosa.mel_frequencies(n_mels=82, fmin=55, fmax=7600)[1:-1]
    assert abs(centres[mel[:, 40].argmax()] - 1000) < 60


def test_matches_an_independent_librosa_computation() -> None:
    """Magnitude (power=1) mels of the pre-emphasised signal with reflect padding, then the official dB scaling."""
    wav = speech_like(0.5)
    mag = librosa.feature.melspectrogram(
        y=lfilter([1, -0.97], [1], wav), sr=16_000, n_fft=800, hop_length=200, win_length=800, power=1.0,
        n_mels=80, fmin=55, fmax=7600, pad_mode="reflect",
    )  # fmt: skip
    db = 20 * np.log10(np.maximum(1e-5, mag)) - 20
    expected = np.clip(8 * (db + 100) / 100 - 4, -4, 4)
    np.testing.assert_allclose(audio.melspectrogram(wav), expected, atol=1e-4)


def _official_starts(num_mel: int, fps: float) -> list[int]:
    """inference.py's loop, verbatim in behaviour: stop at the first window that would overrun."""
    starts, i, step = [], 0, 80.0 / fps
    while True:
        start = int(i * step)
        if start + 16 > num_mel:
            return [*starts, num_mel - 16]
        starts.append(start)
        i += 1


@pytest.mark.parametrize("fps", [25.0, 29.97, 30.0, 24.0])
def test_windows_follow_official_indexing_then_hold_the_last(fps: float) -> None:
    samples = 16_000 * 2 + 123
    num_mel = 1 + samples // 200
    frames = audio.frame_count(samples, fps)
    starts = audio.window_starts(num_mel, fps, frames)
    official = _official_starts(num_mel, fps)
    assert frames == round(samples / 16_000 * fps)
    assert starts.tolist()[: len(official)] == official
    assert set(starts.tolist()[len(official) :]) <= {num_mel - 16}
    windows = audio.mel_windows(np.arange(80 * num_mel, dtype=np.float32).reshape(80, num_mel), starts)
    assert windows.shape == (frames, 80, 16)
    assert windows[-1, 0, -1] == num_mel - 1  # the last frame sees the end of the audio


def test_audio_shorter_than_one_window_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        audio.window_starts(10, 25.0, 1)


def test_a_44k_stereo_file_gives_the_mel_of_librosa_load_at_16k(tmp_path) -> None:
    """The official recipe reads audio with librosa.load(path, sr=16000): mono average, then soxr_hq."""
    t = np.arange(int(1.5 * 44_100)) / 44_100
    left = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    right = 0.2 * np.sin(2 * np.pi * 3150 * t) + np.random.default_rng(1).normal(0, 0.02, t.shape)
    path = tmp_path / "stereo44k.wav"
    wavfile.write(path, 44_100, (np.stack([left, right], axis=1) * 32767).astype(np.int16))
    reference, _ = librosa.load(path, sr=16_000)
    ours = audio.load_wav(path)
    assert ours.shape == reference.shape
    assert np.abs(audio.melspectrogram(ours) - audio.melspectrogram(reference)).max() <= 1e-4
