"""Tiny randomly-initialised LTX-2 components for each release, built in code: the whole flow runs with no download.

Shapes follow diffusers' own LTX-2 test fixtures (research/ltx2.md §3), except the video VAE, which keeps the
real model's compression; the text encoder (Gemma 3, or Gemma 4 for 2.5) and its tokenizer are built from configs
too, so nothing touches the Hub. Each release keeps its architecture flags (2.3+: gated attention, prompt
modulation, per-modality text projections, the 48 kHz BWE vocoder; 2.5: Gemma 4, no video FF bias, the duration
head). The outputs are noise, not video.
"""

from __future__ import annotations

import math
import string
from typing import Any

import torch
from diffusers import (
    AutoencoderKLLTX2Audio,
    AutoencoderKLLTX2Video,
    FlowMatchEulerDiscreteScheduler,
    LTX2VideoTransformer3DModel,
)
from diffusers.pipelines.ltx2 import (
    LTX2DurationHead,
    LTX2LatentUpsamplerModel,
    LTX2TextConnectors,
    LTX2Vocoder,
    LTX2VocoderWithBWE,
)
from transformers import (
    Gemma3Config,
    Gemma3ForConditionalGeneration,
    Gemma4UnifiedConfig,
    Gemma4UnifiedForConditionalGeneration,
    GemmaTokenizer,
    SiglipVisionConfig,
)

from deployments.ltx2.versions import VERSIONS

TEXT_HIDDEN, TEXT_LAYERS = 32, 2
TINY_DURATION_S = 2.0  # about what the tiny duration head predicts for any prompt
VIDEO_TEXT_DIM, AUDIO_TEXT_DIM = 16, 8  # the tiny transformer's cross-attention widths
# Gemma's special tokens, its word-boundary mark and single letters: with no BPE merges, text tokenizes per letter
_VOCAB = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "\u2581", *string.ascii_lowercase]


def build_tiny_components(version: str = "2.0", seed: int = 0) -> dict[str, Any]:
    """Every `LTX2Pipeline` component of release `version`, tiny and seeded, so two builds hold identical weights."""
    spec = VERSIONS[version]
    modern = version != "2.0"  # the 2.3 architecture, which 2.5 builds on
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        torch.manual_seed(seed)
        components = {
            "text_encoder": _tiny_gemma4() if spec.text_encoder == "gemma4" else _tiny_gemma3(),
            "tokenizer": _tiny_tokenizer(),
            "connectors": _tiny_connectors(modern),
            "transformer": _tiny_transformer(modern, video_ff_bias=version != "2.5"),
            "vae": _tiny_vae(),
            "audio_vae": _tiny_audio_vae(),
            "vocoder": _tiny_bwe_vocoder(spec.sample_rate) if modern else _tiny_vocoder(spec.sample_rate),
            "scheduler": FlowMatchEulerDiscreteScheduler(),
        }
        if spec.duration_head:
            components["duration_head"] = _tiny_duration_head()
        return components


