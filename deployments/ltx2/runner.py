"""LTX2Runner: one replica's LTX-2 weights, turning one job into one mp4 with its generated audio."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import PIL.Image
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, LTX2ImageToVideoPipeline, LTX2Pipeline
from diffusers.pipelines.ltx2 import LTX2LatentUpsamplePipeline
from diffusers.utils import encode_video
from PIL import ImageOps

from deployments.contract import RANDOM_WEIGHTS, JobFailed, JobSpec, Reporter, RunOutput, resolve_device
from deployments.ltx2 import conditioning
from deployments.ltx2.args import LTX2Args, check_camera_lora, check_quality
from deployments.ltx2.loading import (
    DISTILLED_ADAPTER,
    apply_memory_options,
    load_components,
    load_lora,
    resolve_dtype,
)
from deployments.ltx2.params import LTX2Params
from deployments.ltx2.recipes import FIXED_CALL_ARGS, VERSION_CALL_ARGS, Recipe, Stage, recipe_for
from deployments.ltx2.versions import VERSIONS

logger = logging.getLogger(__name__)

OUTPUT_NAME = "output.mp4"
# Job progress: denoising steps of all stages fill [start, end]; the other stages get fixed points.
DENOISE_START, DENOISE_END, ENCODE_VIDEO_AT = 0.05, 0.9, 0.95


class _Progress:
    """Reports each denoising step of every stage as one share of the job's progress bar."""

    def __init__(self, reporter: Reporter, total_steps: int) -> None:
        self.reporter, self.total, self.done = reporter, total_steps, 0

    @property
    def fraction(self) -> float:
        """The job's progress so far, in [0, 1]."""
        return DENOISE_START + (DENOISE_END - DENOISE_START) * self.done / self.total

    def step(self) -> None:
        """Count one finished denoising step."""
        self.done += 1
        self.reporter.report("denoising", self.fraction)


@dataclass
class _Job:
    """What every stage of one request needs."""

    params: LTX2Params
    image: PIL.Image.Image | None
    embeds: dict[str, torch.Tensor]
    generator: torch.Generator
    progress: _Progress
    conditions: list[conditioning.LTX2VideoCondition] | None = None  # keyframes or extension: the condition pipe


