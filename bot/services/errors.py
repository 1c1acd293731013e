"""Errors a person can act on; their text is shown to them as it is."""

from __future__ import annotations


class CadenceError(Exception):
    """A request that cannot be done as asked. The message is a sentence for the person who asked."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(CadenceError):
    pass


class Invalid(CadenceError):
    pass


class Forbidden(CadenceError):
    pass


class Conflict(CadenceError):
    pass


class Unavailable(CadenceError):
    """The database could not be reached or did not answer in time: nothing the person did was wrong."""
