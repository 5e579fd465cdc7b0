"""The service proxy (`kfab proxy`): Services + EndpointSlices -> one nftables table `ip kfab` on this host."""
