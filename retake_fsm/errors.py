"""One exception tree for retake-fsm.

    RetakeError                      exit 1 unless stated
    ├── DefinitionError              exit 2  states.yaml is broken (FILE:LINE:COL per problem)
    ├── InputError                   exit 2  bad user input (wallet, ticker, tweet URL, --set)
    ├── ConfigError                  exit 2  a config/credentials file is unreadable or malformed
    ├── StateError                           the state dir cannot be used
    │   └── LockedError                      another run holds this profile (names its PID)
    ├── ApiError                             anything the platform said or failed to say
    │   ├── BadRequestError          400     kind=input
    │   ├── AuthError                401     kind=auth   "re-register or set RETAKE_ACCESS_TOKEN"
    │   ├── NotFoundError            404     kind=not_found
    │   ├── ConflictError            409     kind=conflict (the engine's recover edge)
    │   ├── ServerError              5xx     kind=server, retryable
    │   ├── NetworkError                     kind=network, retryable (connection refused/reset)
    │   │   └── ApiTimeout                   kind=timeout, retryable
    │   ├── PayloadError                     kind=payload: a 2xx whose body is malformed
    │   └── UnsafeRequestError               kind=unsafe: token would leave the platform host
    ├── ProcessError                         kind=process
    │   ├── MissingBinaryError       exit 2  names the Debian package to install
    │   ├── ProcessExitedError               a child exited (e.g. ingest refused the key)
    │   ├── DisplayInUseError        exit 2  an X display taken by someone else
    │   └── StallError                       kind=stall: encoder frame counter frozen
    ├── GuardTimeout                         kind=timeout: a transition ran out of total time
    │   └── NotLiveError                     kind=not_live: platform never said is_live (no retry)
    ├── TooManyRecoveries                    recover.max reached within recover.window
    ├── VerificationPending          exit 3  a human must tweet the verification message
    └── Interrupted                  exit 130

Every class says whether it is ``retryable``, which ``kind`` it is (the names
``retry_on`` in states.yaml refers to) and its ``exit_code``. Messages name the
problem and the fix, never a secret.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    WAITING_FOR_HUMAN = 3
    INTERRUPTED = 130


class RetakeError(Exception):
    """Base of every error retake-fsm raises on purpose."""

    kind: ClassVar[str] = "error"
    retryable: ClassVar[bool] = False
    exit_code: ClassVar[ExitCode] = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} ({hint})")


class DefinitionError(RetakeError):
    """states.yaml failed to load or validate: every problem, with its position."""

    kind = "definition"
    exit_code = ExitCode.USAGE

    def __init__(self, problems: list[tuple[str, int, int, str]]) -> None:
        self.problems = problems
        lines = [f"{f}:{line}:{col}: {msg}" for f, line, col, msg in problems]
        super().__init__("\n".join(lines) if lines else "invalid definition")


class InputError(RetakeError):
    kind = "input"
    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None):
        self.field = field
        super().__init__(message, hint=hint)


class ConfigError(RetakeError):
    kind = "config"
    exit_code = ExitCode.USAGE


class StateError(RetakeError):
    kind = "state"


class LockedError(StateError):
    kind = "locked"

    def __init__(self, profile: str, pid: int | None) -> None:
        self.pid = pid
        holder = f"PID {pid}" if pid else "another process"
        super().__init__(
            f"profile {profile!r} is already being run by {holder}",
            hint="stop it with `retake-fsm stop` or use another --profile",
        )


class ApiError(RetakeError):
    kind = "api"
    status_code: int | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        endpoint: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.endpoint = endpoint
        super().__init__(message, hint=hint)


class BadRequestError(ApiError):
    kind = "input"

    def __init__(self, message: str, *, field: str | None = None, **kw: object) -> None:
        self.field = field
        super().__init__(message, **kw)  # type: ignore[arg-type]


class AuthError(ApiError):
    kind = "auth"


class NotFoundError(ApiError):
    kind = "not_found"


class ConflictError(ApiError):
    kind = "conflict"


class ServerError(ApiError):
    kind = "server"
    retryable = True


class NetworkError(ApiError):
    kind = "network"
    retryable = True


class ApiTimeout(NetworkError):
    kind = "timeout"


class PayloadError(ApiError):
    kind = "payload"


class UnsafeRequestError(ApiError):
    kind = "unsafe"


class ProcessError(RetakeError):
    kind = "process"
    retryable = True


class MissingBinaryError(ProcessError):
    kind = "missing_binary"
    retryable = False
    exit_code = ExitCode.USAGE

    def __init__(self, binary: str, package: str) -> None:
        self.binary = binary
        self.package = package
        super().__init__(
            f"{binary} not found", hint=f"install it: apt-get install {package}"
        )


class ProcessExitedError(ProcessError):
    kind = "process"

    def __init__(self, name: str, returncode: int | None, detail: str = "") -> None:
        self.name = name
        self.returncode = returncode
        msg = f"{name} exited with code {returncode}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class DisplayInUseError(ProcessError):
    kind = "display_in_use"
    retryable = False
    exit_code = ExitCode.USAGE


class StallError(ProcessError):
    kind = "stall"


class GuardTimeout(RetakeError):
    kind = "timeout"
    retryable = True


class NotLiveError(GuardTimeout):
    """`stream/status` never said `is_live` within `live.limit`: recover with a fresh key."""

    kind = "not_live"
    retryable = False


class TooManyRecoveries(RetakeError):
    kind = "too_many_recoveries"


class VerificationPending(RetakeError):
    kind = "verification_pending"
    exit_code = ExitCode.WAITING_FOR_HUMAN


class Interrupted(RetakeError):
    kind = "interrupted"
    exit_code = ExitCode.INTERRUPTED


def needs_human(exc: BaseException) -> bool:
    """No retry or recovery can fix this: bad input or config, a missing package,
    a display taken by someone else, a rejected token. The engine stops instead."""
    return isinstance(exc, RetakeError) and (
        exc.exit_code == ExitCode.USAGE or isinstance(exc, AuthError)
    )


def _all_subclasses(cls: type[RetakeError]) -> list[type[RetakeError]]:
    out: list[type[RetakeError]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


def error_kinds() -> dict[str, bool]:
    """Every error kind and whether any class of that kind is retryable."""
    kinds: dict[str, bool] = {}
    classes: list[type[RetakeError]] = [RetakeError, *_all_subclasses(RetakeError)]
    for cls in classes:
        kinds[cls.kind] = kinds.get(cls.kind, False) or cls.retryable
    return kinds


def retryable_kinds() -> frozenset[str]:
    """The kinds `retry_on` in states.yaml may name."""
    return frozenset(k for k, r in error_kinds().items() if r)
