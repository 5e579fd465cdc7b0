"""`kfab ingress`: the built-in ingress controller (IngressClass `kfab`, controller `kfab.io/ingress`)."""
