"""The gateway-side checks and the recipe table: pure functions and data, no model."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from deployments.ltx2.args import LTX2Args, check_camera_lora, check_quality
from deployments.ltx2.recipes import GUIDANCE_OFF, RECIPES, VERSION_CALL_ARGS, recipe_for
from serve_app.errors import InvalidInput

RANDOM = {"allow_random_weights": True}


def test_static_is_always_available_and_configured_motions_pass() -> None:
    args = LTX2Args(**RANDOM, camera_loras={"dolly_in": "/loras/dolly_in.safetensors"})
    check_camera_lora(args, "static")
    check_camera_lora(args, "dolly_in")


def test_unconfigured_motion_names_the_field_and_what_is_configured() -> None:
    args = LTX2Args(**RANDOM, camera_loras={"dolly_in": "/x.safetensors", "jib_up": "/y.safetensors"})
    with pytest.raises(InvalidInput) as err:
        check_camera_lora(args, "dolly_out")
    assert err.value.field == "camera_lora"
    assert (
        err.value.message
        == "camera_lora: 'dolly_out' is not configured on this deployment; configured: dolly_in, jib_up, static"
    )


def test_quality_must_be_served() -> None:
    check_quality(LTX2Args(**RANDOM), "pro")
    with pytest.raises(InvalidInput) as err:
        check_quality(LTX2Args(**RANDOM, qualities=("fast",)), "pro")
    assert err.value.field == "quality"


def test_unknown_camera_motion_key_fails_the_deploy() -> None:
    with pytest.raises(ValidationError, match=r"not known for LTX-2\.0"):
        LTX2Args(**RANDOM, camera_loras={"orbit": "/z.safetensors"})


def test_real_weights_need_a_distilled_variant() -> None:
    with pytest.raises(ValidationError, match="distilled_lora"):
        LTX2Args(weights="hf://Lightricks/LTX-2")
    with pytest.raises(ValidationError, match="full model"):
        LTX2Args(weights="hf://rootonchair/LTX-2-19b-distilled", transformer_kind="distilled")
    LTX2Args(weights="hf://rootonchair/LTX-2-19b-distilled", transformer_kind="distilled", qualities=("fast",))


def test_args_module_does_not_import_torch() -> None:
    code = "import sys, deployments.ltx2.args, deployments.ltx2.params; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fast_switches_off_every_guidance_term() -> None:
    (stage,) = RECIPES["2.0", "fast"].stages
    assert dict(stage.guidance) == {
        "guidance_scale": 1.0,
        "audio_guidance_scale": 1.0,
        "stg_scale": 0.0,
        "audio_stg_scale": 0.0,
        "modality_scale": 1.0,
        "audio_modality_scale": 1.0,
        "guidance_rescale": 0.0,
        "audio_guidance_rescale": 0.0,
        "spatio_temporal_guidance_blocks": None,
    }
    assert stage.steps == len(stage.sigmas) == 8 and stage.distilled


def test_pro_is_cfg_at_half_size_then_three_distilled_steps() -> None:
    first, second = RECIPES["2.0", "pro"].stages
    assert (first.size_divisor, first.distilled, first.guidance["guidance_scale"]) == (2, False, 4.0)
    assert (second.size_divisor, second.distilled, second.steps) == (1, True, 3)
    assert second.guidance == GUIDANCE_OFF and second.noise_scale == second.sigmas[0]
    assert VERSION_CALL_ARGS["2.0"]["use_cross_timestep"] is False


def test_pro_steps_override_is_explicit() -> None:
    assert recipe_for("2.0", "pro").stages[0].steps == 40
    assert [s.steps for s in recipe_for("2.0", "pro", pro_steps=2).stages] == [2, 3]
    assert recipe_for("2.0", "fast", pro_steps=2) == RECIPES["2.0", "fast"]
