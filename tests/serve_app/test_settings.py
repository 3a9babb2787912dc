"""Settings: typos fail loudly, secrets parse from the environment, and every option is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from serve_app.catalogue import AppArgs
from serve_app.settings import Secrets, key_id_of

REPO = Path(__file__).resolve().parents[2]


def test_an_unknown_key_fails_and_names_the_key() -> None:
    with pytest.raises(ValidationError, match="storge"):
        AppArgs.model_validate({"storge": {"backend": "s3"}})
    with pytest.raises(ValidationError, match="max_replica"):
        AppArgs.model_validate({"ltx2": {"placement": {"max_replica": 3}}})


def test_secrets_parse_from_the_environment_and_never_print() -> None:
    secrets = Secrets.from_env({"API_KEYS": " k1, k2 ,,", "WEBHOOK_SECRET": "whsec_abc"})
    assert [k.key.get_secret_value() for k in secrets.api_keys] == ["k1", "k2"]
    assert "k1" not in repr(secrets) and "whsec_abc" not in repr(secrets)
    assert Secrets.from_env({}).webhook_secret is None


def test_api_keys_may_name_their_tenant_and_admin_keys_are_marked() -> None:
    secrets = Secrets.from_env({"API_KEYS": "acme:k1, k2", "ADMIN_API_KEYS": "ops:k3"})
    acme, plain, ops = secrets.api_keys
    assert (acme.key_id, acme.key.get_secret_value(), acme.admin) == ("acme", "k1", False)
    assert plain.key_id == key_id_of("k2") and len(plain.key_id) == 12 and "k2" not in plain.key_id
    assert (ops.key_id, ops.admin) == ("ops", True)
    assert "k1" not in repr(secrets) and "k3" not in repr(secrets)


@pytest.mark.parametrize("entry", ["bad-name:k", "a b:k", "acme:"])
def test_a_malformed_named_key_fails_and_names_the_entry(entry: str) -> None:
    with pytest.raises(ValueError, match="name:key"):
        Secrets.from_env({"API_KEYS": entry})


def leaf_fields(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names |= leaf_fields(field.annotation)
        else:
            names.add(name)
    return names


def test_every_option_is_documented() -> None:
    docs = (REPO / "README.md").read_text() + "".join(p.read_text() for p in (REPO / "docs").glob("*.md"))
    missing = sorted(name for name in leaf_fields(AppArgs) if f"`{name}`" not in docs and f".{name}`" not in docs)
    assert not missing, f"options missing from README.md and docs/: {missing}"


def test_the_local_profile_fits_both_models_on_a_two_core_machine() -> None:
    import yaml

    config = yaml.safe_load((REPO / "serve_config.local.yaml").read_text())
    args = AppArgs.model_validate(config["applications"][0]["args"])
    models = args.models().values()
    reserved = (
        args.gateway.num_cpus * args.gateway.num_replicas
        + args.queue_num_cpus * len(models)
        + sum(m.placement.num_cpus * m.placement.max_replicas for m in models)
    )
    assert reserved <= 2, f"the local profile reserves {reserved} CPUs: a model would wait for the other to scale down"


def test_a_partial_limits_override_keeps_the_models_own_defaults() -> None:
    """`limits.video.max_fps` set in YAML changes that field only: Wav2Lip's video keeps its own 1000 MiB and 4K
    bounds and LTX-2's its 60 s (not the generic defaults of a bare MediaLimits); other kinds are untouched."""
    config = yaml.safe_load(
        """
        wav2lip:
          limits:
            video: {max_fps: 60}
        ltx2:
          limits:
            video: {max_frames: 100}
            audio: {max_channels: 1}
        """
    )
    args = AppArgs.model_validate(config)
    defaults = AppArgs()
    wav2lip, ltx2 = args.wav2lip.limits, args.ltx2.limits
    assert wav2lip.video == defaults.wav2lip.limits.video.model_copy(update={"max_fps": 60.0})
    assert (wav2lip.video.max_file_mb, wav2lip.video.max_pixels) == (1000, 3840 * 2160)
    assert wav2lip.image == defaults.wav2lip.limits.image and wav2lip.audio == defaults.wav2lip.limits.audio
    assert (ltx2.video.max_frames, ltx2.video.max_duration_s, ltx2.video.max_file_mb) == (100, 60.0, 500)
    assert ltx2.audio == defaults.ltx2.limits.audio.model_copy(update={"max_channels": 1})
    with pytest.raises(ValidationError, match="vidoe"):
        AppArgs.model_validate({"wav2lip": {"limits": {"vidoe": {"max_fps": 60}}}})
    with pytest.raises(ValidationError, match="max_fsp"):
        AppArgs.model_validate({"wav2lip": {"limits": {"video": {"max_fsp": 60}}}})
