"""The AdmissionReview v1 shapes netguard reads and writes, as TypedDicts (documentation that
type checkers read). Only the fields netguard uses are listed; the apiserver sends more.
https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#request
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class GroupVersionKind(TypedDict, total=False):
    group: str
    version: str
    kind: str


class UserInfo(TypedDict, total=False):
    username: str
    groups: list[str]


class Options(TypedDict, total=False):
    kind: str
    apiVersion: str
    fieldManager: str


class Request(TypedDict, total=False):
    uid: str  # required
    kind: GroupVersionKind  # required
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]  # required
    subResource: str  # e.g. "status"
    namespace: str
    name: str
    userInfo: UserInfo
    object: dict[str, Any] | None  # null on DELETE
    oldObject: dict[str, Any] | None  # set on UPDATE and DELETE
    dryRun: bool
    options: Options


class ReviewRequest(TypedDict):
    apiVersion: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    request: Request


class Status(TypedDict):
    code: int
    reason: str
    message: str


class Response(TypedDict, total=False):
    uid: str  # always: the request's
    allowed: bool  # always
    status: Status  # on a denial
    patchType: Literal["JSONPatch"]  # with a patch only
    patch: str  # base64 of an RFC 6902 array
    warnings: list[str]
    auditAnnotations: dict[str, str]


class ReviewResponse(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    response: Response


class ErrorBody(TypedDict):
    """Every non-200 answer: a malformed call (4xx) or netguard's own failure (500)."""

    error: str
    status: int
