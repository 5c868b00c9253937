"""The latent energy lives in `ddls.core.energy`, below every layer that uses it; this path re-exports it."""
from ..core.energy import *  # noqa: F401,F403
