"""Wav2Lip as the spine sees it: its request, its settings, the plan, the inputs and their limits.
Light (no torch): the gateway imports it through the catalogue."""

from __future__ import annotations

from typing import Any

from deployments.contract import InvalidInput, ModelSpec, StagedInput
from deployments.media import MediaInfo
from deployments.wav2lip.args import Wav2LipArgs
from deployments.wav2lip.request import Wav2LipRequest
from deployments.wav2lip.timing import reads_whole_video
from deployments.wav2lip.videos_api import MAPPING as OPENAI


def plan(request: Wav2LipRequest, args: Wav2LipArgs) -> dict[str, Any]:
    """The parameters the runner will use; whether the face is a video or a still follows from the inputs."""
    face_kind = "video" if (request.video_url or request.video_key) else "image"
    if face_kind == "image" and request.sync_mode != "loop":
        raise InvalidInput("sync_mode", f"{request.sync_mode!r} needs a face video; a still image allows only 'loop'")
    return {
        "face_kind": face_kind,
        "fps": request.fps,
        "pads": list(request.pads),
        "smooth": request.smooth,
        "blend": request.blend,
        "on_no_face": request.on_no_face,
        "sync_mode": request.sync_mode,
        "active_speaker": request.active_speaker
        if isinstance(request.active_speaker, str)
        else request.active_speaker.model_dump(),
    }


def check_input(request: Wav2LipRequest, args: Wav2LipArgs, staged: StagedInput, media: MediaInfo) -> None:
    """Wav2Lip keeps the face's resolution and the audio's length, so both are bounded before any GPU; a still
    face image must show a face (found with the replicas' detector, on CPU)."""
    if max(media.width, media.height) > args.max_side:
        raise InvalidInput(staged.field, f"{media.width}x{media.height} is over the {args.max_side} px side limit")
    if staged.kind == "image" and media.path:
        from deployments.wav2lip.facecheck import image_has_face  # torch and the detector: only for images

        if not image_has_face(media.path, args):
            raise InvalidInput(staged.field, "no face found in the image: without one there are no lips to sync")
    if staged.kind == "audio" and media.duration_s > args.max_duration_s:
        raise InvalidInput(staged.field, f"{media.duration_s:.1f} s is over the {args.max_duration_s:g} s limit")
    # these modes read the whole video (silence: the output lasts as long as it)
    if staged.kind == "video" and reads_whole_video(request.sync_mode) and media.duration_s > args.max_duration_s:
        raise InvalidInput(
            staged.field,
            f"{media.duration_s:.1f} s is over the {args.max_duration_s:g} s limit of sync_mode {request.sync_mode!r}",
        )


SPEC = ModelSpec(
    name="wav2lip",
    request=Wav2LipRequest,
    args=Wav2LipArgs,
    plan=plan,
    runner="deployments.wav2lip.runner:Wav2LipRunner",
    deployment="Wav2LipSyncer",
    queue="Wav2LipQueue",
    inputs=(
        StagedInput("video_url", "face", "video"),
        StagedInput("video_key", "face", "video"),
        StagedInput("image_url", "face", "image"),
        StagedInput("image_key", "face", "image"),
        StagedInput("audio_url", "audio", "audio"),
        StagedInput("audio_key", "audio", "audio"),
    ),
    check_input=check_input,
    openai=OPENAI,
)
