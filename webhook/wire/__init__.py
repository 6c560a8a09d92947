"""AdmissionReview v1 on the wire: parse what kube-apiserver sends, build what it accepts."""
