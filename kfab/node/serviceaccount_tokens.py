"""ServiceAccount tokens for projected `serviceAccountToken` volume sources, as the kubelet's token manager
keeps them: requested through the TokenRequest API with the node's own credentials, bound to the pod, and
requested again once 80% of their lifetime has passed (or after 24 hours), so the file a pod reads is
always a live token.
"""

from __future__ import annotations

import time

from kfab.client import APIStatusError, Client, rt_of
from kfab.objects.meta import spec_of

SERVICE_ACCOUNT = rt_of("ServiceAccount")
REFRESH_AT = 0.8
MAX_AGE = 24 * 3600


class TokenFetchError(Exception):
    """The API server refused or could not answer a TokenRequest; the message says why."""


class ServiceAccountTokens:
    def __init__(self, client: Client | None, clock=time.time):
        self.client = client
        self.clock = clock
        # (pod uid, audience, expirationSeconds) -> (token, fetched at, expires at)
        self._tokens: dict[tuple[str, str, int], tuple[str, float, float]] = {}

    async def token(self, pod: dict, source: dict) -> str:
        meta, spec = pod["metadata"], spec_of(pod)
        audience = source.get("audience") or ""
        seconds = int(source.get("expirationSeconds") or 3600)
        key = (meta["uid"], audience, seconds)
        now = self.clock()
        cached = self._tokens.get(key)
        if cached is not None and not _needs_refresh(*cached[1:], now):
            return cached[0]
        if self.client is None:
            raise TokenFetchError("this node agent has no API client to request tokens with")
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"audiences": [audience] if audience else [], "expirationSeconds": seconds,
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                               "uid": meta["uid"]}}}
        account = spec.get("serviceAccountName") or "default"
        path = self.client.path(SERVICE_ACCOUNT, meta["namespace"], account, "token")
        try:
            answer = await self.client.request("POST", path, body=request)
        except APIStatusError as e:
            raise TokenFetchError(f'failed to fetch token: {e.message}') from None
        token = answer["status"]["token"]
        self._tokens[key] = (token, now, now + seconds)
        return token

    def forget(self, pod_uid: str) -> None:
        for key in [k for k in self._tokens if k[0] == pod_uid]:
            del self._tokens[key]


def _needs_refresh(fetched: float, expires: float, now: float) -> bool:
    return now > fetched + REFRESH_AT * (expires - fetched) or now > fetched + MAX_AGE
