"""Internal load balancers as each cloud provider's own code reads them.

A Service of type LoadBalancer is labelled `private` only when the controller that builds its
load balancer would surely build an internal one; any value, class or combination a provider
would not honour means a public load balancer. The unsafe direction -- a public load balancer
labelled private -- must never happen, so where providers disagree the stricter reading wins.
docs/design.md (Internal load balancers) has the table with links to each provider's source.

Limits: netguard does not know which cloud the cluster runs on; it reads every provider's
annotations. A Service that carries another cloud's internal annotation is taken at its word.
"""

from __future__ import annotations

from typing import Any, Mapping

# AWS. kubernetes/cloud-provider-aws (the in-tree provider): the ELB/NLB is internal for any
# non-empty aws-load-balancer-internal value but "false". The AWS Load Balancer Controller reads
# the same annotation with Go's strconv.ParseBool, and its aws-load-balancer-scheme annotation
# (exactly "internal" or "internet-facing") wins over it. Its mutating webhook may give a Service
# its loadBalancerClass after netguard has seen it, so without a class both readings must agree.
AWS_INTERNAL = "service.beta.kubernetes.io/aws-load-balancer-internal"
AWS_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
AWS_TYPE = "service.beta.kubernetes.io/aws-load-balancer-type"
AWS_LBC_CLASS = "service.k8s.aws/nlb"
AWS_LBC_TYPES = ("external", "nlb-ip")  # types the in-tree provider leaves to the controller
GO_PARSE_BOOL_TRUE = ("1", "t", "T", "TRUE", "true", "True")

# Azure. kubernetes-sigs/cloud-provider-azure requiresInternalLoadBalancer: == "true" (newer
# helpers compare with EqualFold; "true" satisfies both).
AZURE_INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"

# GKE. kubernetes/cloud-provider-gcp GetLoadBalancerAnnotationType: the first of the two
# annotations present decides; "Internal" (or the deprecated lowercase "internal") is internal.
GKE_TYPE = "networking.gke.io/load-balancer-type"
GKE_TYPE_DEPRECATED = "cloud.google.com/load-balancer-type"
GKE_INTERNAL_VALUES = ("Internal", "internal")
GKE_INTERNAL_CLASSES = ("networking.gke.io/l4-regional-internal", "networking.gke.io/l4-regional-internal-legacy")


def is_internal_load_balancer(service: Mapping[str, Any]) -> bool:
    metadata = service.get("metadata") if isinstance(service.get("metadata"), Mapping) else {}
    annotations = metadata.get("annotations") if isinstance(metadata.get("annotations"), Mapping) else {}
    spec = service.get("spec") if isinstance(service.get("spec"), Mapping) else {}
    load_balancer_class = spec.get("loadBalancerClass")
    if load_balancer_class:
        return _by_class(str(load_balancer_class), annotations)
    return _aws_without_class(annotations) or _azure(annotations) or _gke(annotations)


def _by_class(load_balancer_class: str, annotations: Mapping[str, Any]) -> bool:
    """A class hands the Service to one controller; an unknown one: its scheme is unknown."""
    if load_balancer_class in GKE_INTERNAL_CLASSES:
        return True
    if load_balancer_class == AWS_LBC_CLASS:
        return _aws_controller(annotations)
    return False


def _aws_controller(annotations: Mapping[str, Any]) -> bool:
    """The AWS Load Balancer Controller: scheme first; else the legacy annotation, ParseBool.
    With neither, its default (internal since v2.2) can be changed by a flag: public."""
    scheme = annotations.get(AWS_SCHEME)
    if scheme is not None:
        return scheme == "internal"
    return annotations.get(AWS_INTERNAL) in GO_PARSE_BOOL_TRUE


def _aws_without_class(annotations: Mapping[str, Any]) -> bool:
    legacy = annotations.get(AWS_INTERNAL)
    if legacy is None:
        # The scheme alone is the controller's: the in-tree provider ignores it and builds a
        # public load balancer, unless the type hands the Service to the controller.
        return annotations.get(AWS_TYPE) in AWS_LBC_TYPES and _aws_controller(annotations)
    # Internal for both readers: in-tree (non-empty, not "false") and the controller (ParseBool
    # true, and no scheme saying otherwise).
    return legacy in GO_PARSE_BOOL_TRUE and annotations.get(AWS_SCHEME, "internal") == "internal"


def _azure(annotations: Mapping[str, Any]) -> bool:
    return annotations.get(AZURE_INTERNAL) == "true"


def _gke(annotations: Mapping[str, Any]) -> bool:
    for key in (GKE_TYPE, GKE_TYPE_DEPRECATED):
        if key in annotations:
            return annotations[key] in GKE_INTERNAL_VALUES
    return False
