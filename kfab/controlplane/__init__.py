"""The control plane, composed in one place (k3s's Server()): which components run in which process.

`kfab server` runs the API server over SQLite with the controller-manager and the scheduler in its own
process; `kfab apiserver`, `kfab controller-manager` and `kfab scheduler` run one each, for a cluster whose
control plane is split into services over etcd. The components themselves live in kfab.api,
kfab.controllers and kfab.scheduler and know nothing of each other.
"""
