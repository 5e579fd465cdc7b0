"""What runs ON the storage host (the NFS server, the iSCSI target): the external provisioners of its volumes.

The control-plane's PV binder (kfab/controllers/pv_binder.py) annotates a claim of a class whose provisioner it
does not run with `volume.kubernetes.io/storage-provisioner: <name>` and waits. `kfab provisioner nfs|iscsi`
(a systemd unit from roles/storage-provisioner) watches those claims on the storage host itself, makes the
directory or LUN, and creates the PersistentVolume `pvc-<claim uid>` pre-bound to the claim; the binder binds
it. A Released volume with reclaimPolicy Delete is removed by the same provisioner (storage, then the PV).
"""
