"""kfab: a small Kubernetes-model cluster, installed over SSH from one inventory file."""

__version__ = "0.1.0"
