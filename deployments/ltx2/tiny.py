"""Tiny randomly-initialised LTX-2 components, built in code: the whole flow runs with no download.

Shapes follow diffusers' own LTX-2 test fixtures (research/ltx2.md §3), except the video VAE, which keeps the
real model's compression; the Gemma 3 text encoder and its tokenizer are built from configs too, so nothing
touches the Hub. The outputs are noise, not video.
"""

from __future__ import annotations

import string
from typing import Any

import torch
from diffusers import (
    AutoencoderKLLTX2Audio,
    AutoencoderKLLTX2Video,
    FlowMatchEulerDiscreteScheduler,
    LTX2VideoTransformer3DModel,
)
from diffusers.pipelines.ltx2 import LTX2LatentUpsamplerModel, LTX2TextConnectors, LTX2Vocoder
from transformers import Gemma3Config, Gemma3ForConditionalGeneration, GemmaTokenizer, SiglipVisionConfig

TINY_SAMPLE_RATE = 24000  # LTX-2.0's vocoder rate, so the tiny model exercises the real muxing rate
# Gemma's special tokens, its word-boundary mark and single letters: with no BPE merges, text tokenizes per letter
_VOCAB = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "\u2581", *string.ascii_lowercase]


def build_tiny_components(seed: int = 0) -> dict[str, Any]:
    """Every `LTX2Pipeline` component, tiny and seeded, so two builds hold identical weights."""
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        torch.manual_seed(seed)
        text_encoder = _tiny_text_encoder()
        hidden = text_encoder.config.text_config.hidden_size
        layers = text_encoder.config.text_config.num_hidden_layers
        return {
            "text_encoder": text_encoder,
            "tokenizer": _tiny_tokenizer(),
            "connectors": _tiny_connectors(hidden, layers),
            "transformer": _tiny_transformer(hidden),
            "vae": _tiny_vae(),
            "audio_vae": _tiny_audio_vae(),
            "vocoder": _tiny_vocoder(),
            "scheduler": FlowMatchEulerDiscreteScheduler(),
        }


def build_tiny_upsampler(seed: int = 0) -> LTX2LatentUpsamplerModel:
    """A x2 latent upsampler matching the tiny VAE's 4 latent channels."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # mid_channels must be a multiple of 32: the upsampler's GroupNorm uses 32 groups
        return LTX2LatentUpsamplerModel(in_channels=4, mid_channels=32, num_blocks_per_stage=1).eval()


def _tiny_text_encoder() -> Gemma3ForConditionalGeneration:
    text = {
        "vocab_size": len(_VOCAB),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "sliding_window": 32,
    }
    vision = SiglipVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14
    )
    config = Gemma3Config(text_config=text, vision_config=vision.to_dict(), mm_tokens_per_image=4)
    return Gemma3ForConditionalGeneration(config).eval()


def _tiny_tokenizer() -> GemmaTokenizer:
    # GemmaTokenizer builds its `tokenizers` pipeline from vocab + merges, so save_pretrained/from_pretrained
    # round-trips it exactly (a hand-built pipeline passed as tokenizer_object does not survive a reload).
    return GemmaTokenizer(vocab={token: i for i, token in enumerate(_VOCAB)}, merges=[])


def _tiny_connectors(caption_channels: int, text_layers: int) -> LTX2TextConnectors:
    return LTX2TextConnectors(
        caption_channels=caption_channels,
        text_proj_in_factor=text_layers + 1,  # Gemma's hidden states of every layer plus the embeddings
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_theta=10000.0,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
    ).eval()


def _tiny_transformer(caption_channels: int) -> LTX2VideoTransformer3DModel:
    return LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=caption_channels,
        rope_double_precision=False,
        rope_type="split",
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


def _tiny_vocoder() -> LTX2Vocoder:
    return LTX2Vocoder(
        in_channels=2 * 8,  # audio VAE output channels x mel bins
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[4, 4],
        upsample_factors=[2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=TINY_SAMPLE_RATE,
    ).eval()
