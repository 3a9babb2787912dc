"""The quality modes as data: which schedule, how many steps and which guidance each denoising stage uses.

Every guidance argument is spelled out because diffusers' defaults changed between releases (0.40 turned on
STG, modality guidance and audio CFG by default: 3 transformer calls per step). research/ltx2.md §1.3, §1.5.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES

from deployments.ltx2.params import Quality

# The transformer runs once per step: no CFG batch, no STG pass, no modality-isolation pass.
GUIDANCE_OFF = MappingProxyType(
    {
        "guidance_scale": 1.0,
        "audio_guidance_scale": 1.0,  # the pipeline reads 0.0 as "same as video", so 1.0 is the only "off"
        "stg_scale": 0.0,
        "audio_stg_scale": 0.0,
        "modality_scale": 1.0,
        "audio_modality_scale": 1.0,
        "guidance_rescale": 0.0,
        "audio_guidance_rescale": 0.0,
        "spatio_temporal_guidance_blocks": None,
    }
)

# LTX-2.0's launch recipe: plain CFG 4.0 on video and audio (one batch-2 transformer call per step).
PLAIN_CFG = MappingProxyType({**GUIDANCE_OFF, "guidance_scale": 4.0, "audio_guidance_scale": 4.0})

# Arguments whose right value depends on the LTX-2 release, not on the quality mode.
VERSION_CALL_ARGS: dict[str, MappingProxyType[str, Any]] = {
    "2.0": MappingProxyType({"use_cross_timestep": False}),  # diffusers >= 0.40 defaults to the 2.3+ behaviour
}

# Arguments diffusers has defaults for that we pin so a diffusers upgrade cannot change our output silently.
FIXED_CALL_ARGS = MappingProxyType(
    {
        "motion_speed": 1.0,
        "decode_timestep": 0.0,
        "decode_noise_scale": None,
        "enable_prompt_enhancement": False,
        "num_videos_per_prompt": 1,
    }
)


@dataclass(frozen=True)
class Stage:
    """One denoising pass of the pipeline."""

    steps: int
    sigmas: tuple[float, ...] | None  # None = the scheduler's own shifted schedule for `steps`
    guidance: MappingProxyType[str, Any]
    distilled: bool  # needs the distilled weights (distilled transformer or full model + distilled LoRA)
    noise_scale: float = 0.0  # > 0 re-noises given latents: stage 2 starts from the upsampled stage 1
    size_divisor: int = 1  # renders at (width, height) / size_divisor


@dataclass(frozen=True)
class Recipe:
    """A quality mode: one stage, or two stages with the x2 latent upsampler between them."""

    stages: tuple[Stage, ...]


_STAGE_2 = Stage(
    steps=len(STAGE_2_DISTILLED_SIGMA_VALUES),
    sigmas=tuple(STAGE_2_DISTILLED_SIGMA_VALUES),
    guidance=GUIDANCE_OFF,
    distilled=True,
    noise_scale=STAGE_2_DISTILLED_SIGMA_VALUES[0],
)

RECIPES: dict[Quality, Recipe] = {
    # Distilled model, 8 fixed sigmas, guidance off: one transformer call per step, full size at once.
    "fast": Recipe(
        stages=(
            Stage(
                steps=len(DISTILLED_SIGMA_VALUES),
                sigmas=tuple(DISTILLED_SIGMA_VALUES),
                guidance=GUIDANCE_OFF,
                distilled=True,
            ),
        )
    ),
    # Full model with CFG at half size, x2 latent upsample, then 3 distilled refinement steps at full size.
    "pro": Recipe(stages=(Stage(steps=40, sigmas=None, guidance=PLAIN_CFG, distilled=False, size_divisor=2), _STAGE_2)),
}


def recipe_for(quality: Quality, pro_steps: int | None = None) -> Recipe:
    """The recipe of `quality`, with the pro stage-1 step count replaced when `pro_steps` is set."""
    recipe = RECIPES[quality]
    if quality != "pro" or pro_steps is None:
        return recipe
    first, *rest = recipe.stages
    return Recipe(stages=(replace(first, steps=pro_steps), *rest))
