"""What a caller reads of a failed run (no Ray cluster): input errors are final, lost runs are retried, and no
message carries the server's insides."""

from __future__ import annotations

from ray.exceptions import RayTaskError

from deployments.contract import caller_safe
from serve_app.errors import InvalidInput, JobFailed
from serve_app.jobs.failures import RunLost, final_error, lost_run_reason

RAY_REPR = (
    "\x1b[36mray::ServeReplica:app:Model.handle_request_with_rejection()\x1b[39m "
    '(pid=48213, ip=10.0.3.17, actor_id=5f1c9a) File "/srv/venv/lib/python3.11/site-packages/PIL/Image.py", '
    "line 3290: DecompressionBombError: Image size (1600000000 pixels) exceeds limit; node fe80::1ff:fe23:4567:890a"
)


def test_caller_safe_strips_colour_codes_ray_reprs_pids_addresses_and_paths():
    safe = caller_safe(RAY_REPR)
    for inside in ("\x1b", "ray::", "pid=", "48213", "10.0.3.17", "/srv/venv", "fe80::", "actor_id"):
        assert inside not in safe, (inside, safe)
    assert "DecompressionBombError: Image size (1600000000 pixels) exceeds limit" in safe


def test_caller_safe_keeps_ordinary_numbers_times_and_ratios():
    assert caller_safe("at 12:30:45 a 16:9 video of 121 frames") == "at 12:30:45 a 16:9 video of 121 frames"


def test_an_input_error_raised_in_a_replica_is_final_with_its_own_code():
    raised = RayTaskError("run", "traceback", JobFailed("image_key: not an image", code="invalid_image"))
    error = final_error(raised)
    assert error is not None and (error.code, error.message) == ("invalid_image", "image_key: not an image")
    assert final_error(InvalidInput("audio_key", "no audio stream")).code == "invalid_input"


def test_anything_else_is_a_lost_run_with_a_reason_written_for_the_caller():
    assert final_error(RuntimeError("CUDA error: an illegal memory access")) is None
    assert final_error(RunLost("silent")) is None
    assert lost_run_reason(RunLost("silent")) == "no heartbeat from its replica (frozen, hung or gone)"
    assert lost_run_reason(RuntimeError(RAY_REPR)) == "its replica crashed"
