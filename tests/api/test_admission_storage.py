"""Storage objects through kubectl: PV/PVC defaults, the default StorageClass, and refused claims/volumes."""

from __future__ import annotations

import json
import secrets

NFS_STORAGE = """\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {cls}
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kfab.io/nfs
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: {pv}
spec:
  capacity:
    storage: 5Gi
  accessModes:
    - ReadWriteMany
  nfs:
    server: 10.0.0.5
    path: /exports/data
"""

CLAIM = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes:
    - ReadWriteOnce
  resources:
    requests:
      storage: 1Gi
"""


def get_json(kubectl, *args):
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def test_storage_defaults_and_default_class(kubectl, namespace):
    cls, pv = f"nfs-{secrets.token_hex(3)}", f"pv-{secrets.token_hex(3)}"
    kubectl("apply", "-f", "-", input=NFS_STORAGE.format(cls=cls, pv=pv))
    try:
        volume = get_json(kubectl, "pv", pv)
        assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert volume["spec"]["volumeMode"] == "Filesystem"
        storage_class = get_json(kubectl, "storageclass", cls)
        assert (storage_class["reclaimPolicy"], storage_class["volumeBindingMode"]) == ("Delete", "Immediate")
        kubectl("apply", "-n", namespace, "-f", "-", input=CLAIM)
        claim = get_json(kubectl, "-n", namespace, "pvc", "data")
        assert claim["spec"]["storageClassName"] == cls  # the newest default class
        assert claim["spec"]["volumeMode"] == "Filesystem"
        refused = kubectl("apply", "-n", namespace, "-f", "-",
                          input=CLAIM.replace("ReadWriteOnce", "ReadWriteMany"), check=False)
        assert refused.returncode != 0
        assert ('The PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable after creation '
                "except resources.requests") in refused.stderr
    finally:
        kubectl("delete", "storageclass", cls, "--ignore-not-found")
        kubectl("delete", "pv", pv, "--ignore-not-found")


def test_volume_without_source_and_claim_without_size_are_refused(kubectl, namespace):
    pv = f"pv-{secrets.token_hex(3)}"
    no_source = (f"apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {pv}\nspec:\n"
                 "  capacity:\n    storage: 1Gi\n  accessModes: [ReadWriteOnce]\n")
    refused = kubectl("apply", "-f", "-", input=no_source, check=False)
    assert refused.returncode != 0
    assert f'The PersistentVolume "{pv}" is invalid: spec: Required value: must specify a volume type' in refused.stderr
    assert kubectl("get", "pv", pv, check=False).returncode != 0
    no_size = CLAIM.replace("  resources:\n    requests:\n      storage: 1Gi\n", "")
    refused = kubectl("apply", "-n", namespace, "-f", "-", input=no_size, check=False)
    assert refused.returncode != 0
    assert "spec.resources[storage]: Required value" in refused.stderr
