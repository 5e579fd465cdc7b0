"""`kfab dashboard`: a live view of a cluster for a big screen, served by kfab (see server.py and view.py)."""
