"""Chained jobs as data: the contract refuses a chain that cannot run, and stage plans made at submit report each
error under the chained job's own field (no Ray: the planner is plain code the gateway calls)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from deployments.contract import FromInput, FromStage, ModelSpec, Stage
from deployments.images import probe_image
from deployments.ltx2.params import VAE_TEMPORAL_RATIO
from deployments.media import probe
from deployments.talking_video.spec import FRAME_GRID, clip_seconds
from deployments.talking_video.spec import SPEC as TALKING_VIDEO
from serve_app.catalogue import CATALOGUE
from serve_app.errors import InvalidInput
from serve_app.http.gateway import JOB_SUFFIX
from serve_app.runs.chains import plan_stages
from serve_app.runs.coordinator import stage_job_id
from tests.deployments.wav2lip.wav2lip_inputs import astronaut, speech_like
from tests.plugin_model.spec import SPEC as FLIPBOOK


def chain(**changes) -> ModelSpec:
    """The flipbook model's spec turned into a one-stage chain, with `changes` applied."""
    stage = Stage(name="flip", model="flipbook", request=lambda r, m: {}, inputs={"page_key": FromInput("page")})
    fields = {"runner": "", "stages": (stage,), **changes}
    return ModelSpec(**{**FLIPBOOK.__dict__, "name": "flipbook", **fields})


def test_a_spec_has_a_runner_or_stages_not_both():
    with pytest.raises(ValueError, match="either a runner or stages"):
        chain(runner="tests.plugin_model.runner:FlipbookRunner")
    with pytest.raises(ValueError, match="either a runner or stages"):
        chain(stages=())


def test_a_stage_must_read_files_that_exist_and_bind_key_fields_only():
    with pytest.raises(ValueError, match="comes from nowhere"):
        chain(stages=(Stage(name="a", model="flipbook", request=dict, inputs={"page_key": FromStage("later")}),))
    with pytest.raises(ValueError, match="comes from nowhere"):
        chain(stages=(Stage(name="a", model="flipbook", request=dict, inputs={"page_key": FromInput("nope")}),))
    with pytest.raises(ValueError, match="only upload-key fields"):
        Stage(name="a", model="flipbook", request=dict, inputs={"page_url": FromInput("page")})


@pytest.mark.parametrize(("speech_s", "fps", "frames"), [(1.0, 16, 17), (1.0, 24, 25), (0.3, 24, 9), (2.0, 25, 57)])
def test_the_clip_is_the_speech_snapped_up_to_the_frame_grid(speech_s, fps, frames):
    seconds = clip_seconds(speech_s, fps)
    assert round(seconds * fps) + 1 == frames and (frames - 1) % 8 == 0
    assert frames / fps >= speech_s > (frames - 9) / fps  # long enough, and no grid step longer than needed
    assert FRAME_GRID == VAE_TEMPORAL_RATIO  # the chain's copy of LTX-2's grid (plug-ins import no other plug-in)


def test_stage_job_ids_are_stable_and_routable():
    first = stage_job_id("talking_video-" + "a" * 32, 0, "ltx2")
    assert (
        first
        == stage_job_id("talking_video-" + "a" * 32, 0, "ltx2")
        != stage_job_id("talking_video-" + "a" * 32, 1, "ltx2")
    )
    model, _, suffix = first.partition("-")
    assert model == "ltx2" and JOB_SUFFIX.fullmatch(suffix)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stages")
    Image.fromarray(astronaut()[..., ::-1]).save(root / "face.png")
    Image.fromarray(np.full((128, 128, 3), 90, np.uint8)).save(root / "wall.png")
    for seconds in (1.0, 21.0):
        wavfile.write(root / f"speech{seconds:g}.wav", 16_000, (speech_like(seconds) * 32767).astype(np.int16))
    return {path.stem: path for path in root.iterdir()}


