"""Domain errors of the run services; `app.api.main` maps each one to an HTTP status."""

from __future__ import annotations

import errno


class RunlaneError(Exception):
    """Base of every error a client can cause; `code` is stable and machine-readable."""

    code = "RUNLANE_ERROR"
    members: dict[str, object]  # more fields of the problem body, for a client to act on

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.members = {}


class RunNotFoundError(RunlaneError):
    code = "RUN_NOT_FOUND"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"No run with run_id '{run_id}'.")


class RunGoneError(RunlaneError):
    code = "RUN_GONE"

    def __init__(self, run_id: str, deleted_at: str, key_id: str | None = None) -> None:
        super().__init__(f"Run '{run_id}' was deleted at {deleted_at}.")
        self.run_id = run_id
        self.key_id = key_id


class RunIdConflictError(RunlaneError):
    code = "RUN_ID_CONFLICT"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"A run with run_id '{run_id}' already exists; choose another run_id.")


class RunNotFinishedError(RunlaneError):
    code = "RUN_NOT_FINISHED"

    def __init__(self, run_id: str, status: str, what: str) -> None:
        super().__init__(f"Run '{run_id}' is {status}; its {what} is available once it finishes.")
        self.status = status


class ArtifactNotProducedError(RunlaneError):
    code = "ARTIFACT_NOT_PRODUCED"

    def __init__(self, run_id: str, status: str, what: str) -> None:
        super().__init__(f"Run '{run_id}' ended {status} without producing its {what}.")
        self.status = status


class ArtifactMissingError(RunlaneError):
    code = "ARTIFACT_MISSING"

    def __init__(self, run_id: str, name: str, reason: str) -> None:
        super().__init__(f"Run '{run_id}' should have {name}, but it is {reason}.")


class InvalidTransitionError(RunlaneError):
    code = "INVALID_TRANSITION"

    def __init__(self, run_id: str, current: str, target: str) -> None:
        super().__init__(f"Run '{run_id}' cannot move from {current} to {target}.")
        self.current = current
        self.target = target


class RunAlreadyFinishedError(RunlaneError):
    code = "RUN_ALREADY_FINISHED"

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"Run '{run_id}' already ended {status}; there is nothing to cancel.")
        self.status = status


class RunActiveError(RunlaneError):
    code = "RUN_ACTIVE"

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"Run '{run_id}' is {status}; cancel it before deleting it.")
        self.status = status


class QueueFullError(RunlaneError):
    code = "QUEUE_FULL"

    def __init__(self, limit: int, retry_after_s: int) -> None:
        super().__init__(f"{limit} runs are already queued; retry in {retry_after_s} s.")
        self.retry_after_s = retry_after_s


class IdempotencyKeyReusedError(RunlaneError):
    code = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key '{key}' was already used with a different request body.")


class QuotaExceededError(RunlaneError):
    """One of an API key's limits (active runs, queued runs, requests per minute) is reached."""

    def __init__(self, code: str, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after_s = retry_after_s


class ForbiddenError(RunlaneError):
    """A valid API key without the right to do this."""

    code = "FORBIDDEN"


class DocumentsForbiddenError(ForbiddenError):
    code = "DOCUMENTS_FORBIDDEN"

    def __init__(self, markdown_path: str) -> None:
        super().__init__(f"This API key may not start runs over '{markdown_path}'.")


class WebhookUrlRefusedError(RunlaneError):
    code = "WEBHOOK_URL_REFUSED"


class InvalidRequestError(RunlaneError):
    """A request that is well-formed JSON but names something it may not (e.g. a path)."""

    code = "VALIDATION_ERROR"


class RunStateUnreadableError(RunlaneError):
    """A damaged run: its state cannot be read or is not a valid state of this run."""

    code = "RUN_STATE_UNREADABLE"

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(f"Run '{run_id}' is damaged: {reason}. It can still be deleted.")
        self.run_id = run_id
        self.reason = reason


class StorageFullError(RunlaneError):
    """The output disk is out of space (or quota): nothing was written."""

    code = "INSUFFICIENT_STORAGE"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"The server's output disk is full; nothing was saved. Retry in {retry_after_s} s.")
        self.retry_after_s = retry_after_s


_OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)


def storage_failure(exc: OSError, retry_after_s: int = 30) -> Exception:
    """What a failed write means to a client: a full disk is its 507, anything else stays itself."""
    if exc.errno in _OUT_OF_SPACE:
        failure = StorageFullError(retry_after_s)
        failure.__cause__ = exc
        return failure
    return exc


class VersionNotFoundError(RunlaneError):
    code = "VERSION_NOT_FOUND"

    def __init__(self, run_id: str, version: int, latest: int) -> None:
        super().__init__(f"Run '{run_id}' has no answer version {version}; its versions are 1 to {latest}.")
        self.members = {"latest_version": latest}


class VersionConflictError(RunlaneError):
    """An edit based on a version that is no longer the latest: nothing was changed."""

    code = "VERSION_CONFLICT"

    def __init__(self, run_id: str, latest: int, etag: str) -> None:
        super().__init__(
            f"The answer of run '{run_id}' changed since you read it: it is at version {latest} now. "
            "Read it again and redo your edit on it."
        )
        self.members = {"latest_version": latest, "etag": etag}


class PreconditionRequiredError(RunlaneError):
    code = "PRECONDITION_REQUIRED"

    def __init__(self) -> None:
        super().__init__(
            "An edit names the version it is based on: send If-Match with the output's ETag, "
            "or base_version in the body."
        )


class SectionNotFoundError(RunlaneError):
    code = "SECTION_NOT_FOUND"

    def __init__(self, wanted: object, sections: list[str]) -> None:
        listed = "; ".join(f"{i}: {name!r}" for i, name in enumerate(sections))
        super().__init__(f"The answer has no section {wanted!r}. Its sections are {listed}.")
        self.members = {"sections": sections}


class AnnotationNotFoundError(RunlaneError):
    code = "ANNOTATION_NOT_FOUND"

    def __init__(self, run_id: str, annotation_id: int) -> None:
        super().__init__(f"Run '{run_id}' has no annotation {annotation_id}.")


class EditsWouldBeLostError(RunlaneError):
    """Regenerating an answer people have edited, without saying that is meant."""

    code = "EDITS_WOULD_BE_LOST"

    def __init__(self, run_id: str, sections: list[str]) -> None:
        super().__init__(
            f"The answer of run '{run_id}' has edits in {', '.join(map(repr, sections))}; a new run "
            'would not carry them. Send "force": true to regenerate anyway.'
        )
        self.members = {"edited_sections": sections}
