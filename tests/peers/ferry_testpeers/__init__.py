"""Pytest fixtures that run Ferry's real test peers: NATS, the vSphere simulator and a
Kubernetes control plane (etcd + kube-apiserver with RBAC and the KubeVirt CRDs), and
(:mod:`.launch`) the launchers of those peers and of Ferry's services as processes."""
