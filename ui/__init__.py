"""The Gradio web app: ui.render/state/picker/links/store/export are pure; layout/handlers hold the Gradio wiring.

Nothing here imports torch or transformers; app.py passes in the backend that loads models.
"""

from .handlers import Context, Handlers
from .layout import build_app
from .state import Limits, Session

__all__ = ["Context", "Handlers", "Limits", "Session", "build_app"]
