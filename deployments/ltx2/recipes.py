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

# LTX-2.3/2.5's full-model guidance (diffusers >= 0.40 docs and defaults, which follow these releases): CFG 3 on
# video and 7 on audio, STG at block 28, modality-isolation guidance 3, rescale 0.7. Per step: one batch-2 CFG
# call, one STG call, one modality call = 3 transformer calls.
MULTIMODAL_GUIDANCE = MappingProxyType(
    {
        "guidance_scale": 3.0,
        "audio_guidance_scale": 7.0,
        "stg_scale": 1.0,
        "audio_stg_scale": 1.0,
        "modality_scale": 3.0,
        "audio_modality_scale": 3.0,
        "guidance_rescale": 0.7,
        "audio_guidance_rescale": 0.7,
        "spatio_temporal_guidance_blocks": (28,),
    }
)

# Arguments whose right value depends on the LTX-2 release, not on the quality mode.
VERSION_CALL_ARGS: dict[str, MappingProxyType[str, Any]] = {
    "2.0": MappingProxyType({"use_cross_timestep": False}),  # diffusers >= 0.40 defaults to the 2.3+ behaviour
    "2.3": MappingProxyType({"use_cross_timestep": True}),
    "2.5": MappingProxyType({"use_cross_timestep": True}),
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

# Distilled model (or full + distilled LoRA), 8 fixed sigmas, guidance off: one transformer call per step, full size
# at once. diffusers 0.42.1 ships one distilled schedule (Lightricks' constants) and uses it for every release.
_FAST = Recipe(
    stages=(
        Stage(
            steps=len(DISTILLED_SIGMA_VALUES),
            sigmas=tuple(DISTILLED_SIGMA_VALUES),
            guidance=GUIDANCE_OFF,
            distilled=True,
        ),
    )
)


def _pro(steps: int, guidance: MappingProxyType[str, Any]) -> Recipe:
    """Full model with guidance at half size, x2 latent upsample, then 3 distilled refinement steps at full size."""
    first = Stage(steps=steps, sigmas=None, guidance=guidance, distilled=False, size_divisor=2)
    return Recipe(stages=(first, _STAGE_2))


# (model_version, quality) -> recipe: the one table of what each release runs for each quality mode.
RECIPES: dict[tuple[str, Quality], Recipe] = {
    ("2.0", "fast"): _FAST,
    ("2.0", "pro"): _pro(40, PLAIN_CFG),  # Lightricks' LTX-2.0 launch defaults: 40 steps, CFG 4
    ("2.3", "fast"): _FAST,
    ("2.3", "pro"): _pro(30, MULTIMODAL_GUIDANCE),
    ("2.5", "fast"): _FAST,
    ("2.5", "pro"): _pro(30, MULTIMODAL_GUIDANCE),
}


def transformer_calls_per_step(stage: Stage) -> int:
    """Forward calls of the transformer one step of `stage` costs (CFG rides in the same call as a batch of 2)."""
    g = stage.guidance
    stg = (g["stg_scale"] > 0 or g["audio_stg_scale"] > 0) and bool(g["spatio_temporal_guidance_blocks"])
    modality = g["modality_scale"] != 1 or g["audio_modality_scale"] != 1
    return 1 + int(stg) + int(modality)


def recipe_for(version: str, quality: Quality, pro_steps: int | None = None) -> Recipe:
    """The recipe of `quality` on release `version`; `pro_steps` replaces the pro stage-1 step count."""
    recipe = RECIPES[version, quality]
    if quality != "pro" or pro_steps is None:
        return recipe
    first, *rest = recipe.stages
    return Recipe(stages=(replace(first, steps=pro_steps), *rest))
