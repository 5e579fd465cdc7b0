"""Cluster lifecycle and runbook commands over an installed cluster (issue 6).

    kfab kubeconfig -i INV [-o FILE]     kfab add-node -i INV HOST      kfab remove-node -i INV NODE
    kfab drain|uncordon -i INV NODE      kfab reset -i INV [--limit]    kfab upgrade -i INV [--wheelhouse DIR]
    kfab backup|restore -i INV           kfab rotate-certs -i INV

Each command reads the same inventory and site.yml as `kfab up` (cluster.py resolves the roles' variables
exactly as a run would), checks every argument before it changes anything, then drives the hosts over the
provisioner's SSH connections and the cluster through kfab's API client. Runbooks: docs/runbooks/.
"""
