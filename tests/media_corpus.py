"""Hostile and odd media built in code: decompression bombs, lying headers, truncated files, polyglots, absurd
rates, and valid but unusual photos, videos and sounds. Each entry says which input kinds it is valid for
(none, for a hostile file) so a walk through every media field knows the answer to expect."""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Sample:
    """One corpus file: its bytes, the content type a caller would declare, and the kinds it is valid as."""

    name: str
    data: bytes
    content_type: str
    valid_as: frozenset[str] = field(default_factory=frozenset)  # empty: hostile, refused everywhere
    expect: dict = field(default_factory=dict)  # what a reader must see: size (w, h), frames, channels...


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side: int = 40_000) -> bytes:
    """A real bomb: a 1-bit side x side PNG of zeros (200 MB of pixels for 40000, ~200 KB on the wire)."""
    compressor, row = zlib.compressobj(9), b"\0" * (1 + (side + 7) // 8)
    data = b"".join(compressor.compress(row * 1000) for _ in range(side // 1000))
    data += compressor.compress(row * (side % 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def image_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def marked(width: int, height: int) -> Image.Image:
    """An RGB picture whose top-left quarter is red and the rest blue: its orientation can be read back."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 2] = 255
    pixels[: max(1, height // 2), : max(1, width // 2)] = (255, 0, 0)
    return Image.fromarray(pixels)


def jpeg_lie() -> bytes:
    """A small JPEG whose frame header claims 65000x65000, cut after the header."""
    data = bytearray(image_bytes(marked(16, 16), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    return bytes(data[: len(data) // 2])


def webp_bomb() -> bytes:
    """A lossless WebP whose header claims 16384x16384."""
    data = bytearray(image_bytes(marked(16, 16), "WEBP", lossless=True))
    vp8l = data.index(b"VP8L") + 8  # the chunk's payload: signature byte, then 14-bit width-1 and height-1
    bits = int.from_bytes(data[vp8l + 1 : vp8l + 5], "little")
    bits = (bits & ~((1 << 28) - 1)) | 16383 | (16383 << 14)
    data[vp8l + 1 : vp8l + 5] = bits.to_bytes(4, "little")
    return bytes(data)


def gif_bomb(frames: int = 2000) -> bytes:
    """An animated GIF on a 65535x65535 screen, with many 1x1 frames."""
    images = [Image.new("L", (1, 1), 255 * (i % 2)) for i in range(frames)]
    data = bytearray(image_bytes(images[0], "GIF", save_all=True, append_images=images[1:], optimize=False))
    data[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(data)


def wav(rate: int = 16_000, channels: int = 1, seconds: float = 1.0, declared_rate: int | None = None) -> bytes:
    """A PCM WAV of a tone; `declared_rate` writes another rate into the header than the samples have."""
    t = np.arange(int(rate * seconds)) / rate
    tone = (np.sin(2 * np.pi * 220 * t) * 12_000).astype("<i2")
    samples = np.repeat(tone[:, None], channels, axis=1).tobytes()
    head_rate = declared_rate or rate
    fmt = struct.pack("<HHIIHH", 1, channels, head_rate, head_rate * channels * 2, channels * 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


def wav_lie() -> bytes:
    """A WAV whose header claims 64 channels for one second of mono samples."""
    data = bytearray(wav())
    fmt = data.index(b"fmt ") + 8  # format, channels, rate, byte rate, block align, bits
    data[fmt + 2 : fmt + 4] = struct.pack("<H", 64)
    data[fmt + 8 : fmt + 14] = struct.pack("<IH", 16_000 * 64 * 2, 64 * 2)
    return bytes(data)


def mp4(
    path_frames: int = 12,
    fps: float = 12,
    size: tuple[int, int] = (64, 48),
    rotation: int = 0,
    audio_streams: int = 0,
    title: str = "",
    vfr: bool = False,
    faststart: bool = True,
) -> bytes:
    """An H.264 mp4 of the `marked` picture; options make it odd (rotated, VFR, many streams, huge metadata)."""
    with tempfile.TemporaryDirectory() as tmp:  # faststart rewrites the file: it needs a real one
        path = Path(tmp) / "clip.mp4"
        _write_mp4(path, path_frames, fps, size, rotation, audio_streams, title, vfr, faststart)
        return path.read_bytes()


def _write_mp4(
    path: Path,
    path_frames: int,
    fps: float,
    size: tuple[int, int],
    rotation: int,
    audio_streams: int,
    title: str,
    vfr: bool,
    faststart: bool,
) -> None:
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        if title:
            container.metadata["title"] = title
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        video.time_base = Fraction(1, 1000)
        if rotation:
            video.set_display_rotation(rotation)
        audios = [container.add_stream("aac", rate=16_000, layout="mono") for _ in range(audio_streams)]
        picture = np.asarray(marked(*size))
        pts = 0
        for index in range(path_frames):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += int(1000 / fps) * (3 if vfr and index % 2 else 1)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for stream in audios:
            samples = np.zeros((1, 1024 * 4), np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16_000, 0
            container.mux(stream.encode(frame))
            container.mux(stream.encode(None))


def surround_m4a() -> bytes:
    """Half a second of 5.1 AAC at 48 kHz."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=48_000, layout="5.1")
        samples = np.zeros((6, 48_000 // 2), np.float32)
        samples[0] = np.sin(np.arange(samples.shape[1]) / 10) * 0.3
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="5.1")
        frame.sample_rate, frame.pts = 48_000, 0
        resampler = av.AudioResampler(format="fltp", layout="5.1", rate=48_000, frame_size=1024)
        for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
            container.mux(stream.encode(chunk))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def exif_rotated_jpeg() -> bytes:
    """A JPEG stored turned (48 wide, 32 tall) with EXIF orientation 6: shown upright it is 32x48."""
    upright = marked(32, 48)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back by 270
    exif = Image.Exif()
    exif[0x0112] = 6
    return image_bytes(stored, "JPEG", exif=exif.tobytes(), quality=95)


def _mp4_truncated() -> bytes:
    data = mp4(path_frames=48)
    return data[: len(data) // 2]


def hostile() -> list[Sample]:
    """Files every media field must refuse with a 4xx naming the field."""
    png = image_bytes(marked(64, 64), "PNG")
    jpeg = image_bytes(marked(64, 64), "JPEG")
    metadata_png = Image.new("RGB", (8, 8))
    info = __import__("PIL.PngImagePlugin", fromlist=["PngInfo"]).PngInfo()
    info.add_itxt("comment", "x" * 500_000)
    return [
        Sample("png_bomb", png_bomb(), "image/png"),
        Sample("jpeg_lie", jpeg_lie(), "image/jpeg"),
        Sample("webp_bomb", webp_bomb(), "image/webp"),
        Sample("gif_bomb", gif_bomb(), "image/gif"),
        Sample("wav_lie", wav_lie(), "audio/wav"),
        Sample("mp4_lie", _mp4_lying_duration(), "video/mp4"),
        Sample("png_truncated", png[: len(png) // 2], "image/png"),
        Sample("jpeg_truncated", jpeg[: len(jpeg) // 2], "image/jpeg"),
        Sample("mp4_truncated", _mp4_truncated(), "video/mp4"),
        Sample("wav_truncated", wav()[:30], "audio/wav"),
        Sample("html_as_mp4", b"<!doctype html><html><body>" + b"x" * 4000 + b"</body></html>", "video/mp4"),
        Sample("zip_as_png", _zip(), "image/png"),
        Sample("random_as_png", np.random.default_rng(0).bytes(4096), "image/png"),
        Sample("zero_bytes", b"", "audio/wav"),
        Sample("png_huge_metadata", image_bytes(metadata_png, "PNG", pnginfo=info), "image/png"),
        Sample("mp4_huge_metadata", mp4(title="t" * 200_000), "video/mp4"),
        Sample("mp4_many_streams", mp4(audio_streams=8), "video/mp4"),
        Sample("mp4_1000fps", mp4(path_frames=30, fps=1000), "video/mp4"),
        Sample("wav_1hz", wav(declared_rate=1), "audio/wav"),
        Sample("wav_1mhz", wav(declared_rate=1_000_000), "audio/wav"),
    ]


def _zip() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello" * 100)
    return buffer.getvalue()


def _mp4_lying_duration() -> bytes:
    """An mp4 whose track's time scale says one tick a second: a dozen frames claim 16000 s (4.4 hours)."""
    data = bytearray(mp4())
    mdhd = data.index(b"mdhd") + 4  # version/flags, created, modified, time scale, duration
    data[mdhd + 12 : mdhd + 16] = struct.pack(">I", 1)
    return bytes(data)


def odd_but_valid() -> list[Sample]:
    """Unusual files that are valid for the kinds named, with what a reader must see in them."""
    images = frozenset({"image"})
    palette = marked(40, 30).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    grey16 = Image.fromarray((np.arange(40 * 30).reshape(30, 40) * 50).astype(np.uint16))
    rgba = marked(40, 30).convert("RGBA")
    return [
        Sample("png_1x1", image_bytes(marked(1, 1), "PNG"), "image/png", images, {"size": (1, 1)}),
        Sample("png_1x10000", image_bytes(marked(1, 10_000), "PNG"), "image/png", images, {"size": (1, 10_000)}),
        Sample(
            "jpeg_cmyk", image_bytes(marked(40, 30).convert("CMYK"), "JPEG"), "image/jpeg", images, {"size": (40, 30)}
        ),
        Sample("png_16bit", image_bytes(grey16, "PNG"), "image/png", images, {"size": (40, 30)}),
        Sample("png_alpha", image_bytes(rgba, "PNG"), "image/png", images, {"size": (40, 30)}),
        Sample("png_palette", image_bytes(palette, "PNG"), "image/png", images, {"size": (40, 30)}),
        Sample("jpeg_exif_rotated", exif_rotated_jpeg(), "image/jpeg", images, {"size": (32, 48)}),
        Sample(
            "mp4_phone_rotated",
            mp4(size=(64, 48), rotation=90),
            "video/mp4",
            frozenset({"video"}),
            {"size": (48, 64), "frames": 12},
        ),
        Sample("mp4_vfr", mp4(path_frames=12, vfr=True), "video/mp4", frozenset({"video"}), {"frames": 12}),
        Sample(
            "wav_mono_8k",
            wav(rate=8_000, seconds=1.0),
            "audio/wav",
            frozenset({"audio"}),
            {"channels": 1, "seconds": 1.0},
        ),
        Sample("m4a_51_48k", surround_m4a(), "audio/mp4", frozenset({"audio"}), {"channels": 6, "seconds": 0.5}),
    ]
