"""The catalogue: the models this app serves, one `ModelSpec` each. Adding a model is one line here.

Only this module and the app builder name models; everything else in serve_app works from the specs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Union

from pydantic import Field

from deployments.contract import ModelArgs, ModelSpec
from deployments.ltx2.spec import SPEC as LTX2
from deployments.talking_video.spec import SPEC as TALKING_VIDEO
from deployments.wav2lip.spec import SPEC as WAV2LIP
from serve_app.settings import SpineArgs, app_args_model


@dataclass(frozen=True)
class Catalogue:
    """An ordered set of model specs, and the schemas built from them."""

    specs: tuple[ModelSpec, ...]

    def __post_init__(self) -> None:
        names = [spec.name for spec in self.specs]
        clashes = set(names) & set(SpineArgs.model_fields)
        if len(set(names)) != len(names) or clashes:
            raise ValueError(f"model names must be unique and not a spine section: {names}")

    def with_models(self, *specs: ModelSpec) -> Catalogue:
        """This catalogue plus `specs` (an operator's or a test's own models)."""
        return Catalogue((*self.specs, *specs))

    def only(self, names: Iterable[str]) -> Catalogue:
        """The models of this catalogue named in `names`, in catalogue order (those a deployment enables)."""
        wanted = set(names)
        return Catalogue(tuple(spec for spec in self.specs if spec.name in wanted))

    def __getitem__(self, name: str) -> ModelSpec:
        return self.by_name[name]

    @cached_property
    def by_name(self) -> dict[str, ModelSpec]:
        return {spec.name: spec for spec in self.specs}

    @cached_property
    def args_model(self) -> type[SpineArgs]:
        """The `args:` schema: the spine's sections and one per model; unknown keys fail the deploy."""
        sections: dict[str, type[ModelArgs]] = {spec.name: spec.args for spec in self.specs}
        return app_args_model(sections)

    @cached_property
    def request_type(self) -> Any:
        """The body of POST /api/v1/generate: one model's request, chosen by its `model` field."""
        requests = tuple(spec.request for spec in self.specs)
        if len(requests) == 1:
            return requests[0]
        return Annotated[Union[requests], Field(discriminator="model")]  # noqa: UP007 (a runtime tuple)


CATALOGUE = Catalogue((LTX2, WAV2LIP, TALKING_VIDEO))  # a chain after the models of its stages
AppArgs = CATALOGUE.args_model
