"""Settings of the LTX-2 deployment (serve_config.yaml `args.ltx2`). Light: imported by the gateway too."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveInt, model_validator

from deployments.contract import InputLimits, InvalidInput, MediaLimits, ModelArgs
from deployments.ltx2.params import Quality
from deployments.ltx2.versions import ALL_CAMERA_MOTIONS, VERSIONS, ModelVersion, check_lora_release

DEFAULT_PROMPT = (
    "The scene comes to life with natural, smooth motion and consistent lighting; "
    "the subject and the setting stay as they are shown."
)
CAMERA_MOTIONS = ALL_CAMERA_MOTIONS  # every release's; each deployment accepts only its own version's


def _limits() -> InputLimits:
    """A video to extend is at most 4K and a minute long (an extension renders at most `max_extend_frames`)."""
    video = MediaLimits(max_file_mb=500, max_width=3840, max_height=3840, max_pixels=3840 * 2160, max_frames=7200)
    return InputLimits(video=video.model_copy(update={"max_duration_s": 60.0}))


class LTX2Args(ModelArgs):
    limits: InputLimits = Field(
        default_factory=_limits,
        description="Bounds of the image, end image and video to extend, checked from headers before decoding.",
    )
    camera_loras: dict[str, str] = Field(
        default_factory=dict,
        description="Camera motion -> LoRA source (local path, hf://, s3://). `static` with no entry = base model.",
    )
    max_duration_s: float = Field(
        20.0,
        gt=0,
        description="Longest clip (or extension) a request may ask for, in seconds: 20 s = 481 frames at 24 fps.",
    )
    min_duration_s: float = Field(
        1.0, gt=0, description="Shortest clip the LTX-2.5 duration head may pick when `duration` is omitted."
    )
    default_duration_s: float = Field(
        5.0, gt=0, description="Clip length when a request omits `duration` (2.0/2.3; 2.5 lets its duration head pick)."
    )
    max_extend_frames: PositiveInt = Field(
        505,
        description="Most frames an extension may render: the input video's frames (the context) plus the added ones "
        "(Lightricks' extend limit). Checked on the staged video, before any GPU work.",
    )
    default_prompt: str = Field(
        DEFAULT_PROMPT,
        min_length=1,
        description="Prompt used when a request with an image or a video to extend gives none.",
    )
    max_side: PositiveInt = Field(1920, description="Largest width or height a request may ask for, in pixels.")

    model_version: ModelVersion = Field(
        "2.0",
        description="LTX-2 release the weights belong to: picks its recipes, call arguments, text encoder (Gemma 3 "
        "for 2.0/2.3, Gemma 4 for 2.5), vocoder rate and repo layout (docs/ltx2.md).",
    )
    transformer_kind: Literal["full", "distilled"] = Field(
        "full",
        description="Which transformer to serve: the full (dev) model, or an already distilled one "
        "(e.g. rootonchair/LTX-2-19b-distilled, which can serve `fast` only). LTX-2.5 repos hold both: "
        "full = transformer_full/, distilled = transformer/.",
    )
    qualities: tuple[Quality, ...] = Field(
        ("fast", "pro"), min_length=1, description="Quality modes this deployment serves; others are rejected."
    )
    distilled_lora: str | None = Field(
        None,
        description="LoRA that turns the full model into the distilled one (ltx-2-19b-distilled-lora-384, "
        "ltx-2.3-22b-distilled-lora-384, ltx-2.5-22b-distilled-lora-450-bf16), used by "
        "`fast` and by stage 2 of `pro`: local .safetensors file or dir, hf://org/repo/file, s3://bucket/key.",
    )
    distilled_lora_strength: NonNegativeFloat = Field(1.0, description="Adapter weight of `distilled_lora`.")
    upsampler: str | None = Field(
        None, description="Latent x2 upsampler (diffusers dir) for `pro`; default: `latent_upsampler/` of `weights`."
    )
    text_encoder: str | None = Field(
        None,
        description="Text encoder + tokenizer when not taken from `weights` (Gemma 3 for 2.0/2.3, Gemma 4 for 2.5): "
        "a diffusers-layout dir with text_encoder/ and tokenizer/, or a plain Gemma checkpoint (gated: set HF_TOKEN).",
    )
    camera_lora_strength: NonNegativeFloat = Field(1.0, description="Adapter weight of the requested camera LoRA.")
    dtype: Literal["auto", "bfloat16", "float32"] = Field(
        "auto",
        description="Weights and compute dtype; auto = bfloat16 on CUDA, float32 on CPU. The vocoder: always float32.",
    )
    cpu_offload: bool = Field(
        False, description="enable_model_cpu_offload(): each component visits the GPU only while it runs."
    )
    vae_tiling: bool = Field(False, description="Decode the video in spatial tiles (less VRAM at large sizes).")
    fp8_layerwise: bool = Field(
        False,
        description="Store transformer weights in float8_e4m3fn and upcast each layer to `dtype` when it runs "
        "(halves its memory, no speed-up; LoRA layers stay in `dtype`).",
    )
    image_crf: int = Field(
        0,
        ge=0,
        le=51,
        description="H.264 CRF applied to the image-to-video input before conditioning; 0 = use the staged image "
        "as is (LTX-2.0 was trained with CRF 33 re-compression, diffusers' default).",
    )
    max_prompt_tokens: PositiveInt = Field(
        1024, description="Prompt length in tokens the text encoder pads/truncates to (LTX-2 uses 1024)."
    )
    pro_steps: PositiveInt | None = Field(
        None,
        description="Override the `pro` stage-1 step count (CPU smoke runs and tests); None = the recipe's own.",
    )

    @model_validator(mode="after")
    def _loras_of_this_version(self) -> LTX2Args:
        known = VERSIONS[self.model_version].camera_motions
        unknown = sorted(set(self.camera_loras) - set(known))
        if unknown:
            raise ValueError(f"camera_loras: {unknown} not known for LTX-{self.model_version}; known: {list(known)}")
        for motion, source in self.camera_loras.items():
            check_lora_release(source, self.model_version, f"camera_loras.{motion}:")
        if self.distilled_lora:
            check_lora_release(self.distilled_lora, self.model_version, "distilled_lora:")
        return self

    @model_validator(mode="after")
    def _duration_bounds(self) -> LTX2Args:
        if self.min_duration_s >= self.max_duration_s:
            raise ValueError("min_duration_s must be below max_duration_s")
        return self

    @model_validator(mode="after")
    def _recipes_servable(self) -> LTX2Args:
        # Checked at deploy time, before any download. Random weights stand in for every variant.
        if self.weights is None:
            return self
        if self.transformer_kind == "full" and self.distilled_lora is None:
            raise ValueError("`fast` and stage 2 of `pro` need distilled weights: set `distilled_lora`")
        if self.transformer_kind == "distilled" and "pro" in self.qualities:
            raise ValueError("`pro` runs the full model in stage 1: serve only `fast` with distilled weights")
        return self


def check_quality(args: LTX2Args, quality: str) -> None:
    """Raise InvalidInput unless this deployment serves `quality`."""
    if quality not in args.qualities:
        raise InvalidInput("quality", f"{quality!r} is not served by this deployment; served: {list(args.qualities)}")


def check_camera_lora(args: LTX2Args, motion: str) -> None:
    """Raise InvalidInput unless `motion` is `static` or has a LoRA configured on this deployment."""
    if motion == "static" or motion in args.camera_loras:
        return
    configured = sorted({"static", *args.camera_loras})
    raise InvalidInput(
        "camera_lora", f"{motion!r} is not configured on this deployment; configured: {', '.join(configured)}"
    )
