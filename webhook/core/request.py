"""The parsed admission request: the parts of `request` that decisions read.

Built by webhook/wire/review.py from a validated AdmissionReview, and by `netguard check` for a
manifest. Pure data.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

# request.options.fieldManager of Flux's kustomize-controller: it applies (and first dry-runs)
# with server-side apply under its controller name (fluxcd/pkg ssa.Owner{Field: ControllerName}).
FLUX_FIELD_MANAGER = "kustomize-controller"


class AdmissionRequest(NamedTuple):
    """The parts of `request` that decisions read; `object`/`old_object` are the raw dicts.

    Immutable. A NamedTuple rather than a frozen dataclass: one is built on every admission
    call, and a frozen dataclass sets each of its 12 fields through object.__setattr__ (1.8 µs
    against 0.7 µs). Change a field with `_replace`.
    """

    uid: str
    api_version: str
    kind: str  # request.kind.kind, e.g. "Service"
    group: str
    namespace: str
    name: str
    operation: str
    user: str
    dry_run: bool
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None
    field_manager: str
    sub_resource: str = ""  # request.subResource, e.g. "status"; "" for the object itself

    @property
    def from_flux(self) -> bool:
        """Sent by Flux: its denials carry the advice about Flux's dry-run of a whole stage."""
        return self.field_manager == FLUX_FIELD_MANAGER

    @property
    def current(self) -> Mapping[str, Any]:
        """The object as it will be (on DELETE, as it was: `object` is null then)."""
        return self.object if self.object is not None else (self.old_object or {})
