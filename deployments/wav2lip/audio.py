"""Mel features exactly as the official Wav2Lip `audio.py` / `hparams.py` compute them, and per-frame windows.

Any deviation here (power instead of magnitude, zero STFT padding, other normalisation) silently degrades
lip sync, because the network was trained on these exact features.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import librosa
import numpy as np
from scipy.signal import lfilter

from deployments.contract import MediaLimits
from deployments.media import decode_audio, probe
from deployments.wav2lip.network import MEL_BINS, MEL_STEPS

SAMPLE_RATE = 16_000
N_FFT, HOP, WIN = 800, 200, 800
_FMIN, _FMAX = 55, 7600
_PREEMPHASIS = 0.97
_REF_LEVEL_DB, _MIN_LEVEL_DB = 20.0, -100.0
_MAX_ABS = 4.0


@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    # keyword arguments: the positional form breaks on librosa >= 0.10
    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=MEL_BINS, fmin=_FMIN, fmax=_FMAX)


def load_wav(path: Path, limits: MediaLimits | None = None) -> np.ndarray:
    """16 kHz mono float32, as the official `librosa.load(path, sr=16000)`: decoded at the source's own rate,
    channels averaged, then librosa's default resampler (soxr_hq). swresample's differs by up to 0.4 in the mel."""
    wav, rate = decode_audio(path, sample_rate=None, limits=limits)[0], probe(path).sample_rate
    if rate == SAMPLE_RATE:
        return wav
    return librosa.resample(wav, orig_sr=rate, target_sr=SAMPLE_RATE, res_type="soxr_hq").astype(np.float32)


def melspectrogram(wav: np.ndarray) -> np.ndarray:
    """(80, 1 + len(wav) // 200) float32 mel spectrogram in [-4, 4] of a 16 kHz mono waveform."""
    emphasised = lfilter([1, -_PREEMPHASIS], [1], wav)
    # pad_mode="reflect": librosa 0.7 (the training version) padded this way; newer librosa pads with zeros
    spec = librosa.stft(y=emphasised, n_fft=N_FFT, hop_length=HOP, win_length=WIN, pad_mode="reflect")
    mel = _mel_basis() @ np.abs(spec)
    min_level = np.exp(_MIN_LEVEL_DB / 20 * np.log(10))  # 1e-5
    db = 20 * np.log10(np.maximum(min_level, mel)) - _REF_LEVEL_DB
    normalised = 2 * _MAX_ABS * (db - _MIN_LEVEL_DB) / -_MIN_LEVEL_DB - _MAX_ABS
    return np.clip(normalised, -_MAX_ABS, _MAX_ABS).astype(np.float32)


def frame_count(num_samples: int, fps: float) -> int:
    """Output frames for an audio track: its duration at `fps`, rounded, so video and audio end together."""
    return max(1, round(num_samples / SAMPLE_RATE * fps))


def window_starts(num_mel_frames: int, fps: float, frames: int) -> np.ndarray:
    """First mel column of each video frame's 16-column window, indexed as the official inference.py does.

    Frame i starts at int(i * 80 / fps); once a window would run past the end, the final 16 columns are
    used. The official script stops at that first overrun (its video ends ~0.2 s before the audio); we
    keep using the final window until `frames`, so the video lasts as long as the audio.
    """
    if num_mel_frames < MEL_STEPS:
        raise ValueError(f"audio gives {num_mel_frames} mel frames; at least {MEL_STEPS} (0.2 s) are needed")
    multiplier = 80.0 / fps  # the same float operations as the original, so int() truncates identically
    starts = np.array([int(i * multiplier) for i in range(frames)], dtype=np.int64)
    return np.minimum(starts, num_mel_frames - MEL_STEPS)


def mel_windows(mel: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(len(starts), 80, 16) windows of `mel` beginning at `starts`."""
    return np.stack([mel[:, s : s + MEL_STEPS] for s in starts]) if len(starts) else np.empty((0, MEL_BINS, MEL_STEPS))
