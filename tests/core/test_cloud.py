"""webhook/core/cloud.py: internal load balancers as each provider's own code reads them. A value
a provider would not honour means public; a public load balancer is never labelled private."""

from __future__ import annotations

import pytest

from tests.reviews import service
from webhook.core import cloud
from webhook.core.labels import exposure

AWS_CCM = "kubernetes/cloud-provider-aws pkg/providers/v1/aws.go EnsureLoadBalancer"
AWS_LBC = "kubernetes-sigs/aws-load-balancer-controller pkg/service/model_build_load_balancer.go"
AZURE = "kubernetes-sigs/cloud-provider-azure requiresInternalLoadBalancer"
GKE = "kubernetes/cloud-provider-gcp providers/gce/gce_annotations.go GetLoadBalancerAnnotationType"


def lb(annotations=None, **spec):
    return service("web", type="LoadBalancer", annotations=annotations or {}, **spec)


# (service, internal?, why: the provider's code it rests on)
CASES = [
    ("aws-true", lb({cloud.AWS_INTERNAL: "true"}), True, f"{AWS_CCM}: non-empty and not 'false'; {AWS_LBC}: ParseBool true"),
    ("aws-True", lb({cloud.AWS_INTERNAL: "True"}), True, "Go's ParseBool accepts True; the in-tree provider any non-'false' value"),
    ("aws-1", lb({cloud.AWS_INTERNAL: "1"}), True, "Go's ParseBool accepts 1"),
    ("aws-false", lb({cloud.AWS_INTERNAL: "false"}), False, f"{AWS_CCM}: exactly 'false' is public"),
    ("aws-False", lb({cloud.AWS_INTERNAL: "False"}), False, "in-tree internal, but ParseBool false for the controller: not surely internal"),
    ("aws-yes", lb({cloud.AWS_INTERNAL: "yes"}), False, "ParseBool refuses 'yes': the controller builds nothing internal"),
    ("aws-empty", lb({cloud.AWS_INTERNAL: ""}), False, f"{AWS_CCM}: an empty value is public"),
    ("aws-scheme-overrides-legacy", lb({cloud.AWS_INTERNAL: "true", cloud.AWS_SCHEME: "internet-facing"}), False,
     f"{AWS_LBC}: the scheme annotation wins over the legacy one"),
    ("aws-scheme-alone-in-tree", lb({cloud.AWS_SCHEME: "internal"}), False,
     "the in-tree provider ignores aws-load-balancer-scheme and builds a public load balancer"),
    ("aws-scheme-internal-controller-type", lb({cloud.AWS_SCHEME: "internal", cloud.AWS_TYPE: "external"}), True,
     f"type external hands the Service to the controller; {AWS_LBC}: scheme 'internal'"),
    ("aws-scheme-Internal", lb({cloud.AWS_SCHEME: "Internal"}, loadBalancerClass=cloud.AWS_LBC_CLASS), False,
     f"{AWS_LBC}: the scheme is compared exactly; 'Internal' is an error, not internal"),
    ("aws-class-scheme-internal", lb({cloud.AWS_SCHEME: "internal"}, loadBalancerClass=cloud.AWS_LBC_CLASS), True,
     f"{AWS_LBC}: scheme exactly 'internal'"),
    ("aws-class-default", lb(loadBalancerClass=cloud.AWS_LBC_CLASS), False,
     "the controller's default scheme is set by a flag: netguard cannot know it, so public"),
    ("azure-true", lb({cloud.AZURE_INTERNAL: "true"}), True, f"{AZURE}: == \"true\""),
    ("azure-True", lb({cloud.AZURE_INTERNAL: "True"}), False, f"{AZURE}: compared case-sensitively in its older releases"),
    ("azure-false", lb({cloud.AZURE_INTERNAL: "false"}), False, f"{AZURE}: anything but true is public"),
    ("gke-Internal", lb({cloud.GKE_TYPE: "Internal"}), True, f"{GKE}: LBTypeInternal"),
    ("gke-internal-lowercase", lb({cloud.GKE_TYPE: "internal"}), True, f"{GKE}: the deprecated lowercase value too"),
    ("gke-INTERNAL", lb({cloud.GKE_TYPE: "INTERNAL"}), False, f"{GKE}: exact values only"),
    ("gke-deprecated-key", lb({cloud.GKE_TYPE_DEPRECATED: "Internal"}), True, f"{GKE}: the older annotation, when the new one is absent"),
    ("gke-new-key-wins", lb({cloud.GKE_TYPE: "External", cloud.GKE_TYPE_DEPRECATED: "Internal"}), False,
     f"{GKE}: the first annotation present decides"),
    ("gke-internal-class", lb(loadBalancerClass="networking.gke.io/l4-regional-internal"), True,
     "GKE's regional internal class builds an internal passthrough load balancer"),
    ("gke-external-class-overrides", lb({cloud.GKE_TYPE: "Internal"}, loadBalancerClass="networking.gke.io/l4-regional-external"),
     False, "a class hands the Service to its controller; the external class is public"),
    ("unknown-class", lb({cloud.AZURE_INTERNAL: "true"}, loadBalancerClass="example.com/lb"), False,
     "a class no provider here knows: its controller decides, so public"),
    ("no-annotation", lb(), False, "every provider builds a public load balancer by default"),
]


@pytest.mark.parametrize("svc, internal, why", [pytest.param(s, i, w, id=n) for n, s, i, w in CASES])
def test_internal_as_the_provider_reads_it(svc, internal, why):
    assert cloud.is_internal_load_balancer(svc) is internal, why
    assert exposure(svc) == ("private" if internal else "public"), why
