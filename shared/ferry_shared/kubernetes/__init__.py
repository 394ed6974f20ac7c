"""Connecting to a Kubernetes target, shared by every service that talks to one (the
inventory watches it, the kubevirt-writer creates objects on it): a client
configuration from the provider's kubeconfig secret or the pod's service account
(:mod:`.kubeconfig`), and the failures a person can act on (:mod:`.failures`)."""
