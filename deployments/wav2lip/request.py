"""The body of a Wav2Lip job (`"model": "wav2lip"`). `Field(description=...)` is the API doc."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from deployments.contract import JobRequest, UploadKey, exactly_one
from deployments.wav2lip.timing import SyncMode

FACE_FIELDS = ("video_url", "video_key", "image_url", "image_key")


class SpeakerPoint(BaseModel):
    """The face that speaks: the one containing this point of the face video at this time, then tracked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: float = Field(ge=0, description="Pixels from the left edge of the face video.")
    y: float = Field(ge=0, description="Pixels from the top edge of the face video.")
    at_s: float = Field(0.0, ge=0, description="Time in the face video (seconds) at which the point is on the face.")


class Wav2LipRequest(JobRequest):
    """Lip-sync a face (video or still image) to an audio track."""

    model: Literal["wav2lip"]
    video_url: HttpUrl | None = Field(None, description="Face video, fetched over http(s).")
    video_key: UploadKey | None = Field(None, description="Face video uploaded through presign.")
    image_url: HttpUrl | None = Field(None, description="Still face image, fetched over http(s).")
    image_key: UploadKey | None = Field(None, description="Still face image uploaded through presign.")
    audio_url: HttpUrl | None = Field(None, description="Speech audio (wav, mp3, m4a, ogg, flac...).")
    audio_key: UploadKey | None = Field(None, description="Speech audio uploaded through presign.")
    fps: float = Field(25.0, gt=0, le=60, description="Output fps for a still image (a video keeps its own).")
    pads: tuple[int, int, int, int] = Field(
        (0, 10, 0, 0), description="Pixels added to the face box: top, bottom, left, right."
    )
    smooth: bool = Field(True, description="Average face boxes over 5 frames to steady the mouth region.")
    blend: Literal["feather", "hard"] = Field("feather", description="Feathered paste, or the official hard box.")
    on_no_face: Literal["keep", "fail"] = Field("keep", description="A frame without a face: keep it, or fail.")
    sync_mode: SyncMode = Field(
        "loop",
        description="When audio and video lengths differ. loop: the video restarts (output = audio length); "
        "bounce: it plays forward then backward (audio length); remap: it is time-stretched over the audio; "
        "cut_off: both are cut to the shorter; silence: the output lasts the video, the audio padded with "
        "silence (or cut). A still image allows only loop.",
    )

    active_speaker: Literal["largest"] | SpeakerPoint = Field(
        "largest",
        description="The face that is lip-synced: 'largest' (the largest face where one is first seen) or "
        "{x, y, at_s} (the face containing that point at that time); either is then tracked across frames by "
        "overlap, so the mouth never jumps to another person. A point on no face fails the job (speaker_not_found).",
    )

    @model_validator(mode="after")
    def _one_face_one_audio(self) -> Wav2LipRequest:
        exactly_one(self, FACE_FIELDS, required=True)
        exactly_one(self, ("audio_url", "audio_key"), required=True)
        if any(p < 0 or p > 256 for p in self.pads):
            raise ValueError("pads: each must be between 0 and 256 pixels")
        return self
