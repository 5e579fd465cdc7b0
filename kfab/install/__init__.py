"""Shipping kfab to hosts: a wheelhouse of kfab and its dependencies, installed with `pip --no-index`."""