class LTX2Runner:
    """Holds one copy of the LTX-2 weights; t2v, i2v and the upsampler all share it."""

    def __init__(self, args: LTX2Args) -> None:
        self.args = args
        self.device = resolve_device(args.device)
        if args.cpu_offload and self.device.type != "cuda":
            raise ValueError("ltx2: cpu_offload needs a CUDA device")
        dtype = resolve_dtype(args, self.device)
        loaded = load_components(args, dtype)
        self.weights = loaded.weights
        self._pipes = _build_pipelines(loaded.components, VERSIONS[args.model_version].full_scheduler)
        self.pipe = self._pipes[False, False]  # also the handle for LoRA switching and prompt encoding
        self._check_version_parts()
        # --- conditioning hook (keyframes, extension): distilled -> LTX2ConditionPipeline on the same modules,
        # with the same per-version schedulers as the plain pipelines
        self._condition_pipes = conditioning.build_condition_pipelines(
            {d: self._pipes[False, d] for d in (False, True)}
        )
        self._load_loras()
        apply_memory_options(args, self.pipe, dtype)
        self.upsample_pipe = (
            LTX2LatentUpsamplePipeline(vae=self.pipe.vae, latent_upsampler=loaded.upsampler)
            if loaded.upsampler is not None
            else None
        )
        self._place()
        logger.info("ltx2 runner ready: weights=%s device=%s dtype=%s", self.weights, self.device, dtype)

    def _check_version_parts(self) -> None:
        """Refuse at start-up weights that lack a part their release's recipes rely on."""
        version = self.args.model_version
        if VERSIONS[version].duration_head and self.pipe.duration_head is None:
            raise ValueError(f"ltx2: LTX-{version} weights need a duration_head/ component")
        for quality in self.args.qualities:
            for stage in recipe_for(version, quality).stages:
                self._guidance(stage)  # STG blocks past the transformer's depth raise here, not in a job

    def _load_loras(self) -> None:
        """Every adapter goes into the shared transformer once, at replica start."""
        version, cache = self.args.model_version, self.args.weights_cache_dir
        if self.args.distilled_lora:
            load_lora(self.pipe, self.args.distilled_lora, cache, DISTILLED_ADAPTER, version)
        for motion, source in self.args.camera_loras.items():
            load_lora(self.pipe, source, cache, motion, version)

    def _place(self) -> None:
        """Move everything to the device, or install CPU-offload hooks so each part visits it only to run."""
        pipes = [
            *self._pipes.values(),
            *self._condition_pipes.values(),
            *([self.upsample_pipe] if self.upsample_pipe else []),
        ]
        for pipe in pipes:
            pipe.set_progress_bar_config(disable=True)  # progress goes to the reporter
            if self.args.cpu_offload:
                pipe.enable_model_cpu_offload(device=self.device)
            else:
                pipe.to(self.device)

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        """Render one clip (t2v, i2v, keyframes or an extension; fast or pro) with its audio into `workdir`."""
        params = LTX2Params.model_validate(job.params)
        check_quality(self.args, params.quality)
        check_camera_lora(self.args, params.camera_lora)
        # The vocoder's own rate: 24 kHz for LTX-2.0, 48 kHz for 2.3/2.5 (BWE), never the audio VAE's 16 kHz.
        # None: no audio at all (generate_audio false), not even an extension's input audio.
        rate = int(self.pipe.vocoder.config.output_sampling_rate) if params.generate_audio else None
        # --- conditioning hook: keyframe/extension jobs render `conditioned.params` through the condition pipe
        conditioned = conditioning.prepare(params, inputs, self.args, rate)
        params = conditioned.params if conditioned else params
        i2v = params.image_to_video and not conditioned
        image = conditioning.open_image(inputs, "image", self.args.limits.image) if i2v else None
        recipe = recipe_for(self.args.model_version, params.quality, self.args.pro_steps)
        reporter.raise_if_cancelled()
        with torch.no_grad():
            reporter.report("encoding_prompt", 0.0)
            embeds = self._encode_prompt(params, cfg=any(s.guidance["guidance_scale"] > 1 for s in recipe.stages))
            if params.num_frames == "auto":  # every stage renders the same length: decide it once, up front
                params = params.model_copy(update={"num_frames": self._predict_num_frames(params, embeds)})
            state = _Job(
                params=params,
                image=image,
                embeds=embeds,
                generator=torch.Generator(self.device).manual_seed(params.seed),  # one generator, both stages
                progress=_Progress(reporter, sum(s.steps for s in recipe.stages)),
                conditions=conditioned.conditions if conditioned else None,
            )
            latents: dict[str, torch.Tensor] = {}
            for index, stage in enumerate(recipe.stages):
                if index:
                    reporter.raise_if_cancelled()
                    reporter.report("upsampling", state.progress.fraction)
                    previous = recipe.stages[index - 1].size_divisor
                    latents["latents"] = self._upsample(latents["latents"], params, previous, state.generator)
                final = index == len(recipe.stages) - 1
                video, audio = self._denoise(stage, state, latents, reporter, final)
                latents = {"latents": video, "audio_latents": audio}
        if conditioned:  # an extension joins the input's own frames and audio to the new ones
            video, audio = conditioned.assemble(video, audio, rate)
        reporter.report("encoding_video", ENCODE_VIDEO_AT)
        path = workdir / OUTPUT_NAME
        sound = audio[0].float().cpu() if audio is not None else None
        encode_video(video[0], fps=params.fps, output_path=str(path), audio=sound, audio_sample_rate=rate)
        details = self._details(params, recipe, rate) | (conditioned.details if conditioned else {})
        return RunOutput(video_path=path, details=details)

    def _predict_num_frames(self, params: LTX2Params, embeds: dict[str, torch.Tensor]) -> int:
        """LTX-2.5's duration head: the clip length the prompt implies, within min/max_duration_s, on the 8k+1 grid."""
        pipe = self.pipe
        if pipe.duration_head is None:  # a job planned while this deployment served LTX-2.5
            raise JobFailed("num_frames auto needs a duration head, which these weights lack", code="misconfigured")
        padding_side = getattr(pipe.tokenizer, "padding_side", "left")
        video_tokens, audio_tokens, _ = pipe.connectors(
            embeds["prompt_embeds"], embeds["prompt_attention_mask"], padding_side=padding_side
        )
        return pipe.duration_head.predict_num_frames(
            video_tokens[:1],
            audio_tokens[:1],
            frame_rate=float(params.fps),
            temporal_compression_ratio=pipe.vae_temporal_compression_ratio,
            min_seconds=self.args.min_duration_s,
            max_seconds=self.args.max_duration_s,
        )

    def _details(self, params: LTX2Params, recipe: Recipe, sample_rate: int | None) -> dict[str, Any]:
        """The parameters this clip was really made with, for the job record."""
        used = {"width", "height", "num_frames", "fps", "seed", "quality", "camera_lora", "image_to_video"}
        used |= {"generate_audio", "end_image", "extend"}
        return {
            **params.model_dump(include=used),
            "steps": sum(s.steps for s in recipe.stages),
            "stage_steps": [s.steps for s in recipe.stages],
            "sample_rate": sample_rate,  # None: no audio stream
            "model_version": self.args.model_version,
            "weights": self.weights,
        }

    def _encode_prompt(self, params: LTX2Params, cfg: bool) -> dict[str, torch.Tensor]:
        """Run Gemma once per job; both stages reuse the embeddings."""
        positive, positive_mask, negative, negative_mask = self.pipe.encode_prompt(
            prompt=params.prompt,
            negative_prompt=params.negative_prompt,
            do_classifier_free_guidance=cfg,
            max_sequence_length=self.args.max_prompt_tokens,
            device=self.pipe._execution_device,
        )
        embeds = {"prompt_embeds": positive, "prompt_attention_mask": positive_mask}
        if cfg:
            embeds |= {"negative_prompt_embeds": negative, "negative_prompt_attention_mask": negative_mask}
        return embeds

    def _denoise(
        self, stage: Stage, job: _Job, latents: dict[str, torch.Tensor], reporter: Reporter, final: bool
    ) -> tuple[Any, torch.Tensor | None]:
        """One denoising stage; latents out between stages, decoded frames (np) and waveform after the last."""
        p = job.params
        width, height = p.width // stage.size_divisor, p.height // stage.size_divisor
        self._set_adapters(stage.distilled, p.camera_lora)

        def on_step_end(pipe: LTX2Pipeline, step: int, timestep: Any, tensors: dict) -> dict:
            job.progress.step()
            reporter.raise_if_cancelled()  # JobCancelled propagates out of the pipeline call
            if final and step == stage.steps - 1:
                reporter.report("decoding", DENOISE_END)  # the pipeline decodes right after its last step
            return tensors

        pipe = self._pipes[job.image is not None, stage.distilled]
        extra: dict[str, Any] = {"noise_scale": stage.noise_scale}
        if job.conditions is not None:  # --- conditioning hook: the pipe scales the conditions to this stage
            pipe = self._condition_pipes[stage.distilled]
            extra = {"conditions": job.conditions, "noise_scale": conditioning.condition_noise_scale(stage.noise_scale)}
        elif job.image is not None:  # centre-crop to the stage's aspect, resize; image_crf 0 = no re-encode
            extra |= {
                "image": ImageOps.fit(job.image, (width, height), PIL.Image.LANCZOS),
                "image_crf": self.args.image_crf,
            }
        silent = final and not p.generate_audio  # stop at latents: the pipeline would decode the audio too
        video, audio = pipe(
            **extra,
            **job.embeds,
            **latents,
            width=width,
            height=height,
            num_frames=p.num_frames,
            frame_rate=float(p.fps),
            num_inference_steps=stage.steps,
            sigmas=list(stage.sigmas) if stage.sigmas else None,
            generator=job.generator,
            max_sequence_length=self.args.max_prompt_tokens,
            output_type="np" if final and not silent else "latent",
            return_dict=False,
            callback_on_step_end=on_step_end,
            callback_on_step_end_tensor_inputs=[],
            **self._guidance(stage),
            **VERSION_CALL_ARGS[self.args.model_version],
            **FIXED_CALL_ARGS,
        )
        return (_decode_video(pipe, video), None) if silent else (video, audio)

    def _guidance(self, stage: Stage) -> dict[str, Any]:
        """The stage's guidance arguments, with STG blocks checked against the loaded transformer's depth."""
        guidance = dict(stage.guidance)
        blocks = guidance["spatio_temporal_guidance_blocks"]
        if blocks:
            guidance["spatio_temporal_guidance_blocks"] = _stg_blocks(blocks, self.pipe.transformer, self.weights)
        return guidance

    def _upsample(
        self, latents: torch.Tensor, params: LTX2Params, size_divisor: int, generator: torch.Generator
    ) -> torch.Tensor:
        """The previous stage's latents x2 in space with the latent upsampler (no decode in between)."""
        if self.upsample_pipe is None:
            raise JobFailed("pro needs the latent upsampler, which this replica did not load", code="misconfigured")
        return self.upsample_pipe(
            latents=latents,
            latents_normalized=False,  # output_type="latent" hands back denormalized latents
            width=params.width // size_divisor,
            height=params.height // size_divisor,
            num_frames=params.num_frames,
            adain_factor=0.0,
            tone_map_compression_ratio=0.0,
            generator=generator,
            output_type="latent",
            return_dict=False,
        )[0]

    def _set_adapters(self, distilled: bool, motion: str) -> None:
        """Activate exactly the adapters this stage needs; none loaded = nothing to switch."""
        if not self.args.distilled_lora and not self.args.camera_loras:
            return
        weights: dict[str, float] = {}
        if distilled and self.args.distilled_lora:
            weights[DISTILLED_ADAPTER] = self.args.distilled_lora_strength
        if motion in self.args.camera_loras:
            weights[motion] = self.args.camera_lora_strength
        if not weights:
            self.pipe.disable_lora()  # e.g. `static` with no static LoRA: the base model, exactly
            return
        self.pipe.enable_lora()
        self.pipe.set_adapters(list(weights), adapter_weights=list(weights.values()))


