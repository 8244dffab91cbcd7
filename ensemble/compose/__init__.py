"""CALM (arXiv 2401.02412): a frozen anchor LM composed with frozen augmenting LMs through trained
cross-attention. See docs/compose.md."""

from .model import ComposedLM
from .spec import ComposeConfig, Connection, default_connections
from .store import compose, is_composition, load_composed, save_composed

__all__ = ["ComposedLM", "ComposeConfig", "Connection", "compose", "default_connections", "is_composition",
           "load_composed", "save_composed"]
