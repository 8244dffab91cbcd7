"""What a composition is: the frozen members it references and which of their layers are connected."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..config import from_dict
from ..errors import ConfigError


@dataclass(frozen=True)
class Connection:
    augment: int  # index into ComposeConfig.augments
    aug_layer: int  # output of this augmenting decoder layer (0-based) ...
    anchor_layer: int  # ... is cross-attended after this anchor decoder layer


@dataclass(frozen=True)
class ComposeConfig:
    anchor: str  # a model string as MemberSpec takes it: folder, Hub id or offline:NAME
    augments: tuple[str, ...]
    connections: tuple[Connection, ...] = field(default_factory=tuple)
    heads: int = 4

    def __post_init__(self):
        if not self.augments:
            raise ConfigError("a composition needs at least one augmenting model")
        if self.heads < 1:
            raise ConfigError(f"heads must be >= 1, got {self.heads}")
        for c in self.connections:
            if not 0 <= c.augment < len(self.augments):
                raise ConfigError(f"connection {c}: no augmenting model {c.augment}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ComposeConfig:
        return from_dict(cls, data)


def default_connections(aug_layers: list[int], anchor_layers: int, every: int = 4) -> tuple[Connection, ...]:
    """Every `every`-th layer of each augmenting model (its last layer when it has fewer), connected to
    anchor layers spread evenly, ending at the anchor's last layer (CALM §3.2: "every 4th layer")."""
    conns = []
    for k, n_aug in enumerate(aug_layers):
        picked = list(range(every - 1, n_aug, every)) or [n_aug - 1]
        for i, layer in enumerate(picked):
            conns.append(Connection(k, layer, round((i + 1) * anchor_layers / len(picked)) - 1))
    return tuple(conns)


def check_layers(cfg: ComposeConfig, aug_layers: list[int], anchor_layers: int) -> None:
    for c in cfg.connections:
        if not (0 <= c.aug_layer < aug_layers[c.augment] and 0 <= c.anchor_layer < anchor_layers):
            raise ConfigError(f"connection {c}: the augmenting model has {aug_layers[c.augment]} layers and "
                              f"the anchor {anchor_layers}")
