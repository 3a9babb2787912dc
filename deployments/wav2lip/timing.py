"""What a job does when the audio and the face video last differently long (`sync_mode`, as the hosted APIs).

A mode gives the output's frame count and, for every output frame, the source video frame it shows. The audio is
never stretched: `cut_off` trims it, `silence` pads (or trims) it to the video, the other modes keep it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Literal

import numpy as np

from deployments.media import MediaError

SyncMode = Literal["loop", "bounce", "remap", "cut_off", "silence"]


def output_frames(mode: SyncMode, sources: int, audio_frames: int) -> int:
    """Frames of the output: the audio's length, except `cut_off` (the shorter) and `silence` (the video's)."""
    if mode == "cut_off":
        return min(sources, audio_frames)
    if mode == "silence":
        return sources
    return audio_frames


def source_order(mode: SyncMode, sources: int, total: int) -> np.ndarray:
    """Index of the source frame shown at each of `total` output frames."""
    steps = np.arange(total)
    if sources == 1:
        return np.zeros(total, np.int64)
    if mode == "bounce":  # 0 1 .. n-1 n-2 .. 1 0 1 ..: the end frames are not shown twice in a row
        period = 2 * sources - 2
        phase = steps % period
        return np.where(phase < sources, phase, period - phase)
    if mode == "remap":  # the whole video stretched (or squeezed) over the output: every frame, in order
        return (steps * sources) // total
    return steps % sources  # loop; cut_off and silence never run past the video's end


def reads_whole_video(mode: SyncMode) -> bool:
    """Whether the mode needs the video's frame count (else it is read only as far as the audio shows it)."""
    return mode in ("remap", "silence")


def fit_audio(samples: np.ndarray, length: int) -> np.ndarray:
    """`samples` (..., n) cut or padded with silence (zeros) to `length` samples."""
    if samples.shape[-1] >= length:
        return samples[..., :length]
    pad = [(0, 0)] * (samples.ndim - 1) + [(0, length - samples.shape[-1])]
    return np.pad(samples, pad)


def ordered_frames(
    decode: Callable[[], Generator[np.ndarray, None, None]], order: np.ndarray, hold: int
) -> Iterator[np.ndarray]:
    """Writable frames in `order`, decoding again from the start for each run (streams cannot seek back).

    A forward run streams; a backward run (`bounce`) is read `hold` frames at a time and played in reverse,
    so memory stays at `hold` frames whatever the video's length.
    """
    for run in _runs(order):
        if len(run) == 1 or run[1] >= run[0]:
            yield from _forward(decode, run)
        else:
            for top in range(0, len(run), hold):
                chunk = run[top : top + hold]  # descending source indices
                kept = _forward(decode, chunk[::-1])
                yield from reversed(list(kept))


def _runs(order: np.ndarray) -> list[np.ndarray]:
    """`order` split where its direction changes (a repeat continues a forward run)."""
    runs, start = [], 0
    for i in range(1, len(order) + 1):
        if i == len(order) or not _continues(order, start, i):
            runs.append(order[start:i])
            start = i
    return runs


def _continues(order: np.ndarray, start: int, i: int) -> bool:
    if i - start == 1:
        return True
    forward = order[start + 1] >= order[start]
    return order[i] >= order[i - 1] if forward else order[i] < order[i - 1]


def _forward(decode: Callable[[], Generator[np.ndarray, None, None]], run: np.ndarray) -> Iterator[np.ndarray]:
    """The frames of a non-decreasing `run` of source indices, each a fresh copy (pasted into in place)."""
    frames, position, frame = decode(), -1, None
    try:
        for index in run:
            while position < index:
                frame = next(frames, None)
                if frame is None:  # a file that decodes to fewer frames on a second read
                    raise MediaError(f"the video ended at frame {position + 1} when read again")
                position += 1
            yield frame.copy()
    finally:
        frames.close()  # releases the decoder of a run that stops before the video's end