def build_tiny_upsampler(seed: int = 0) -> LTX2LatentUpsamplerModel:
    """A x2 latent upsampler matching the tiny VAE's 4 latent channels."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # mid_channels must be a multiple of 32: the upsampler's GroupNorm uses 32 groups
        return LTX2LatentUpsamplerModel(in_channels=4, mid_channels=32, num_blocks_per_stage=1).eval()


def _tiny_text_config() -> dict[str, Any]:
    return {
        "vocab_size": len(_VOCAB),
        "hidden_size": TEXT_HIDDEN,
        "intermediate_size": 64,
        "num_hidden_layers": TEXT_LAYERS,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "sliding_window": 32,
    }


def _tiny_gemma3() -> Gemma3ForConditionalGeneration:
    text = _tiny_text_config()
    vision = SiglipVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14
    )
    config = Gemma3Config(text_config=text, vision_config=vision.to_dict(), mm_tokens_per_image=4)
    return Gemma3ForConditionalGeneration(config).eval()


def _tiny_gemma4() -> Gemma4UnifiedForConditionalGeneration:
    # LTX-2.5's encoder class. Its multimodal special tokens must lie inside the tiny vocabulary; they are never
    # produced by the letter tokenizer, so they only size the embedding table.
    vocab = len(_VOCAB)
    text = {**_tiny_text_config(), "global_head_dim": 16, "layer_types": ["sliding_attention", "full_attention"]}
    names = ("audio_token_id", "boa_token_id", "boi_token_id", "eoi_token_id", "image_token_id", "video_token_id")
    special = dict(zip((*names, "eoa_token_index"), range(vocab - 7, vocab), strict=True))
    vision = {"mm_embed_dim": 16, "output_proj_dims": 16, "patch_size": 4}
    config = Gemma4UnifiedConfig(text_config=text, vision_config=vision, audio_config=None, **special)
    return Gemma4UnifiedForConditionalGeneration(config).eval()


def _tiny_tokenizer() -> GemmaTokenizer:
    # GemmaTokenizer builds its `tokenizers` pipeline from vocab + merges, so save_pretrained/from_pretrained
    # round-trips it exactly (a hand-built pipeline passed as tokenizer_object does not survive a reload).
    return GemmaTokenizer(vocab={token: i for i, token in enumerate(_VOCAB)}, merges=[])


def _tiny_connectors(modern: bool) -> LTX2TextConnectors:
    # 2.3+: separate video and audio projections of Gemma's stacked hidden states, straight to the transformer's
    # cross-attention widths (the transformer then has no caption projection of its own).
    per_modality = {"per_modality_projections": True, "video_hidden_dim": VIDEO_TEXT_DIM}
    per_modality |= {"audio_hidden_dim": AUDIO_TEXT_DIM, "proj_bias": True}
    return LTX2TextConnectors(
        caption_channels=TEXT_HIDDEN,
        text_proj_in_factor=TEXT_LAYERS + 1,  # Gemma's hidden states of every layer plus the embeddings
        video_connector_num_attention_heads=2 if modern else 4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=2 if modern else 4,
        audio_connector_attention_head_dim=4 if modern else 8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_theta=10000.0,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
        **(per_modality if modern else {}),
    ).eval()


def _tiny_transformer(modern: bool, video_ff_bias: bool) -> LTX2VideoTransformer3DModel:
    # 2.3+: gated attention, cross-attention AdaLN / prompt modulation, STG-capable (perturbed) self-attention
    flags = {"gated_attn": True, "audio_gated_attn": True, "cross_attn_mod": True, "audio_cross_attn_mod": True}
    flags |= {"use_prompt_embeddings": False, "perturbed_attn": True, "ff_bias": video_ff_bias}
    return LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=VIDEO_TEXT_DIM,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=AUDIO_TEXT_DIM,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=TEXT_HIDDEN,
        rope_double_precision=False,
        rope_type="split",
        **(flags if modern else {}),
    ).eval()


def _tiny_vae() -> AutoencoderKLLTX2Video:
    # LTX-2.0's block layout (patch 4, then spatial / temporal / 2x spatiotemporal downsampling) with narrow
    # channels: the same 32x spatial and 8x temporal compression, so a 768x512x121 request makes the real
    # 16x16x24 latent grid and stays cheap on CPU (the diffusers test VAE compresses only 2x).
    vae = AutoencoderKLLTX2Video(
        latent_channels=4,
        block_out_channels=(8, 16, 32, 32),
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
        decoder_spatial_padding_mode="zeros",  # "reflect" cannot pad the 1-latent-wide grid of a 32 px side
    )
    # Frame-wise coding splits clips into chunks sized for the real VAE; the tiny one codes a clip at once
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return vae.eval()


def _tiny_audio_vae() -> AutoencoderKLLTX2Audio:
    return AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=8,
    ).eval()


_MEL_CHANNELS = 2 * 8  # audio VAE output channels x mel bins


# The vocoder proper, shared by the plain vocoder (2.0) and the first half of the BWE one (2.3/2.5).
_VOCODER = {
    "in_channels": _MEL_CHANNELS,
    "hidden_channels": 32,
    "out_channels": 2,
    "upsample_kernel_sizes": [4, 4],
    "upsample_factors": [2, 2],
    "resnet_kernel_sizes": [3],
    "resnet_dilations": [[1, 3, 5]],
}


def _tiny_vocoder(sample_rate: int) -> LTX2Vocoder:
    return LTX2Vocoder(
        **_VOCODER,
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=sample_rate,  # the real model's rate, so the tiny one exercises the real muxing rate
    ).eval()


def _tiny_bwe_vocoder(sample_rate: int) -> LTX2VocoderWithBWE:
    # A 16 kHz vocoder, a mel of its output (hop 8), and a bandwidth extender whose upsampling (6*2*2 = 24) covers
    # one hop at 3x the rate: the 48 kHz output of LTX-2.3/2.5 in miniature.
    return LTX2VocoderWithBWE(
        **_VOCODER,
        bwe_in_channels=_MEL_CHANNELS,
        bwe_hidden_channels=32,
        bwe_out_channels=2,
        bwe_upsample_kernel_sizes=[12, 4, 4],
        bwe_upsample_factors=[6, 2, 2],
        bwe_resnet_kernel_sizes=[3],
        bwe_resnet_dilations=[[1, 3, 5]],
        filter_length=64,
        hop_length=8,
        window_length=64,
        num_mel_channels=8,
        input_sampling_rate=16000,
        output_sampling_rate=sample_rate,
    ).eval()


def _tiny_duration_head() -> LTX2DurationHead:
    head = LTX2DurationHead(
        video_cross_attention_dim=VIDEO_TEXT_DIM,
        audio_cross_attention_dim=AUDIO_TEXT_DIM,
        pooler_hidden_dim=8,
        num_queries=1,
        num_pooler_heads=2,
        mlp_hidden_dim=8,
    )
    with torch.no_grad():  # the head predicts log-seconds: centre the random head on ~2 s, a short clip
        head.mlp_out.bias.fill_(math.log(TINY_DURATION_S))
    return head.eval()
