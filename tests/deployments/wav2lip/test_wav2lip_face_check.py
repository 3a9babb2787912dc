"""The submit-time face check of a still image: the replicas' detector (here OpenCV's Haar cascade), on CPU."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deployments.media import probe
from deployments.wav2lip.args import Wav2LipArgs
from deployments.wav2lip.facecheck import image_has_face
from deployments.wav2lip.request import Wav2LipRequest
from deployments.wav2lip.spec import SPEC
from serve_app.errors import InvalidInput
from tests.deployments.wav2lip.wav2lip_inputs import astronaut


def test_a_photo_of_a_face_passes_and_a_wall_does_not(tmp_path):
    Image.fromarray(astronaut()[..., ::-1]).save(tmp_path / "face.png")
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(tmp_path / "wall.png")
    assert image_has_face(tmp_path / "face.png", Wav2LipArgs())
    assert not image_has_face(tmp_path / "wall.png", Wav2LipArgs())


def test_a_still_image_without_a_face_is_refused_on_its_field(tmp_path):
    Image.fromarray(np.full((64, 64, 3), 30, np.uint8)).save(tmp_path / "dark.png")
    request = Wav2LipRequest(model="wav2lip", image_key="uploads/a/dark.png", audio_key="uploads/a/s.wav")
    image_input = next(staged for staged in SPEC.inputs if staged.field == "image_key")
    with pytest.raises(InvalidInput, match="no face") as caught:
        SPEC.check_input(request, SPEC.args(), image_input, probe(tmp_path / "dark.png"))
    assert caught.value.field == "image_key"
