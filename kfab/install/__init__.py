"""Installing kfab on hosts: a wheelhouse of kfab and its dependencies (built here, installed there with
`pip --no-index`), and the check a worker runs once its agent is up (node_ready)."""
