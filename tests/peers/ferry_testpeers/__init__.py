"""Pytest fixtures that run Ferry's real test peers: NATS, the vSphere simulator and a
Kubernetes control plane (etcd + kube-apiserver with RBAC and the KubeVirt CRDs)."""
