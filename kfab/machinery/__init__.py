"""What every client of the API server that watches and reacts is built on (client-go's share of kfab):
informers (list+watch caches), the rate-limited work queue, the Controller base (watch -> queue ->
reconcile), Event recording and Lease-based leader election.

Controllers, the scheduler, the node agent, DNS, the service proxy and the storage-host provisioners all
import it; it imports only kfab.client and kfab.objects.
"""
