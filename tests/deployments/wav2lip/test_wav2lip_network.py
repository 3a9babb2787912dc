"""The generator matches the official checkpoint layout, and the loader accepts every format it is found in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from deployments.wav2lip.network import (
    CheckpointMismatch,
    Wav2Lip,
    build_wav2lip,
    fold_batchnorm,
    load_wav2lip_state,
)

# Copied from shared/research/wav2lip_keys.json (the official module tree): names and shapes, in order
KEYS = json.loads((Path(__file__).parent / "wav2lip_keys.json").read_text())


@pytest.fixture(scope="module")
def reference() -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A random generator's state with non-trivial BatchNorm statistics, a fixed input and its output."""
    torch.manual_seed(0)
    model = Wav2Lip().eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    inputs = (torch.randn(2, 1, 80, 16), torch.rand(2, 6, 96, 96))
    with torch.inference_mode():
        expected = model(*inputs)
    return model.state_dict(), inputs, expected


def test_state_dict_names_and_shapes_are_the_official_ones() -> None:
    state = Wav2Lip().state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == [(k, shape) for k, shape in KEYS]
    assert sum(p.numel() for p in Wav2Lip().parameters()) == 36_298_035


def test_output_is_a_96px_face_in_0_1() -> None:
    with torch.inference_mode():
        out = Wav2Lip().eval()(torch.randn(3, 1, 80, 16), torch.rand(3, 6, 96, 96))
    assert out.shape == (3, 3, 96, 96)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_folding_batchnorm_keeps_the_outputs_and_leaves_no_norm_layer(reference) -> None:
    state, inputs, expected = reference
    folded = fold_batchnorm(build_wav2lip(state))
    assert not [m for m in folded.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    convs = [m for m in folded.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    norms = sum(k.endswith("running_mean") for k in state)
    assert len(convs) == norms + 1  # every conv had a BatchNorm except the output block's last one
    with torch.inference_mode():
        torch.testing.assert_close(folded(*inputs), expected, rtol=1e-4, atol=1e-5)


def _formats(state: dict[str, torch.Tensor]) -> dict[str, dict]:
    no_counters = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    return {
        "training-wrapper+module.": {
            "state_dict": {f"module.{k}": v for k, v in state.items()},
            "optimizer": None,
            "global_step": 3,
            "global_epoch": 1,
        },
        "wrapper": {"state_dict": state},
        "bare": state,
        "bare-without-counters": no_counters,
        "module.-without-counters": {f"module.{k}": v for k, v in no_counters.items()},
    }


@pytest.mark.parametrize("name", list(_formats({})))
def test_every_accepted_format_loads_to_identical_output(reference, name) -> None:
    state, inputs, expected = reference
    with torch.inference_mode():
        out = build_wav2lip(_formats(state)[name])(*inputs)
    assert torch.equal(out, expected), name


def test_checkpoint_files_load_through_torch_and_safetensors(reference, tmp_path: Path) -> None:
    state, inputs, expected = reference
    official = tmp_path / "wav2lip_gan.pth"
    torch.save(_formats(state)["training-wrapper+module."], official)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "wav2lip.safetensors")
    for path in (official, tmp_path / "wav2lip.safetensors"):
        with torch.inference_mode():
            assert torch.equal(build_wav2lip(path)(*inputs), expected), path.name


def test_a_tampered_checkpoint_names_the_keys_that_differ(reference) -> None:
    state = dict(reference[0])
    state.pop("audio_encoder.3.conv_block.0.weight")
    state["face_encoder_blocks.9.0.conv_block.0.weight"] = torch.zeros(1)
    state["output_block.1.weight"] = torch.zeros(4, 32, 1, 1)
    with pytest.raises(CheckpointMismatch) as info:
        load_wav2lip_state({"state_dict": state})
    message = str(info.value)
    assert "1 missing keys (audio_encoder.3.conv_block.0.weight)" in message
    assert "1 unexpected keys (face_encoder_blocks.9.0.conv_block.0.weight)" in message
    assert "1 mis-shaped tensors (output_block.1.weight (4, 32, 1, 1) != (3, 32, 1, 1))" in message


def test_a_detector_checkpoint_given_as_generator_is_refused_with_counts() -> None:
    s3fd_like = {f"conv{i}_1.weight": torch.zeros(1) for i in range(1, 8)}
    with pytest.raises(CheckpointMismatch, match=r"302 missing keys \(.*, \.\.\.\); 7 unexpected keys"):
        load_wav2lip_state(s3fd_like)


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointMismatch, match="holds a list, not a state dict"):
        load_wav2lip_state(path)
    (tmp_path / "page.pth").write_text("<html>quota exceeded</html>")
    with pytest.raises(CheckpointMismatch, match=r"cannot read .*page\.pth as a torch checkpoint"):
        load_wav2lip_state(tmp_path / "page.pth")
