"""The Wav2Lip generator, laid out so the official `wav2lip.pth` / `wav2lip_gan.pth` state dicts load unchanged.

Module and attribute names (`face_encoder_blocks`, `audio_encoder`, `face_decoder_blocks`, `output_block`,
`conv_block`, `act`) are the state-dict key names, so they must not be renamed.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

IMG_SIZE = 96  # the network only generates 96x96 faces
MEL_BINS, MEL_STEPS = 80, 16  # one mel window per video frame: 80 bins x 16 steps (0.2 s)
_SHOWN = 5  # how many example keys an error message lists per kind


class CheckpointMismatch(ValueError):
    """A checkpoint whose tensors do not fit the Wav2Lip generator."""


class ConvBlock(nn.Module):
    """Conv + BatchNorm + ReLU; `residual` adds the input after BN and before the ReLU, as the original does."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int | tuple[int, int], padding: int, *,
                 residual: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        return self.act(out + x if self.residual else out)


class ConvTransposeBlock(nn.Module):
    """Transposed conv + BatchNorm + ReLU (the decoder's upsampling step)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, output_padding: int = 0) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def _down(cin: int, cout: int, residuals: int) -> nn.Sequential:
    """A stride-2 conv followed by `residuals` residual convs at the new width."""
    layers = [ConvBlock(cin, cout, 3, 2, 1)]
    layers += [ConvBlock(cout, cout, 3, 1, 1, residual=True) for _ in range(residuals)]
    return nn.Sequential(*layers)


def _up(cin: int, cout: int, residuals: int) -> nn.Sequential:
    """A stride-2 transposed conv followed by `residuals` residual convs at the new width."""
    layers: list[nn.Module] = [ConvTransposeBlock(cin, cout, 3, 2, 1, output_padding=1)]
    layers += [ConvBlock(cout, cout, 3, 1, 1, residual=True) for _ in range(residuals)]
    return nn.Sequential(*layers)


class Wav2Lip(nn.Module):
    """U-Net face decoder conditioned on an audio embedding; faces (B,6,96,96) BGR in [0,1] -> (B,3,96,96)."""

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList(
            [
                nn.Sequential(ConvBlock(6, 16, 7, 1, 3)),  # 96
                _down(16, 32, 2),  # 48
                _down(32, 64, 3),  # 24
                _down(64, 128, 2),  # 12
                _down(128, 256, 2),  # 6
                _down(256, 512, 1),  # 3
                nn.Sequential(ConvBlock(512, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0)),  # 1
            ]
        )
        self.audio_encoder = nn.Sequential(
            ConvBlock(1, 32, 3, 1, 1),
            ConvBlock(32, 32, 3, 1, 1, residual=True),
            ConvBlock(32, 32, 3, 1, 1, residual=True),
            ConvBlock(32, 64, 3, (3, 1), 1),
            ConvBlock(64, 64, 3, 1, 1, residual=True),
            ConvBlock(64, 64, 3, 1, 1, residual=True),
            ConvBlock(64, 128, 3, 3, 1),
            ConvBlock(128, 128, 3, 1, 1, residual=True),
            ConvBlock(128, 128, 3, 1, 1, residual=True),
            ConvBlock(128, 256, 3, (3, 2), 1),
            ConvBlock(256, 256, 3, 1, 1, residual=True),
            ConvBlock(256, 512, 3, 1, 0),
            ConvBlock(512, 512, 1, 1, 0),
        )
        self.face_decoder_blocks = nn.ModuleList(
            [
                nn.Sequential(ConvBlock(512, 512, 1, 1, 0)),  # 1
                nn.Sequential(ConvTransposeBlock(1024, 512, 3, 1, 0), ConvBlock(512, 512, 3, 1, 1, residual=True)),  # 3
                _up(1024, 512, 2),  # 6
                _up(768, 384, 2),  # 12
                _up(512, 256, 2),  # 24
                _up(320, 128, 2),  # 48
                _up(160, 64, 2),  # 96
            ]
        )
        self.output_block = nn.Sequential(ConvBlock(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, audio: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """Audio first, as in the original: mel (B,1,80,16) and faces (B,6,96,96) -> faces (B,3,96,96)."""
        skips = []
        x = faces
        for block in self.face_encoder_blocks:
            x = block(x)
            skips.append(x)
        x = self.audio_encoder(audio)
        for block in self.face_decoder_blocks:
            # decoder output first, then the encoder skip of the same size
            x = torch.cat((block(x), skips.pop()), dim=1)
        return self.output_block(x)


def _is_counter(key: str) -> bool:
    # BatchNorm's step counter is unused in eval mode; checkpoints from different torch versions differ in it
    return key.endswith("num_batches_tracked")


def _read(source: str | Path | Mapping[str, object]) -> Mapping[str, object]:
    """A checkpoint file (.pth/.pt via torch, .safetensors) or an in-memory mapping, unwrapped to its state dict."""
    if isinstance(source, Mapping):
        data = source
    elif str(source).endswith(".safetensors"):
        from safetensors.torch import load_file

        data = load_file(str(source))
    else:
        try:  # weights_only: a checkpoint is data, never code to run
            data = torch.load(str(source), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:  # truncated download, HTML page, ...
            raise CheckpointMismatch(f"cannot read {source} as a torch checkpoint: {exc}") from exc
    if not isinstance(data, Mapping):
        raise CheckpointMismatch(f"checkpoint {source!s:.200} holds a {type(data).__name__}, not a state dict")
    state = data.get("state_dict", data)
    if not isinstance(state, Mapping):
        raise CheckpointMismatch("checkpoint 'state_dict' entry is not a mapping of tensors")
    return state


def _describe(kind: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN]) + (", ..." if len(keys) > _SHOWN else "")
    return f"{len(keys)} {kind} ({shown})"


def load_wav2lip_state(source: str | Path | Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Read and check a Wav2Lip checkpoint; return a state dict that `Wav2Lip.load_state_dict` accepts."""
    state = {k.removeprefix("module."): v for k, v in _read(source).items() if not _is_counter(k)}
    with torch.device("meta"):  # shapes only: skips initialising 36 M parameters
        expected = {k: v.shape for k, v in Wav2Lip().state_dict().items() if not _is_counter(k)}
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    misshaped = sorted(
        f"{k} {tuple(getattr(state[k], 'shape', ()))} != {tuple(expected[k])}"
        for k in expected.keys() & state.keys()
        if not isinstance(state[k], torch.Tensor) or state[k].shape != expected[k]
    )
    if missing or unexpected or misshaped:
        parts = [(missing, "missing keys"), (unexpected, "unexpected keys"), (misshaped, "mis-shaped tensors")]
        detail = "; ".join(_describe(kind, keys) for keys, kind in parts if keys)
        raise CheckpointMismatch(f"not a Wav2Lip generator checkpoint: {detail}")
    return state  # type: ignore[return-value]  # every value was checked to be a tensor above


def build_wav2lip(source: str | Path | Mapping[str, object] | None) -> Wav2Lip:
    """A Wav2Lip generator in eval mode with the checkpoint's weights, or randomly initialised when None."""
    model = Wav2Lip()
    if source is not None:
        # strict=False only tolerates the BatchNorm counters dropped above; everything else was checked
        model.load_state_dict(load_wav2lip_state(source), strict=False)
    return model.eval()


def fold_batchnorm(model: Wav2Lip) -> Wav2Lip:
    """Fold each BatchNorm into the conv before it, in place, for inference: the same outputs in eval mode
    with one pass over the activations fewer per layer (2-5% of the generator's time on CPU, bench/RESULTS.md).

    Call it after the checkpoint is loaded: the folded model no longer has the checkpoint's BatchNorm keys.
    """
    for block in model.modules():
        if isinstance(block, ConvBlock | ConvTransposeBlock) and isinstance(block.conv_block, nn.Sequential):
            conv, norm = block.conv_block
            block.conv_block = fuse_conv_bn_eval(conv, norm, transpose=isinstance(conv, nn.ConvTranspose2d))
    return model
