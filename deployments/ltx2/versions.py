"""What differs between the LTX-2 releases (2.0, 2.3, 2.5) apart from the recipes: text encoder, vocoder rate,
repo layout, scheduler settings, camera LoRAs. Light (no torch): args validation and the gateway read it too.
research/ltx2.md §1.1-§1.5, §2.3-§2.4."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

ModelVersion = Literal["2.0", "2.3", "2.5"]

_LTX_20_MOTIONS = ("static", "dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down")


@dataclass(frozen=True)
class VersionSpec:
    """One LTX-2 release as the loader and the runner need it."""

    text_encoder: Literal["gemma3", "gemma4"]  # Gemma 3 12B for 2.0/2.3; Gemma 4 (unified) 12B from 2.5 on
    sample_rate: int  # the vocoder's output rate: what the audio is muxed at
    camera_motions: tuple[str, ...]  # motions a camera LoRA is published (or listed by Lightricks' API) for
    full_transformer_subfolder: str = "transformer"  # where the full (dev) model lives in the diffusers repo
    distilled_transformer_subfolder: str = "transformer"
    # FlowMatchEulerDiscreteScheduler settings for the full model's own schedule; {} = the repo's scheduler config
    full_scheduler: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    duration_head: bool = False  # ships LTX2DurationHead: a clip with no `duration` gets the head's length


VERSIONS: dict[str, VersionSpec] = {
    "2.0": VersionSpec(text_encoder="gemma3", sample_rate=24000, camera_motions=_LTX_20_MOTIONS),
    # Lightricks' own API lists focus_shift among the 2.3 camera motions.
    "2.3": VersionSpec(text_encoder="gemma3", sample_rate=48000, camera_motions=(*_LTX_20_MOTIONS, "focus_shift")),
    # LTX-2.5-Diffusers: transformer/ is the distilled model, the full one is transformer_full/ and runs with a
    # dynamically shifted schedule with a terminal shift of 0.1 (diffusers LTX-2.5 docs). No camera LoRAs are
    # published for 2.5: only `static` (the base model).
    "2.5": VersionSpec(
        text_encoder="gemma4",
        sample_rate=48000,
        camera_motions=("static",),
        full_transformer_subfolder="transformer_full",
        full_scheduler=MappingProxyType({"use_dynamic_shifting": True, "shift_terminal": 0.1}),
        duration_head=True,
    ),
}

ALL_CAMERA_MOTIONS = tuple(dict.fromkeys(m for spec in VERSIONS.values() for m in spec.camera_motions))

# Lightricks names its LoRA files after the release: ltx-2-19b-... (2.0), ltx-2.3-22b-..., ltx-2.5-22b-...
_RELEASE_IN_NAME = re.compile(r"ltx-?(2(?:\.\d)?)-\d+b", re.IGNORECASE)


def lora_release(source: str) -> str | None:
    """The LTX-2 release a LoRA file is for, read from Lightricks' file naming; None when the name does not say."""
    match = _RELEASE_IN_NAME.search(source.rsplit("/", 1)[-1]) or _RELEASE_IN_NAME.search(source)
    if match is None:
        return None
    release = match.group(1)
    return release if "." in release else f"{release}.0"


def check_lora_release(source: str, version: str, what: str) -> None:
    """Raise ValueError when `source` is named as a LoRA of another LTX-2 release than `version`."""
    release = lora_release(source)
    if release is not None and release != version:
        raise ValueError(
            f"{what} {source} is a LoRA for LTX-{release}, but this deployment serves LTX-{version} "
            f"(model_version); use the LTX-{version} file"
        )