def _build_pipelines(
    components: dict[str, Any], full_scheduler: Mapping[str, Any]
) -> dict[tuple[bool, bool], LTX2Pipeline]:
    """(image_to_video, distilled) -> pipeline; all four share the same modules, none copies weights."""
    config = components["scheduler"].config
    # Distilled sigmas are final values: a dynamically shifting scheduler would move them (diffusers docs).
    schedulers = {
        True: FlowMatchEulerDiscreteScheduler.from_config(config, use_dynamic_shifting=False, shift_terminal=None),
        # the full model's own schedule; LTX-2.5's transformer_full/ wants dynamic shifting with terminal 0.1
        False: FlowMatchEulerDiscreteScheduler.from_config(config, **full_scheduler)
        if full_scheduler
        else components["scheduler"],
    }
    pipes: dict[tuple[bool, bool], LTX2Pipeline] = {}
    for i2v in (False, True):
        for distilled in (False, True):
            cls = LTX2ImageToVideoPipeline if i2v else LTX2Pipeline
            pipes[i2v, distilled] = cls(**{**components, "scheduler": schedulers[distilled]})
    return pipes


def _stg_blocks(blocks: tuple[int, ...], transformer: torch.nn.Module, weights: str) -> list[int]:
    """STG block indices for this transformer. The tiny random model has 2 layers, not 48: its blocks are taken
    modulo its depth so the STG pass still perturbs a block; real weights shallower than the recipe are an error."""
    depth = len(transformer.transformer_blocks)
    if all(b < depth for b in blocks):
        return list(blocks)
    if weights != RANDOM_WEIGHTS:
        raise ValueError(f"ltx2: STG blocks {list(blocks)} need a transformer of {max(blocks) + 1}+ layers")
    return sorted({b % depth for b in blocks})


def _decode_video(pipe: LTX2Pipeline, latents: torch.Tensor) -> Any:
    """Frames (np) from the denormalized latents of `output_type="latent"`, as the pipeline decodes them with
    decode_timestep 0 (FIXED_CALL_ARGS), without touching the audio VAE or the vocoder."""
    timestep = torch.zeros(latents.shape[0], device=latents.device) if pipe.vae.config.timestep_conditioning else None
    frames = pipe.vae.decode(latents.to(pipe.vae.dtype), timestep, return_dict=False)[0]
    return pipe.video_processor.postprocess_video(frames, output_type="np")
