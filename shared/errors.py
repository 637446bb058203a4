"""Errors that cross the queue: a service raises them, the gateway turns them into HTTP answers."""

from __future__ import annotations


class ServiceError(Exception):
    """A deliberate answer from a service (not found, invalid input, conflict).

    ``code`` is one of ``STATUS_BY_CODE``'s keys; the gateway maps it to a status code.
    """

    STATUS_BY_CODE = {
        "invalid": 400,
        "forbidden": 403,
        "not_found": 404,
        "conflict": 409,
        "gone": 410,
        "unavailable": 503,
        "internal": 500,
    }

    def __init__(self, code: str, message: str):
        if code not in self.STATUS_BY_CODE:
            raise ValueError(f"unknown service error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return self.STATUS_BY_CODE[self.code]

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class NotFound(ServiceError):
    def __init__(self, message: str):
        super().__init__("not_found", message)


class InvalidInput(ServiceError):
    def __init__(self, message: str):
        super().__init__("invalid", message)


class Forbidden(ServiceError):
    def __init__(self, message: str):
        super().__init__("forbidden", message)


class Conflict(ServiceError):
    def __init__(self, message: str):
        super().__init__("conflict", message)


class ServiceUnavailable(ServiceError):
    """The service did not answer in time, or the queue could not be reached."""

    def __init__(self, message: str):
        super().__init__("unavailable", message)


class TransientError(Exception):
    """A failure worth retrying with backoff (a peer service or a server that is down)."""
