"""Errors of the crowd app; the web layer maps them to HTTP statuses, the CLI to exit code 2."""

from __future__ import annotations

from kyokan.errors import KyokanError


class CrowdError(KyokanError):
    """A request that cannot be done as asked (bad input, wrong state)."""

    status = 400

    def __init__(self, message: str, *, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


class NotFound(CrowdError):
    status = 404

    def __init__(self, message: str = "not found", *, code: str = "not_found") -> None:
        super().__init__(message, code=code)


class Forbidden(CrowdError):
    status = 403

    def __init__(self, message: str = "forbidden", *, code: str = "forbidden") -> None:
        super().__init__(message, code=code)


class Conflict(CrowdError):
    status = 409

    def __init__(self, message: str, *, code: str = "conflict") -> None:
        super().__init__(message, code=code)
