"""Untrusted media at the deployments level, with the corpus of tests/media_corpus.py: every hostile file is
refused from its headers (or a bounded decode) as every kind, with a message naming the field and the limit;
the staging check stays far under 500 MB while it meets the bombs; odd but valid files read upright, whole and
with their channels; a replica that meets a bad input fails it for good (`invalid_<kind>`), with a message that
leaks nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from deployments.contract import InputLimits, InvalidInput, InvalidMedia, caller_safe
from deployments.images import read_image
from deployments.limits import apply_decoder_limits, inspect_input
from deployments.ltx2.args import LTX2Args
from deployments.ltx2.conditioning import open_image
from deployments.media import decode_audio, iter_frames, probe
from serve_app.runs.replica import input_error
from tests.media_corpus import Sample, hostile, odd_but_valid

KINDS = ("image", "video", "audio")
LIMITS = InputLimits()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Sample, Path]]:
    folder = tmp_path_factory.mktemp("corpus")
    files = {}
    for sample in [*hostile(), *odd_but_valid()]:
        path = folder / sample.name
        path.write_bytes(sample.data)
        files[sample.name] = (sample, path)
    return files


def test_every_hostile_file_is_refused_as_every_kind_naming_the_field(corpus):
    accepted = []
    for sample, path in corpus.values():
        for kind in KINDS:
            if sample.valid_as and kind in sample.valid_as:
                continue
            try:
                inspect_input(f"{kind}_key", kind, path, LIMITS.of(kind))
                accepted.append(f"{sample.name} as {kind}") if not sample.valid_as else None
            except InvalidInput as exc:
                assert exc.field == f"{kind}_key" and str(exc).startswith(f"{kind}_key: "), str(exc)
    assert accepted == []


@pytest.mark.parametrize(
    ("name", "kind", "words"),
    [
        ("png_bomb", "image", "limits.image.max_"),  # past Pillow's own cap: max_pixels; else max_width
        ("webp_bomb", "image", "limits.image.max_"),
        ("gif_bomb", "image", "limits.image.max_"),
        ("mp4_lie", "video", "limits.video.max_duration_s"),
        ("mp4_1000fps", "video", "limits.video.max_fps"),
        ("mp4_many_streams", "video", "limits.video.max_streams"),
        ("wav_1mhz", "audio", "limits.audio.max_sample_rate"),
        ("wav_1hz", "audio", "limits.audio.min_sample_rate"),
        ("wav_lie", "audio", "limits.audio.max_channels"),
        ("mp4_truncated", "video", "holds no frames"),
        ("png_huge_metadata", "image", "metadata"),
    ],
)
def test_a_refusal_names_the_limit(corpus, name, kind, words):
    with pytest.raises(InvalidInput) as info:
        inspect_input(f"{kind}_key", kind, corpus[name][1], LIMITS.of(kind))
    assert words in str(info.value), str(info.value)


def test_the_bombs_are_checked_in_bounded_memory(corpus):
    """Peak RSS of a fresh process that inspects every hostile file as every kind, above its RSS before them
    (measured in its own process, so other tests' memory does not count)."""
    paths = [str(path) for sample, path in corpus.values() if not sample.valid_as]
    script = (
        "import json, resource, sys\n"
        "from deployments.contract import InputLimits\n"
        "from deployments.limits import apply_decoder_limits, inspect_input\n"
        "limits = InputLimits(); apply_decoder_limits(limits)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for path in sys.argv[1:]:\n"
        "    for kind in ('image', 'video', 'audio'):\n"
        "        try: inspect_input('f', kind, path, limits.of(kind))\n"
        "        except Exception as exc: assert type(exc).__name__ == 'InvalidInput', (path, kind, repr(exc))\n"
        "print(json.dumps({'before_kb': before, 'peak_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    usage = json.loads(done.stdout.strip().splitlines()[-1])
    assert (usage["peak_kb"] - usage["before_kb"]) / 1024 < 500, usage


@pytest.mark.parametrize("name", [s.name for s in odd_but_valid() if "image" in s.valid_as])
def test_odd_images_read_upright_and_rgb(corpus, name):
    sample, path = corpus[name]
    inspect_input("image_key", "image", path, LIMITS.image)
    image = read_image(path, LIMITS.image)
    assert image.mode == "RGB" and image.size == sample.expect["size"]
    pixels = np.asarray(image).astype(int)
    if name in ("jpeg_exif_rotated", "jpeg_cmyk", "png_alpha", "png_palette"):  # top-left red, the rest blue
        assert pixels[0, 0, 0] > 180 and pixels[0, 0, 2] < 80, pixels[0, 0]
        assert pixels[-1, -1, 2] > 180 and pixels[-1, -1, 0] < 80, pixels[-1, -1]
    if name == "png_16bit":  # scaled to 8 bits, not clipped to white
        assert 0 <= pixels.min() < 50 and pixels.max() > 200 and (pixels < 255).mean() > 0.5


def test_a_phone_video_is_read_upright_with_every_frame(corpus):
    sample, path = corpus["mp4_phone_rotated"]
    info = inspect_input("video_key", "video", path, LIMITS.video)
    assert (info.width, info.height, info.rotation) == (48, 64, 90)
    frames = list(iter_frames(path, pixel_format="rgb24", limits=LIMITS.video))
    assert len(frames) == sample.expect["frames"] and frames[0].shape == (64, 48, 3)
    red_corner = [frames[0][2, 2], frames[0][2, -3], frames[0][-3, 2], frames[0][-3, -3]]
    assert sum(int(c[0]) > 150 and int(c[2]) < 100 for c in red_corner) == 1, red_corner  # one quarter is red


def test_a_variable_frame_rate_video_keeps_every_frame(corpus):
    sample, path = corpus["mp4_vfr"]
    inspect_input("video_key", "video", path, LIMITS.video)
    assert sum(1 for _ in iter_frames(path, limits=LIMITS.video)) == sample.expect["frames"]


@pytest.mark.parametrize("name", ["wav_mono_8k", "m4a_51_48k"])
def test_odd_audio_decodes_whole_with_its_channels(corpus, name):
    sample, path = corpus[name]
    info = inspect_input("audio_key", "audio", path, LIMITS.audio)
    assert info.channels == sample.expect["channels"]
    stereo = decode_audio(path, sample_rate=16_000, mono=False, limits=LIMITS.audio)
    assert stereo.shape[0] == min(2, sample.expect["channels"])
    assert abs(stereo.shape[1] / 16_000 - sample.expect["seconds"]) < 0.1


def test_decoding_stops_at_the_limits_a_header_understated(corpus):
    tight = LIMITS.video.model_copy(update={"max_frames": 5})
    with pytest.raises(ValueError, match="over 5 frames"):
        list(iter_frames(corpus["mp4_vfr"][1], limits=tight))
    short = LIMITS.audio.model_copy(update={"max_duration_s": 0.5})
    with pytest.raises(ValueError, match=r"over the 0\.5 s limit"):
        decode_audio(corpus["wav_mono_8k"][1], limits=short)


def test_decoders_refuse_past_the_applied_caps(corpus):
    apply_decoder_limits(LIMITS)
    assert LIMITS.image.max_pixels <= PIL.Image.MAX_IMAGE_PIXELS
    with pytest.raises(PIL.Image.DecompressionBombError):
        PIL.Image.open(corpus["png_bomb"][1])


@pytest.mark.parametrize("name", ["png_bomb", "jpeg_lie", "png_truncated", "zip_as_png"])
def test_a_replica_given_a_bad_image_fails_it_for_good(corpus, name, tmp_path):
    """An input swapped after staging reaches LTX-2's reader: InvalidMedia (final), no server path in it."""
    with pytest.raises(InvalidMedia) as info:
        open_image({"image": corpus[name][1]}, "image", LTX2Args().limits.image)
    error = input_error(info.value)
    assert error is not None and error.code == "invalid_image"
    assert str(corpus[name][1].parent) not in error.message and "/" not in error.message, error.message


def test_decoder_errors_that_escape_a_runner_are_final_and_caller_safe(tmp_path):
    bomb = PIL.Image.DecompressionBombError(f"Image size of {tmp_path}/x.png exceeds limit")
    error = input_error(bomb)
    assert error is not None and error.code == "invalid_image" and str(tmp_path) not in error.message
    assert input_error(RuntimeError("lost the GPU")) is None  # a crash: the queue may retry it


def test_caller_safe_messages_drop_ray_process_address_path_and_colour():
    raw = (
        "\x1b[36mray::ServeReplica:video:LTX2Generator.handle_request()\x1b[39m (pid=4242, ip=10.1.2.3, "
        "actor_id=deadbeef) at /home/ray/anaconda3/lib/x.py via fe80::1:2:3 on 192.168.0.7:6379"
    )
    safe = caller_safe(raw)
    for leak in ("ray::", "pid=", "10.1.2.3", "192.168", "fe80", "/home/ray", "\x1b"):
        assert leak not in safe, safe
    assert caller_safe("video: 3.2 s at 24 fps is 77 frames") == "video: 3.2 s at 24 fps is 77 frames"


def test_probe_reads_streams_channels_and_metadata(corpus):
    info = probe(corpus["mp4_many_streams"][1])
    assert info.streams == 9 and info.has_audio and info.channels == 1
    assert probe(corpus["mp4_huge_metadata"][1]).metadata_bytes > 200_000
