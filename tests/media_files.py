"""Small real input files built in code, for tests whose runner ignores the pixels and samples."""

from __future__ import annotations

import io
import math
import struct
import wave

from PIL import Image


def png_bytes(size: int = 48, colour: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    """A square one-colour PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def wav_bytes(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    """A mono 16-bit 220 Hz sine tone: a real audio file for the input checks."""
    samples = (int(12_000 * math.sin(2 * math.pi * 220 * i / rate)) for i in range(int(seconds * rate)))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buffer.getvalue()


def face_png_bytes(size: int = 160) -> bytes:
    """A photo with a face (skimage's astronaut): Wav2Lip refuses a still image in which its detector finds none."""
    from tests.deployments.wav2lip.wav2lip_inputs import astronaut

    buffer = io.BytesIO()
    Image.fromarray(astronaut(size)[..., ::-1]).save(buffer, format="PNG")
    return buffer.getvalue()
