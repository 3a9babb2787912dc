"""Talking video as the spine sees it: a chain of two stages, each a job of another catalogue model.

1. `ltx2`: the photo animated by LTX-2 image-to-video, as long as the speech snapped up to LTX-2's frame grid
   (8k+1 frames at `fps`), with `generate_audio: false`: the speech is the clip's sound, so LTX-2's would be
   decoded only to be dropped.
2. `wav2lip`: Wav2Lip lip-syncs that clip to the speech with `sync_mode: cut_off`, which trims the clip to the
   speech; the speech is the output's audio.

Stage costs (each stage's share of the job's progress) are estimates of GPU time for a 5 s 480p clip: LTX-2
`fast` on an H100 takes tens of seconds, Wav2Lip on an RTX 4090 a few, so 9 : 1.
The photo must show a face: Wav2Lip's detector checks it at submit, before the LTX-2 stage spends a GPU minute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import Field, PositiveFloat

from deployments.contract import (
    FromInput,
    FromStage,
    InvalidInput,
    ModelArgs,
    ModelSpec,
    PlacementArgs,
    Stage,
    StagedInput,
)
from deployments.media import MediaInfo
from deployments.talking_video.request import TalkingVideoRequest
from deployments.talking_video.videos_api import MAPPING as OPENAI

FRAME_GRID = 8  # LTX-2's clips have 8k+1 frames (its VAE_TEMPORAL_RATIO; a plug-in imports no other plug-in)
LTX2_COST, WAV2LIP_COST = 9.0, 1.0


class TalkingVideoArgs(ModelArgs):
    """Settings of talking-video jobs (`args.talking_video`); `placement` is the coordinator's (CPU, light)."""

    placement: PlacementArgs = Field(default_factory=lambda: PlacementArgs(num_cpus=0.1, max_replicas=1))
    min_speech_s: PositiveFloat = Field(0.2, description="Shortest speech accepted, in seconds.")


def plan(request: TalkingVideoRequest, args: TalkingVideoArgs) -> dict[str, Any]:
    """The chained job's own params; its stages are planned by the spine once the inputs are staged."""
    return {"fps": request.fps}


def check_input(request: TalkingVideoRequest, args: TalkingVideoArgs, staged: StagedInput, media: MediaInfo) -> None:
    """The speech must be speech-length audio (the photo's size and face are Wav2Lip's checks, in its stage)."""
    if staged.kind == "audio" and media.duration_s < args.min_speech_s:
        found = f"{media.duration_s:.2f} s" if media.duration_s else "no measurable length"
        raise InvalidInput(staged.field, f"{found}; speech must last at least {args.min_speech_s:g} s")


def clip_seconds(speech_s: float, fps: int) -> float:
    """The shortest clip on the video model's frame grid (8k+1 frames) that lasts as long as the speech."""
    grid_steps = max(1, math.ceil((speech_s * fps - 1) / FRAME_GRID - 1e-9))
    return FRAME_GRID * grid_steps / fps


def animate_request(request: TalkingVideoRequest, media: Mapping[str, MediaInfo]) -> dict[str, Any]:
    """The LTX-2 stage: image-to-video of the photo, as long as the speech."""
    sizes = request.given("quality", "resolution", "aspect_ratio", "width", "height", "seed", "camera_lora")
    extra = request.given("negative_prompt")
    duration = clip_seconds(media["audio"].duration_s, request.fps)
    body = {"model": "ltx2", "prompt": request.prompt, "duration": duration, "fps": request.fps}
    return body | {"generate_audio": False} | sizes | extra


def lip_sync_request(request: TalkingVideoRequest, media: Mapping[str, MediaInfo]) -> dict[str, Any]:
    """The Wav2Lip stage: the animated clip lip-synced to the speech, trimmed to it."""
    # on_no_face "keep": a frame where the head turns away keeps its animation instead of failing the job
    body = {"model": "wav2lip", "sync_mode": "cut_off", "on_no_face": "keep"}
    return body | request.given("pads", "blend", "active_speaker")


SPEC = ModelSpec(
    name="talking_video",
    request=TalkingVideoRequest,
    args=TalkingVideoArgs,
    plan=plan,
    runner="",
    deployment="TalkingVideoCoordinator",
    queue="TalkingVideoQueue",
    inputs=(
        *(StagedInput(field, "image", "image") for field in ("image_url", "image_base64", "image_key")),
        *(StagedInput(field, "audio", "audio") for field in ("audio_url", "audio_key")),
    ),
    check_input=check_input,
    stages=(
        Stage(
            name="ltx2",
            model="ltx2",
            request=animate_request,
            inputs={"image_key": FromInput("image")},
            cost=LTX2_COST,
            fields={"duration": "audio"},  # the clip's length is the speech's
        ),
        Stage(
            name="wav2lip",
            model="wav2lip",
            request=lip_sync_request,
            inputs={"video_key": FromStage("ltx2"), "audio_key": FromInput("audio")},
            cost=WAV2LIP_COST,
            checks={"image_key": "image"},  # the photo must show a face, found before the LTX-2 stage runs
        ),
    ),
    openai=OPENAI,
)
