"""API errors, rendered as Kubernetes `Status` objects (meta/v1)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cause:
    """One invalid field: field is the JSON path as Kubernetes spells it, e.g. `spec.containers[0].name`."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"  # FieldValueRequired, FieldValueNotSupported, FieldValueDuplicate, ...


@dataclass
class APIError(Exception):
    code: int
    reason: str  # BadRequest, Unauthorized, Forbidden, NotFound, AlreadyExists, Conflict, Invalid, Gone, ...
    message: str
    name: str | None = None
    group: str | None = None
    kind: str | None = None
    causes: list[Cause] = field(default_factory=list)
    retry_after_seconds: int | None = None

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict:
        details: dict = {}
        if self.name is not None:
            details["name"] = self.name
        if self.group is not None:
            details["group"] = self.group
        if self.kind is not None:
            details["kind"] = self.kind
        if self.causes:
            # Go's omitempty: a cause about no particular field has no "field" key
            details["causes"] = [{"reason": c.reason, "message": c.message, **({"field": c.field} if c.field else {})}
                                 for c in self.causes]
        if self.retry_after_seconds is not None:
            details["retryAfterSeconds"] = self.retry_after_seconds
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def not_found(kind: str, name: str, group: str = "") -> APIError:
    resource = f"{kind}.{group}" if group else kind
    return APIError(404, "NotFound", f'{resource} "{name}" not found', name=name, group=group, kind=kind)


def already_exists(kind: str, name: str, group: str = "") -> APIError:
    resource = f"{kind}.{group}" if group else kind
    return APIError(409, "AlreadyExists", f'{resource} "{name}" already exists', name=name, group=group, kind=kind)


def conflict(kind: str, name: str, group: str = "") -> APIError:
    resource = f"{kind}.{group}" if group else kind
    return APIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        name=name, group=group, kind=kind,
    )


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> APIError:
    """422; `kind` is the Kind (e.g. Deployment), as Kubernetes words it: `Deployment.apps "x" is invalid: ...`."""
    resource = f"{kind}.{group}" if group else kind
    detail = ", ".join(f"{c.field}: {c.message}" for c in causes)
    return APIError(422, "Invalid", f'{resource} "{name}" is invalid: {detail}', name=name, group=group, kind=kind,
                    causes=list(causes))


def forbidden(message: str) -> APIError:
    return APIError(403, "Forbidden", message)


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def unsupported_media_type(accepted) -> APIError:
    """415 as kube-apiserver words it; `accepted` are the media types the verb takes, in kube's order."""
    return APIError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                    f"media types include: {', '.join(accepted)}")
