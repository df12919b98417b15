"""The retake.tv agent API: `RetakeClient`, its payload models, and the skill check.

Every failure is a `retake_fsm.errors.ApiError` subclass; the token goes only
to the configured base URL's host; redirects are refused.
"""

from ._client import RetakeClient
from ._models import (
    Comment,
    RegisterRequest,
    RegisterResponse,
    RtmpCredentials,
    StreamStart,
    StreamStatus,
    StreamStop,
    ThumbnailResult,
    TokenInfo,
)
from ._skill import SkillCheck, check_skill

__all__ = [
    "Comment",
    "RegisterRequest",
    "RegisterResponse",
    "RetakeClient",
    "RtmpCredentials",
    "SkillCheck",
    "StreamStart",
    "StreamStatus",
    "StreamStop",
    "ThumbnailResult",
    "TokenInfo",
    "check_skill",
]
