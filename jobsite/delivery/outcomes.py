"""What each Lever error means for our work, decided in one place for every caller (delivery, the maintenance check,
the probe, tagging, the pipeline sync).

`judge()` turns a failed Lever call into a `Verdict`: a 429 means wait (every worker was slowed and paused by the
client's pacing, on the answer itself, so no caller can forget it); a 503 is maintenance and closes the gate; a
401/403 is our key, which also closes the gate until an admin fixes it; any other 4xx refuses this request as it is,
so a person must look; any other 5xx, or no answer, is Lever failing: try again with backoff, and for a POST whose
outcome is unknown, reconcile before sending again. What each meaning makes a kind of work do is the policy's table
(delivery.sender.POLICY); no caller reads the status codes itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..lever.client import (
    LeverAuthError,
    LeverConnectionError,
    LeverError,
    LeverRateLimited,
    LeverRejected,
    LeverUnavailable,
)
from .gate import Cause


class Meaning(StrEnum):
    RATE_LIMITED = "rate_limited"  # 429: every worker was slowed and paused; try again after `wait_s`
    MAINTENANCE = "maintenance"  # 503: Lever takes nothing now; the gate closes
    KEY_REFUSED = "key_refused"  # 401/403: our key is wrong or lacks a permission; the gate closes for an admin
    REJECTED = "rejected"  # any other 4xx: this request as it is; retrying will not help, a person must look
    FAILING = "failing"  # any other 5xx, or no answer: try again with backoff


@dataclass(frozen=True)
class Verdict:
    meaning: Meaning
    status: int | None  # Lever's HTTP status; None without an answer
    message: str  # Lever's text (may repeat what a candidate wrote: for the console, never for the log)
    wait_s: float = 0.0  # RATE_LIMITED: the pause every worker now keeps
    outcome_unknown: bool = False  # FAILING: a POST may have been processed (timeout, dropped answer, a 5xx)

    @property
    def gate_cause(self) -> Cause | None:
        """Why the gate closes on this answer (true of every application, not just this one), else None."""
        return {Meaning.MAINTENANCE: Cause.MAINTENANCE, Meaning.KEY_REFUSED: Cause.KEY_REFUSED}.get(self.meaning)

    @property
    def why(self) -> str:
        """The reason in the console's words."""
        if self.meaning == Meaning.RATE_LIMITED:
            return f"Lever rate-limited (429): {self.message}"
        if self.meaning == Meaning.MAINTENANCE:
            return "Lever is in maintenance mode (503)"
        if self.meaning == Meaning.KEY_REFUSED:
            return f"Lever refused the API key ({self.status}): {self.message}"
        if self.meaning == Meaning.REJECTED:
            return f"Lever refused it ({self.status}): {self.message}"
        return f"Lever error {self.status}: {self.message}" if self.status else self.message


def judge(error: LeverError) -> Verdict:
    """What `error` means. A 429 has already slowed and paused every worker on the limits the refused call was
    paced on (the Lever client's pacing does it on every answer, whoever made the call)."""
    if isinstance(error, LeverRateLimited):
        return Verdict(Meaning.RATE_LIMITED, error.status, error.message, wait_s=error.pause_s)
    if isinstance(error, LeverAuthError):
        return Verdict(Meaning.KEY_REFUSED, error.status, error.message)
    if isinstance(error, LeverRejected):
        return Verdict(Meaning.REJECTED, error.status, error.message)
    if isinstance(error, LeverUnavailable) and error.status == 503:
        return Verdict(Meaning.MAINTENANCE, error.status, error.message)
    unknown = error.outcome_unknown if isinstance(error, LeverConnectionError) else True
    return Verdict(Meaning.FAILING, error.status, error.message, outcome_unknown=unknown)
