"""The plug-in contract: all a model package imports to be served. `deployments/` never imports the spine.

- `spec`: the `ModelSpec` a package declares (request and args bases, staged inputs, chained stages);
- `runner`: what a runner receives (`JobSpec`, `Reporter`) and returns (`RunOutput`);
- `errors`: what a plan, an input check or a run may raise;
- `limits`: the bounds of each input kind a model accepts (`InputLimits` in its args);
- `videos_api`: how a model answers on the OpenAI Videos API surface (`OpenAIMapping`).
"""

from deployments.contract.errors import (
    InputTooLarge,
    InvalidInput,
    InvalidMedia,
    JobCancelled,
    JobFailed,
    VideoServeError,
    caller_safe,
)
from deployments.contract.limits import InputLimits, MediaLimits
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
from deployments.contract.videos_api import (
    OpenAIMapping,
    Reference,
    VideoFields,
    describe_from_params,
    speech_fields,
)

__all__ = [
    "MODEL_NAME",
    "RANDOM_WEIGHTS",
    "FromInput",
    "FromStage",
    "InputCheck",
    "InputLimits",
    "InputTooLarge",
    "InvalidInput",
    "InvalidMedia",
    "JobCancelled",
    "JobFailed",
    "JobRequest",
    "JobSpec",
    "MediaKind",
    "MediaLimits",
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
    "caller_safe",
    "describe_from_params",
    "exactly_one",
    "resolve_device",
    "speech_fields",
]
