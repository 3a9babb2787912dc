"""Weights -> components for one replica: fetch (local, hf://, s3://), tiny random fallback, memory options, LoRAs."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import LTX2Pipeline, LTX2VideoTransformer3DModel
from diffusers.pipelines.ltx2 import LTX2LatentUpsamplerModel
from transformers import AutoTokenizer, Gemma3ForConditionalGeneration, Gemma4UnifiedForConditionalGeneration

from deployments.contract import RANDOM_WEIGHTS
from deployments.ltx2.args import LTX2Args
from deployments.ltx2.tiny import build_tiny_components, build_tiny_upsampler
from deployments.ltx2.versions import VERSIONS, check_lora_release
from deployments.weights import fetch_weights

logger = logging.getLogger(__name__)

DISTILLED_ADAPTER = "distilled"  # adapter name of `distilled_lora`; camera LoRAs use their motion's name
_TEXT_PARTS = ("text_encoder", "tokenizer")
_TEXT_ENCODERS = {"gemma3": Gemma3ForConditionalGeneration, "gemma4": Gemma4UnifiedForConditionalGeneration}


@dataclass
class Loaded:
    """The components of one replica and where they came from."""

    components: dict[str, Any]
    upsampler: LTX2LatentUpsamplerModel | None
    weights: str  # RANDOM_WEIGHTS or the configured source


def resolve_dtype(args: LTX2Args, device: torch.device) -> torch.dtype:
    """`auto` -> bfloat16 on CUDA (what the weights ship in), float32 on CPU (bf16 matmuls are slow there)."""
    if args.dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, args.dtype)


def load_components(args: LTX2Args, dtype: torch.dtype) -> Loaded:
    """Load the configured weights, or build tiny random ones when that is explicitly allowed. Every component is
    in `dtype` except the vocoder, which always runs in float32."""
    loaded = _load_weights(args, dtype) if args.weights is not None else _build_random(args, dtype)
    loaded.components["vocoder"] = vocoder_in_float32(loaded.components["vocoder"])
    return loaded


def vocoder_in_float32(vocoder: torch.nn.Module) -> torch.nn.Module:
    """LTX-2.3/2.5's BWE vocoder loses audio quality in bf16 (research/ltx2.md, vllm-omni PR #6342), and 2.0's
    costs 0.1 GiB more in float32. The pipeline hands it the audio VAE's mel in the pipeline's dtype, so the mel is
    cast on the way in."""
    vocoder = vocoder.to(torch.float32)
    vocoder.register_forward_pre_hook(lambda module, args: tuple(a.float() for a in args))
    return vocoder


def _build_random(args: LTX2Args, dtype: torch.dtype) -> Loaded:
    if not args.allow_random_weights:
        raise ValueError(
            "ltx2 has no weights configured: set `weights` (local dir, hf://, s3://) "
            "or, for a local smoke profile only, `allow_random_weights: true`"
        )
    logger.warning(
        "!!! ltx2: NO WEIGHTS CONFIGURED - using TINY RANDOMLY-INITIALISED models (%s); every video will "
        "be noise. Local/test profile only. !!!",
        RANDOM_WEIGHTS,
    )
    tiny = build_tiny_components(args.model_version)
    components = {k: _to_dtype(v, dtype) for k, v in tiny.items()}
    return Loaded(components, _to_dtype(build_tiny_upsampler(), dtype), RANDOM_WEIGHTS)


def _load_weights(args: LTX2Args, dtype: torch.dtype) -> Loaded:
    cache = args.weights_cache_dir
    spec = VERSIONS[args.model_version]
    subfolder = spec.full_transformer_subfolder if args.transformer_kind == "full" else "transformer"
    skip = (*(_TEXT_PARTS if args.text_encoder else ()), *(("transformer",) if subfolder != "transformer" else ()))
    root = _fetch_pipeline_dir(args.weights, cache, skip=skip)
    overrides: dict[str, Any] = {}
    if args.text_encoder:
        overrides |= _load_text_encoder(fetch_weights(args.text_encoder, cache), spec.text_encoder, dtype)
    if subfolder != "transformer":  # LTX-2.5: the full model sits beside the distilled one, outside model_index
        fetch_weights(_join(args.weights, subfolder), cache)
        overrides["transformer"] = LTX2VideoTransformer3DModel.from_pretrained(root, subfolder=subfolder, dtype=dtype)
    pipe = LTX2Pipeline.from_pretrained(root, dtype=dtype, **overrides)
    upsampler = _load_upsampler(args, dtype) if "pro" in args.qualities else None
    return Loaded(dict(pipe.components), upsampler, args.weights)


def _to_dtype(component: Any, dtype: torch.dtype) -> Any:
    """Cast modules only when needed: the tiny models are built in float32 already."""
    if isinstance(component, torch.nn.Module) and component.dtype != dtype:
        return component.to(dtype)
    return component


def _join(source: str, sub: str) -> str:
    return f"{source.rstrip('/')}/{sub}"


def _fetch_pipeline_dir(source: str, cache: str, skip: tuple[str, ...]) -> Path:
    """Fetch model_index.json and only the component folders it names: a Hub repo such as Lightricks/LTX-2
    also holds ~150 GB of single-file checkpoints that diffusers never reads."""
    index = fetch_weights(_join(source, "model_index.json"), cache)
    parts = [k for k, v in json.loads(index.read_text()).items() if isinstance(v, list) and v[0] and k not in skip]
    for part in parts:
        fetch_weights(_join(source, part), cache)
    return index.parent


def _load_text_encoder(path: Path, kind: str, dtype: torch.dtype) -> dict[str, Any]:
    """The release's Gemma (3 or 4) from a diffusers-layout dir (text_encoder/ + tokenizer/) or a plain checkpoint."""
    layout = (path / "text_encoder").is_dir()
    encoder_dir, tokenizer_dir = (path / "text_encoder", path / "tokenizer") if layout else (path, path)
    return {
        "text_encoder": _TEXT_ENCODERS[kind].from_pretrained(encoder_dir, dtype=dtype),
        "tokenizer": AutoTokenizer.from_pretrained(tokenizer_dir),
    }


