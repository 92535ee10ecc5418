"""nsrun: run a Kubernetes Pod manifest on one Linux host with the kubelet's semantics."""

__version__ = "0.1.0"
