"""The project's error hierarchy. Interfaces (CLI, API) map these to exit codes / HTTP statuses."""


class SkippyError(Exception):
    """Base class: the message is meant for the user and names the problem."""


class NotFoundError(SkippyError):
    """A named thing (agent, model version, run, symbol) does not exist."""


class UnknownAgentError(NotFoundError):
    def __init__(self, agent: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown agent {agent!r}; known agents: {', '.join(known)}")


class DataValidationError(SkippyError):
    """Input market data is malformed; `problems` lists each one (row-named where possible)."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:20]
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(shown) + more)


class DataQualityError(SkippyError):
    """The training data failed the quality gate: the retrain is rejected."""


class TrainingDivergedError(SkippyError):
    """The loss became non-finite or exploded: usually a learning rate that is too high."""


class TrialTimeoutError(SkippyError):
    """A training run took longer than its time limit."""


class ChampionUnavailableError(SkippyError):
    """The champion could not be scored to compare a candidate with: the run fails, nothing deploys."""


class ConflictError(SkippyError):
    """The operation clashes with the current state (e.g. a retrain of that agent is already running)."""


class InvalidRequestError(SkippyError):
    """A parameter is out of range or inconsistent."""


class FeatureDisabledError(SkippyError):
    """The feature is switched off by a feature flag."""


class AuthenticationError(SkippyError):
    """No credentials, or credentials that match no active API key."""


class PermissionDeniedError(SkippyError):
    """The caller's role is too low for the operation."""


class ConfigurationError(SkippyError):
    """The settings are inconsistent with the mode the process runs in."""


class ModelKeyError(SkippyError):
    """Encrypted model weights cannot be read: the key is missing or wrong."""


class Interrupted(BaseException):
    """The work was stopped from outside: a job cancelled (SIGTERM), timed out (SIGALRM) or its server
    shut down (SIGINT). A BaseException, so `except Exception` in the work does not swallow it: the
    service records the run as ended and re-raises, and the job takes `status` as its outcome."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status  # the job's terminal status: cancelled | failed


MAX_MESSAGE = 2000


def brief(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` cut to `limit` characters, saying how much was left out: a driver's exception can carry
    hundreds of kilobytes of SQL parameters, which no log line, run record or HTTP answer should repeat."""
    return text if len(text) <= limit else text[:limit] + f" … ({len(text) - limit} more characters)"


# How the interfaces answer each error over HTTP (the API, the dashboard): most specific first.
HTTP_STATUS: list[tuple[type[SkippyError], int, str]] = [
    (AuthenticationError, 401, "unauthorized"),
    (PermissionDeniedError, 403, "forbidden"),
    (NotFoundError, 404, "not_found"),
    (FeatureDisabledError, 409, "feature_disabled"),
    (ConflictError, 409, "conflict"),
    (DataValidationError, 422, "invalid_data"),
    (DataQualityError, 422, "data_quality"),
    (InvalidRequestError, 422, "invalid_request"),
    (ModelKeyError, 503, "model_key"),
    (ConfigurationError, 503, "misconfigured"),
]


def http_status(exc: SkippyError) -> tuple[int, str]:
    """The HTTP status and error code of `exc` (400 `bad_request` for a SkippyError not listed)."""
    for cls, code, name in HTTP_STATUS:
        if isinstance(exc, cls):
            return code, name
    return 400, "bad_request"
