"""Errors that reach a client, each with its HTTP status and a message for people.

Hierarchy::

    CitytwinError                    500  base; never raised for client input
    ├── BadRequest                   400  the request cannot be understood
    │   ├── QuerySyntaxError         400  a query option does not parse (with the position)
    │   ├── QueryTypeError           400  it parses but its types do not fit (with the position)
    │   ├── InvalidEntity            400  a request body is not a valid entity
    │   └── UnknownQueryOption       400  a `$option` the service does not know or that repeats
    ├── Unauthorized                 401  the API key is unknown or revoked, or the token invalid
    ├── Forbidden                    403  the principal may not do this (the message says why)
    ├── NotFound                     404  the path names no resource (or none the principal may see)
    ├── MethodNotAllowed             405  the path exists but not for this method
    ├── Conflict                     409  the request contradicts stored data
    ├── TooLarge                     413  the request holds more than a limit allows
    ├── UnsupportedMediaType         415  the body's content type is not accepted
    ├── FailedDependency             424  a batch request that depends on one that failed
    ├── Busy                         503  a conflicting concurrent change; the client retries
    ├── Unavailable                  503  the database (or the OpenID provider) cannot be reached
    └── ConfigurationError           (CLI only) a setting has an invalid value

Adapters (HTTP, MQTT) turn these into their own error responses; any other exception
is a bug in citytwin and is reported as 500 without details.
"""

from __future__ import annotations


class CitytwinError(Exception):
    """Base of every error citytwin reports to a client."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, object]:
        return {"code": self.status, "type": "error", "message": self.message}


class BadRequest(CitytwinError):
    status = 400


class QuerySyntaxError(BadRequest):
    """A query option does not parse; ``position`` is 1-based within the option value."""

    def __init__(self, option: str, message: str, position: int | None = None) -> None:
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{option}: {message}{where}")
        self.option = option
        self.position = position


class QueryTypeError(QuerySyntaxError):
    """A query option parses but combines values of the wrong types."""


class InvalidEntity(BadRequest):
    pass


class UnknownQueryOption(BadRequest):
    pass


class Unauthorized(CitytwinError):
    status = 401


class Forbidden(CitytwinError):
    status = 403


class NotFound(CitytwinError):
    status = 404


class MethodNotAllowed(CitytwinError):
    status = 405

    def __init__(self, message: str, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.allowed = allowed


class Conflict(CitytwinError):
    status = 409


class TooLarge(CitytwinError):
    status = 413


class UnsupportedMediaType(CitytwinError):
    status = 415


class FailedDependency(CitytwinError):
    status = 424


class Busy(CitytwinError):
    status = 503


class Unavailable(CitytwinError):
    status = 503


class ConfigurationError(CitytwinError):
    """A setting has an invalid value; raised at start-up, never for a request."""
