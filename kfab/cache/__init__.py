"""The package cache for install nights: apt-cacher-ng on the control machine (`kfab cache up|down`)."""