def _load_upsampler(args: LTX2Args, dtype: torch.dtype) -> LTX2LatentUpsamplerModel:
    source = args.upsampler or _join(str(args.weights), "latent_upsampler")
    path = fetch_weights(source, args.weights_cache_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no latent upsampler (config.json) at {source}; set `upsampler` or drop `pro`")
    return LTX2LatentUpsamplerModel.from_pretrained(path, dtype=dtype).eval()


def load_lora(pipe: LTX2Pipeline, source: str, cache: str, adapter_name: str, version: str) -> None:
    """Load one LoRA (a .safetensors file, or a dir holding exactly one) as the named adapter; a file named for
    another LTX-2 release than `version` is refused before it is read."""
    path = fetch_weights(source, cache)
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if len(files) != 1:
            raise FileNotFoundError(
                f"LoRA source {source} must hold exactly one .safetensors file, found {[f.name for f in files]}; "
                "name the file in the source"
            )
        path = files[0]
    check_lora_release(path.name, version, f"LoRA {adapter_name!r}:")
    logger.info("ltx2: loading LoRA %s from %s", adapter_name, source)
    pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=adapter_name)


def apply_memory_options(args: LTX2Args, pipe: LTX2Pipeline, dtype: torch.dtype) -> None:
    """fp8 storage (after the LoRAs are loaded) and VAE tiling; placement is per pipeline, by the caller."""
    if args.fp8_layerwise:
        # Weights rest in fp8 and each layer is upcast just before it runs. Norms stay in full precision, and
        # so do LoRA layers: PEFT's LoRA matmul has no upcast hook of its own, and fp8 would also blur the deltas.
        skip = (*pipe.transformer._skip_layerwise_casting_patterns, "lora_")
        pipe.transformer.enable_layerwise_casting(
            storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype, skip_modules_pattern=skip
        )
    if args.vae_tiling:
        pipe.vae.enable_tiling()
