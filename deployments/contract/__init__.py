"""The plug-in contract: all a model package imports to be served. `deployments/` never imports the spine.

- `spec`: the `ModelSpec` a package declares (request and args bases, staged inputs, chained stages);
- `runner`: what a runner receives (`JobSpec`, `Reporter`) and returns (`RunOutput`);
- `videos_api`: how a model answers on the OpenAI Videos API surface (`OpenAIMapping`);
- `errors`: what a plan, an input check or a run may raise.
"""

from deployments.contract.errors import InvalidInput, JobCancelled, JobFailed, VideoServeError
from deployments.contract.runner import (
    RANDOM_WEIGHTS,
    JobSpec,
    ModelArgs,
    ModelRunner,
    PlacementArgs,
    Reporter,
    RunOutput,
    resolve_device,
)
from deployments.contract.spec import (
    MODEL_NAME,
    FromInput,
    FromStage,
    InputCheck,
    JobRequest,
    MediaKind,
    ModelSpec,
    Plan,
    Stage,
    StagedInput,
    StageRequest,
    UploadKey,
    exactly_one,
)
from deployments.contract.videos_api import OpenAIMapping, Reference, VideoFields, describe_from_params

__all__ = [
    "MODEL_NAME",
    "RANDOM_WEIGHTS",
    "FromInput",
    "FromStage",
    "InputCheck",
    "InvalidInput",
    "JobCancelled",
    "JobFailed",
    "JobRequest",
    "JobSpec",
    "MediaKind",
    "ModelArgs",
    "ModelRunner",
    "ModelSpec",
    "OpenAIMapping",
    "PlacementArgs",
    "Plan",
    "Reference",
    "Reporter",
    "RunOutput",
    "Stage",
    "StageRequest",
    "StagedInput",
    "UploadKey",
    "VideoFields",
    "VideoServeError",
    "describe_from_params",
    "exactly_one",
    "resolve_device",
]
