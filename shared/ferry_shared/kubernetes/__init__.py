"""Connecting to a Kubernetes target, shared by every service that talks to one (the
inventory watches it, the kubevirt-writer creates objects on it): a client
configuration from the provider's kubeconfig secret or the pod's service account
(:mod:`.kubeconfig`), the failures a person can act on (:mod:`.failures`), and a
list-then-watch of objects in a thread of its own (:mod:`.list_watch`)."""
