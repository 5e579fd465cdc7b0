"""Network volumes on the node: NFS mounts per pod, iSCSI logins with one mount per node bound into pods.

Mounts happen on the host before any container of the pod starts, and go when no pod on the node uses them.
The kernel (its mount table) is the record of what is mounted, so an agent restart loses nothing.
"""
