"""The cluster's image registry, seen from the machine running kfab (`kfab image push`)."""
