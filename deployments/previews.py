"""Preview images of a finished video: a WebP poster (thumbnail) and a JPEG spritesheet of evenly spaced frames.

Made in-process with PyAV and Pillow (no shell), in one decoding pass: only the frames that are shown are
converted to images, so a long video is never held in memory. Stored beside the video (see `preview_keys`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

THUMBNAIL_MAX_SIDE = 512  # a poster for a list or a player, not a second copy of the video
TILE_WIDTH = 160  # a spritesheet tile's width; its height keeps the video's aspect ratio
SHEET_COLUMNS = 5
SHEET_MAX_TILES = 25  # 5 x 5: evenly spaced frames, fewer for a shorter video
PREVIEW_TYPES = {"thumbnail": "image/webp", "spritesheet": "image/jpeg"}


class PreviewError(ValueError):
    """The video has no frame to make a preview of, or cannot be decoded."""


@dataclass(frozen=True)
class SheetLayout:
    """How a spritesheet is laid out: `tiles` frames in a grid `columns` wide, each `tile_size` pixels."""

    tiles: int
    columns: int
    rows: int
    tile_size: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        """The sheet's (width, height) in pixels."""
        return self.columns * self.tile_size[0], self.rows * self.tile_size[1]


def sheet_layout(frames: int, width: int, height: int) -> SheetLayout:
    """The grid of a spritesheet for a video of `frames` frames of `width` x `height`."""
    tiles = max(1, min(SHEET_MAX_TILES, frames))
    columns = min(SHEET_COLUMNS, tiles)
    tile_width = min(TILE_WIDTH, width)
    tile_height = max(1, round(height * tile_width / width))
    return SheetLayout(tiles, columns, math.ceil(tiles / columns), (tile_width, tile_height))


def preview_keys(output_key: str) -> dict[str, str]:
    """Storage keys of a video's previews, beside it: `jobs/{id}/output.mp4` -> `jobs/{id}/thumbnail.webp` and
    `jobs/{id}/spritesheet.jpg`; another file name `x.mp4` gets `x-thumbnail.webp` (a chain's stage videos)."""
    folder, _, name = output_key.rpartition("/")
    stem = name.rsplit(".", 1)[0]
    prefix = (f"{folder}/" if folder else "") + ("" if stem == "output" else f"{stem}-")
    return {"thumbnail": f"{prefix}thumbnail.webp", "spritesheet": f"{prefix}spritesheet.jpg"}


def make_previews(video: Path, thumbnail: Path, spritesheet: Path) -> SheetLayout:
    """Write the WebP poster (the middle frame) and the JPEG spritesheet of `video`; returns the sheet's layout."""
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise PreviewError("the file has no video stream")
            stream = container.streams.video[0]
            total = _frame_count(container, stream)
            layout = sheet_layout(total, stream.codec_context.width, stream.codec_context.height)
            wanted = {round((i + 0.5) * total / layout.tiles - 0.5): i for i in range(layout.tiles)}
            poster_index = total // 2
            tiles: list[Image.Image] = []
            poster: Image.Image | None = None
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted or index == poster_index:
                    image = frame.to_image()
                    if index in wanted:
                        tiles.append(image.resize(layout.tile_size, Image.Resampling.BILINEAR))
                    if index == poster_index:
                        poster = image
    except av.FFmpegError as exc:
        raise PreviewError(f"cannot decode the video: {exc}") from exc
    if not tiles:
        raise PreviewError("the video has no decodable frame")
    _write_thumbnail(poster or tiles[-1], thumbnail)
    return _write_sheet(tiles, layout, spritesheet)


def _frame_count(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """Frames in the stream, from the header (mp4 states it), else estimated from duration and rate."""
    if stream.frames:
        return stream.frames
    duration = container.duration / av.time_base if container.duration else 0.0
    rate = float(stream.average_rate or stream.guessed_rate or 0)
    return max(1, round(duration * rate))


def _write_thumbnail(image: Image.Image, path: Path) -> None:
    image = image.convert("RGB")
    image.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE), Image.Resampling.LANCZOS)
    image.save(path, format="WEBP", quality=80)


def _write_sheet(tiles: list[Image.Image], layout: SheetLayout, path: Path) -> SheetLayout:
    """The tiles in rows; a header that overstated the frame count gives fewer tiles, and a tighter grid."""
    if len(tiles) < layout.tiles:
        columns = min(SHEET_COLUMNS, len(tiles))
        layout = SheetLayout(len(tiles), columns, math.ceil(len(tiles) / columns), layout.tile_size)
    sheet = Image.new("RGB", layout.size)
    for i, tile in enumerate(tiles):
        sheet.paste(
            tile.convert("RGB"),
            ((i % layout.columns) * layout.tile_size[0], (i // layout.columns) * layout.tile_size[1]),
        )
    sheet.save(path, format="JPEG", quality=85)
    return layout
