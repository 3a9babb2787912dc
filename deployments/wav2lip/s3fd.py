"""S3FD face detector compatible with the public `s3fd-619a316812.pth` weights (face_alignment's key names).

The official Wav2Lip decodes S3FD's outputs with a Python loop over every anchor above 0.05; here decoding is
one tensor expression per feature level, and NMS is a small greedy loop over the few boxes left.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_MEAN_RGB = (104.0, 117.0, 123.0)  # subtracted from RGB frames, as face_alignment does
_VARIANCES = (0.1, 0.2)


class L2Norm(nn.Module):
    """Per-position channel L2 normalisation with a learned per-channel scale."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10
        return x / norm * self.weight.view(1, -1, 1, 1)


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, padding)


class S3FD(nn.Module):
    """VGG16 trunk with six detection heads (strides 4..128); attribute names are the checkpoint's keys."""

    def __init__(self) -> None:
        super().__init__()
        widths = {"1": (3, 64, 2), "2": (64, 128, 2), "3": (128, 256, 3), "4": (256, 512, 3), "5": (512, 512, 3)}
        for stage, (cin, cout, count) in widths.items():
            for i in range(1, count + 1):
                setattr(self, f"conv{stage}_{i}", _conv(cin if i == 1 else cout, cout))
        self.fc6 = _conv(512, 1024, 3, 1, 3)
        self.fc7 = _conv(1024, 1024, 1, 1, 0)
        self.conv6_1 = _conv(1024, 256, 1, 1, 0)
        self.conv6_2 = _conv(256, 512, 3, 2, 1)
        self.conv7_1 = _conv(512, 128, 1, 1, 0)
        self.conv7_2 = _conv(128, 256, 3, 2, 1)
        self.conv3_3_norm = L2Norm(256, 10.0)
        self.conv4_3_norm = L2Norm(512, 8.0)
        self.conv5_3_norm = L2Norm(512, 5.0)
        heads = {"conv3_3_norm": 256, "conv4_3_norm": 512, "conv5_3_norm": 512, "fc7": 1024, "conv6_2": 512,
                 "conv7_2": 256}  # fmt: skip
        for name, cin in heads.items():
            # the first head scores 3 background "max-out" channels + 1 face channel
            setattr(self, f"{name}_mbox_conf", _conv(cin, 4 if name == "conv3_3_norm" else 2))
            setattr(self, f"{name}_mbox_loc", _conv(cin, 4))
        self._stages = widths

    def _stage(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        for i in range(1, self._stages[stage][2] + 1):
            x = F.relu(getattr(self, f"conv{stage}_{i}")(x))
        return x

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Mean-subtracted RGB (B,3,H,W) -> per level (face probability (B,H',W'), box offsets (B,4,H',W'))."""
        h = F.max_pool2d(self._stage(x, "1"), 2, 2)
        h = F.max_pool2d(self._stage(h, "2"), 2, 2)
        f3 = self._stage(h, "3")
        f4 = self._stage(F.max_pool2d(f3, 2, 2), "4")
        f5 = self._stage(F.max_pool2d(f4, 2, 2), "5")
        fc7 = F.relu(self.fc7(F.relu(self.fc6(F.max_pool2d(f5, 2, 2)))))
        f6 = F.relu(self.conv6_2(F.relu(self.conv6_1(fc7))))
        f7 = F.relu(self.conv7_2(F.relu(self.conv7_1(f6))))
        features = {"conv3_3_norm": self.conv3_3_norm(f3), "conv4_3_norm": self.conv4_3_norm(f4),
                    "conv5_3_norm": self.conv5_3_norm(f5), "fc7": fc7, "conv6_2": f6, "conv7_2": f7}  # fmt: skip
        levels = []
        for name, feat in features.items():
            conf = getattr(self, f"{name}_mbox_conf")(feat)
            if conf.shape[1] == 4:
                conf = torch.cat([conf[:, :3].amax(dim=1, keepdim=True), conf[:, 3:]], dim=1)
            levels.append((conf.softmax(dim=1)[:, 1], getattr(self, f"{name}_mbox_loc")(feat)))
        return levels


def decode(levels: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """All anchors of all levels as (B, N, 5) boxes [x1, y1, x2, y2, score] in input pixels."""
    out = []
    for i, (score, loc) in enumerate(levels):
        stride = 2 ** (i + 2)
        h, w = score.shape[-2:]
        ys, xs = torch.meshgrid(torch.arange(h, device=loc.device), torch.arange(w, device=loc.device), indexing="ij")
        centre = torch.stack([xs, ys]).to(loc.dtype) * stride + stride / 2  # (2, H, W)
        size = 4.0 * stride  # square anchors, 4 strides wide
        xy = centre + loc[:, :2] * _VARIANCES[0] * size
        wh = size * torch.exp(loc[:, 2:] * _VARIANCES[1])
        boxes = torch.cat([xy - wh / 2, xy + wh / 2, score[:, None]], dim=1)  # (B, 5, H, W)
        out.append(boxes.flatten(2).transpose(1, 2))
    return torch.cat(out, dim=1)


def nms(boxes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression of (N, 5) [x1, y1, x2, y2, score] boxes; returns kept indices by score."""
    order = boxes[:, 4].argsort(descending=True)
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:4], b[None, :, 2:4])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    overlaps = (inter / (area[:, None] + area[None, :] - inter).clamp(min=1e-9) > iou_threshold).cpu().numpy()
    suppressed = np.zeros(len(b), dtype=bool)
    keep = []
    for i in range(len(b)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlaps[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=order.device)]


class S3FDDetector:
    """Batched S3FD on same-sized BGR frames; returns every face per frame, best first."""

    def __init__(self, weights: str | Path | None, device: torch.device, threshold: float = 0.5) -> None:
        self.net = S3FD().to(device).eval()
        if weights is not None:
            self.net.load_state_dict(torch.load(str(weights), map_location=device, weights_only=True))
        self.device = device
        self.threshold = threshold

    @torch.inference_mode()
    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(k, 5) [x1, y1, x2, y2, score] arrays, one per frame, sorted by score (k may be 0)."""
        x = torch.from_numpy(np.stack(frames)).to(self.device).flip(-1).float()  # BGR -> RGB
        x = (x - torch.tensor(_MEAN_RGB, device=self.device)).permute(0, 3, 1, 2)
        candidates = decode(self.net(x))
        results = []
        for boxes in candidates:
            # Filtering before NMS keeps the result: only a higher-scored box can suppress a box
            boxes = boxes[boxes[:, 4] > self.threshold]
            kept = boxes[nms(boxes, 0.3)] if len(boxes) else boxes
            results.append(kept.float().cpu().numpy())
        return results
