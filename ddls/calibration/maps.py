"""The calibration maps live in `ddls.core.score_map`, below every layer that uses it; this path re-exports it."""
from ..core.score_map import *  # noqa: F401,F403
