"""The `ModelSpec` a model package declares so the spine can serve it, and the request and stage shapes in it.

The spine (serve_app) never names a model: it builds the request union, the `args:` sections, input staging,
the queues and the deployments from the specs in its catalogue.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from deployments.contract.runner import ModelArgs
from deployments.contract.videos_api import OpenAIMapping

if TYPE_CHECKING:
    from deployments.media import MediaInfo

MediaKind = Literal["image", "video", "audio"]
UploadKey = Annotated[str, Field(pattern=r"^uploads/[A-Za-z0-9_-]{1,100}/[A-Za-z0-9_.-]{1,64}$", max_length=200)]
MODEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # job ids are `<model>-<hex>`: no dash in a model name


class JobRequest(BaseModel):
    """Base of every model's request body: unknown keys are refused, and any job may ask for a webhook."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: HttpUrl | None = Field(None, description="Receives a signed POST when the job ends.")


def exactly_one(request: BaseModel, fields: tuple[str, ...], required: bool) -> str | None:
    """Name of the one field set among `fields`; else a ValueError. Cross-field messages start with
    `field:` so the gateway's 422 names the field (pydantic gives model-level errors no field)."""
    given = [f for f in fields if getattr(request, f) is not None]
    if len(given) > 1:
        raise ValueError(f"{given[1]}: give only one of {', '.join(fields)}; got {', '.join(given)}")
    if required and not given:
        raise ValueError(f"{fields[0]}: one of {', '.join(fields)} is required")
    return given[0] if given else None


@dataclass(frozen=True)
class StagedInput:
    """A request field that names an input file (a URL, base64 or an upload key) and what it must hold."""

    field: str  # e.g. image_url
    name: str  # file name under jobs/{id}/inputs/, and the runner's key in `inputs`
    kind: MediaKind

    @property
    def uploaded(self) -> bool:
        """True for an upload key (`*_key`), False for a URL or base64 field: by the field's suffix."""
        return not self.field.endswith(("_url", "_base64"))


@dataclass(frozen=True)
class FromInput:
    """A stage's input file: the chained job's own staged input `name`."""

    name: str


@dataclass(frozen=True)
class FromStage:
    """A stage's input file: the output video of the earlier stage `name`."""

    name: str


# build(request, media) -> the stage model's request body (a dict, without the fields its `inputs` bind), from the
# chained job's request and what its staged inputs hold (input name -> MediaInfo).
StageRequest = Callable[[Any, Mapping[str, "MediaInfo"]], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    """One step of a chained job: a job of another catalogue model, run on that model's own queue.

    At submit the spine builds the stage's request, validates it with that model's request type and `plan`
    (so every error is a 422 before anything runs), and runs that model's `check_input` on each input the
    chained job feeds it, and on each of `checks`."""

    name: str  # unique in the chain; the chained job's `stage` reads `<name>:<the stage model's stage>`
    model: str  # the catalogue model that runs it
    request: StageRequest
    inputs: Mapping[str, FromInput | FromStage]  # the stage request's `*_key` field -> where its file comes from
    cost: float = 1.0  # relative cost estimate: the stage's share of the chained job's progress
    # stage request field -> chained job's input checked as if given there, though the stage gets another file
    # (a face the last stage needs, checked before the first stage spends a GPU minute)
    checks: Mapping[str, str] = field(default_factory=dict)
    # stage request field -> the chained job's field (or input name) an error on it is reported under
    fields: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unbindable = [f for f in self.inputs if not f.endswith("_key")]
        if unbindable:
            raise ValueError(f"stage {self.name}: only upload-key fields (`*_key`) can be bound, not {unbindable}")
        if self.cost <= 0:
            raise ValueError(f"stage {self.name}: cost must be positive")


# plan(request, args) -> the job's params: checks limits and snaps values before anything is staged.
Plan = Callable[[Any, Any], dict[str, Any]]
# check_input(request, args, input, media) -> None: limits of one staged file, raising InvalidInput.
InputCheck = Callable[[Any, Any, StagedInput, "MediaInfo"], None]


@dataclass(frozen=True)
class ModelSpec:
    """Everything the spine needs to serve one model."""

    name: str  # the API name: `"model": name` in a request, and the `<name>:` section of `args:`
    request: type[JobRequest]  # its body, with `model: Literal[name]`; field descriptions are the API docs
    args: type[ModelArgs]  # its `args.<name>` section
    plan: Plan
    runner: str  # `module:Class` of the ModelRunner ("" for a chain); `args.<name>.runner` may override it
    deployment: str  # the GPU deployment's name in `serve status` (a chain's: its CPU coordinator)
    queue: str  # its JobQueue deployment's name
    inputs: tuple[StagedInput, ...] = ()
    check_input: InputCheck | None = None
    stages: tuple[Stage, ...] = ()  # a chained job: these run in order; the spine's coordinator replaces a runner
    openai: OpenAIMapping | None = None  # how it answers on `/v1/videos`; None: it is not offered there

    def __post_init__(self) -> None:
        if not MODEL_NAME.fullmatch(self.name):
            raise ValueError(f"model name {self.name!r} must match {MODEL_NAME.pattern}")
        model_field = self.request.model_fields.get("model")
        if model_field is None or typing.get_args(model_field.annotation) != (self.name,):
            raise ValueError(f"{self.request.__name__} needs a field `model: Literal[{self.name!r}]`")
        unknown = [i.field for i in self.inputs if i.field not in self.request.model_fields]
        if unknown:
            raise ValueError(f"{self.request.__name__} has no input fields {unknown}")
        if bool(self.stages) == bool(self.runner):
            raise ValueError(f"{self.name}: give either a runner or stages (a chain), not both or neither")
        self._check_stages()

    def _check_stages(self) -> None:
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: stage names must be unique, got {names}")
        own_inputs = {staged.name for staged in self.inputs}
        for index, stage in enumerate(self.stages):
            for source in (*stage.inputs.values(), *(FromInput(n) for n in stage.checks.values())):
                known = own_inputs if isinstance(source, FromInput) else set(names[:index])
                if source.name not in known:
                    raise ValueError(f"{self.name}: stage {stage.name} reads {source}, which comes from nowhere")
