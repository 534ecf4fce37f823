"""riskgrid's exception hierarchy; `api.errors` maps each to an HTTP status."""

from __future__ import annotations


class RiskgridError(Exception):
    """Base class: the message is meant for a person and is safe to show."""


class SetupError(RiskgridError):
    """The machine or database is not ready; the message says which command fixes it."""


class NotFound(RiskgridError):
    """A named thing (grid, area, report) does not exist."""


class InvalidInput(RiskgridError):
    """A request or a file is malformed; the message says what to change."""


class Conflict(RiskgridError):
    """The request clashes with what is stored."""


class Unauthorized(RiskgridError):
    """The credentials sent are not valid (unknown or revoked token)."""


class Forbidden(RiskgridError):
    """The caller's role may not do or see this (personal data, for instance)."""


class TooManyAttempts(RiskgridError):
    """Too many tries in a short time; `retry_after_s` says when to try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OverBudget(RiskgridError):
    """A computation ran past the per-request time budget and was stopped."""


class ImportRefused(InvalidInput):
    """A boundary file was refused; `report` holds the validation findings."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report
