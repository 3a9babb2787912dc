"""Chained jobs at submit: each stage's request is built from the chained job's request and staged inputs,
then validated and planned by the stage's own model, so that every error is a 422 before anything runs.

The plans are stored in the chained job's params (`stages`); the coordinator (`serve_app.runs.coordinator`) submits
them, one after the other, to their models' queues.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deployments.contract import FromInput, ModelArgs, ModelSpec, Stage, StagedInput
from deployments.limits import check_media
from deployments.media import MediaInfo
from serve_app.errors import InvalidInput
from serve_app.storage.staging import input_sources

STAGE_OUTPUT = "stage:"  # an input source that is an earlier stage's output, resolved when that stage is done
STAND_IN_KEY = "uploads/stage/{field}"  # what a bound field holds while its request is validated


class StagePlan(BaseModel):
    """One stage of a chained job, as stored in its params: a job of `model`, ready to submit."""

    model_config = ConfigDict(frozen=True)

    name: str
    model: str
    cost: float = Field(description="Relative cost estimate: the stage's share of the chained job's progress.")
    params: dict[str, Any] = Field(description="The stage model's planned params.")
    inputs: dict[str, str] = Field(description="Input name -> storage key, or `stage:<name>` (that stage's output).")


def plan_stages(
    spec: ModelSpec,
    request: BaseModel,
    media: Mapping[str, MediaInfo],
    keys: Mapping[str, str],
    specs: Mapping[str, ModelSpec],
    model_args: Mapping[str, ModelArgs],
) -> list[dict[str, Any]]:
    """Every stage of chain `spec` planned for `request`, whose inputs hold `media` and were staged at `keys`."""
    plans = []
    for stage in spec.stages:
        if stage.model not in model_args:
            raise InvalidInput("model", f"{spec.name} needs model {stage.model}, which is not enabled here")
        planner = _StagePlanner(spec, stage, request, specs[stage.model], model_args[stage.model])
        plans.append(planner.plan(media, keys).model_dump())
    return plans


class _StagePlanner:
    """Plans one stage, reporting each error under the chained job's own field names."""

    def __init__(self, chain: ModelSpec, stage: Stage, request: BaseModel, target: ModelSpec, args: ModelArgs) -> None:
        self._chain, self._stage, self._request = chain, stage, request
        self._target, self._args = target, args
        self._given = {source.input.name: source.field for source in input_sources(chain, request)}

    def plan(self, media: Mapping[str, MediaInfo], keys: Mapping[str, str]) -> StagePlan:
        stage = self._stage
        body = stage.request(self._request, media) | {f: STAND_IN_KEY.format(field=f) for f in stage.inputs}
        try:
            child = self._target.request.model_validate(body)
            params = self._target.plan(child, self._args)
            for field, source in self._checked_inputs():
                staged = self._staged(field)  # the stage model's own limits too, not only the chained job's
                check_media(field, staged.kind, media[source], self._args.limits.of(staged.kind), self._target.name)
                if self._target.check_input is not None:
                    self._target.check_input(child, self._args, staged, media[source])
        except ValidationError as exc:
            raise self._invalid(exc) from None
        except InvalidInput as exc:
            message = exc.message.removeprefix(f"{exc.field}: ")
            raise InvalidInput(self._field(exc.field), message) from None
        inputs = {
            self._staged(field).name: keys[source.name] if isinstance(source, FromInput) else STAGE_OUTPUT + source.name
            for field, source in stage.inputs.items()
        }
        return StagePlan(name=stage.name, model=stage.model, cost=stage.cost, params=params, inputs=inputs)

    def _checked_inputs(self) -> list[tuple[str, str]]:
        """(stage field, chained input) pairs the stage model checks now: the inputs fed to it, and its `checks`."""
        fed = [(field, source.name) for field, source in self._stage.inputs.items() if isinstance(source, FromInput)]
        return [*fed, *self._stage.checks.items()]

    def _staged(self, field: str) -> StagedInput:
        found = [staged for staged in self._target.inputs if staged.field == field]
        if not found:
            raise ValueError(f"stage {self._stage.name}: {self._target.name} has no input field {field}")
        return found[0]

    def _field(self, stage_field: str) -> str:
        """The chained job's field that an error on `stage_field` of the stage's request is about."""
        bound = self._stage.inputs.get(stage_field)
        source = self._stage.checks.get(stage_field) or (bound.name if bound is not None else None)
        mapped = self._stage.fields.get(stage_field, source or stage_field)
        if mapped in self._given:  # an input name: the field the request gave that file in
            return self._given[mapped]
        if mapped in type(self._request).model_fields:
            return mapped
        return f"{self._stage.name}.{stage_field}"

    def _invalid(self, exc: ValidationError) -> InvalidInput:
        error = exc.errors()[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in error["loc"])
        if not loc and ": " in message:  # a cross-field rule names its field first (plugin.exactly_one)
            loc, message = message.split(": ", 1)
        return InvalidInput(self._field(loc.split(".")[0] or "body"), message)