def plan(files: dict[str, Path], image: str = "face", speech: str = "speech1", config: dict | None = None, **fields):
    body = {"model": "talking_video", "image_base64": "AAAA", "audio_url": "https://example.com/s.wav", **fields}
    request = TALKING_VIDEO.request.model_validate(body)
    media = {"image": probe_image(files[image]), "audio": probe(files[speech])}
    keys = {"image": "jobs/j/inputs/image.png", "audio": "jobs/j/inputs/audio.wav"}
    model_args = CATALOGUE.args_model.model_validate(config or {}).models()
    return plan_stages(TALKING_VIDEO, request, media, keys, CATALOGUE.by_name, model_args)


def test_stage_plans_carry_each_models_params_and_where_its_files_come_from(files):
    ltx2, wav2lip = plan(files, width=100, height=70, fps=16, seed=5)
    assert (ltx2["params"]["width"], ltx2["params"]["height"], ltx2["params"]["num_frames"]) == (96, 64, 17)
    assert ltx2["params"]["seed"] == 5 and ltx2["params"]["image_to_video"] is True
    assert ltx2["inputs"] == {"image": "jobs/j/inputs/image.png"}
    assert wav2lip["inputs"] == {"face": "stage:ltx2", "audio": "jobs/j/inputs/audio.wav"}
    assert (wav2lip["params"]["face_kind"], wav2lip["params"]["sync_mode"]) == ("video", "cut_off")


@pytest.mark.parametrize(
    ("image", "speech", "fields", "field", "rule"),
    [
        ("wall", "speech1", {}, "image_base64", "no face"),  # Wav2Lip's check of the photo, before LTX-2 runs
        ("face", "speech21", {}, "audio_url", "over the 20 s limit"),  # LTX-2's duration is the speech's
        ("face", "speech1", {"resolution": "4k"}, "resolution", "Input should be"),
        ("face", "speech1", {"width": 64}, "height", "go together"),
        ("face", "speech1", {"camera_lora": "dolly_in"}, "camera_lora", "not configured"),
        ("face", "speech1", {"blend": "smudge"}, "blend", "Input should be"),
        ("face", "speech1", {"aspect_ratio": "7:5"}, "aspect_ratio", "Input should be"),
    ],
)
def test_a_stage_error_names_the_chained_jobs_field(files, image, speech, fields, field, rule):
    with pytest.raises(InvalidInput) as caught:
        plan(files, image=image, speech=speech, **fields)
    error = caught.value
    assert error.field == field and re.search(re.escape(rule), error.message), (error.field, error.message)


def test_the_animation_takes_ltx2s_aspect_ratio_and_generates_no_sound_of_its_own(files):
    ltx2, _ = plan(files, aspect_ratio="1:1", resolution="480p")
    assert ltx2["params"]["width"] == ltx2["params"]["height"] == 512  # docs/ltx2.md, the aspect-ratio table
    assert ltx2["params"]["generate_audio"] is False  # the speech is the clip's sound


@pytest.mark.parametrize(
    ("config", "field", "rule"),
    [
        ({"ltx2": {"limits": {"image": {"max_width": 64}}}}, "image_base64", "ltx2.limits.image.max_width"),
        ({"wav2lip": {"limits": {"image": {"max_pixels": 4096}}}}, "image_base64", "wav2lip.limits.image.max_pixels"),
        ({"wav2lip": {"limits": {"audio": {"max_sample_rate": 8000}}}}, "audio_url", "wav2lip.limits.audio"),
        ({"wav2lip": {"limits": {"audio": {"max_file_mb": 0.01}}}}, "audio_url", "wav2lip.limits.audio.max_file_mb"),
    ],
)
def test_an_input_over_a_stage_models_own_limits_is_refused_naming_the_chained_field(files, config, field, rule):
    """The photo and speech pass talking_video's own limits (its defaults); each stage model's limits apply too,
    so a file its stage would refuse when it runs is refused at submit, under the chained job's field."""
    with pytest.raises(InvalidInput) as caught:
        plan(files, config=config)
    error = caught.value
    assert error.field == field and rule in error.message, (error.field, error.message)
