"""Hidden units the lecture names that torch has no module for: absolute value rectification, linear bottlenecks.

Deck 003, "Generalizations of ReLu": ``g(z) = max(0, z) + alpha min(0, z)``
is leaky ReLU for a small fixed alpha (``nn.LeakyReLU``, 0.01), parametric ReLU
for a learned alpha (``nn.PReLU``; He et al. 2015), and absolute value
rectification for alpha = -1, ``g(z) = max(0, z) - min(0, z) = |z|``, used for
object recognition from images by Jarrett et al. (2009), "where it makes sense
to seek features that are invariant under a polarity reversal of the input
illumination" (Goodfellow, Bengio & Courville 2016, §6.3.1).

Deck 003, "Composing linear functions yields a linear function again ... They
could be squashed into one: W = U·V.  Exception: encoder", and Goodfellow et
al. §6.3.3: a layer ``h = g(W^T x + b)`` with n inputs and p outputs, its
``W`` factored into two layers, the first without a nonlinearity, holds
``(n + p) q`` parameters for q intermediate units instead of ``n p``: "Linear
hidden units thus offer an effective way of reducing the number of parameters
in a network".  :class:`LowRankLinear` is that factored layer.
"""
from __future__ import annotations

import torch
from torch import nn

from regularkit._util.checks import check_bool, check_int

__all__ = ["AbsoluteValueRectification", "LowRankLinear", "split_before"]


class AbsoluteValueRectification(nn.PReLU):
    """``g(z) = max(0, z) - min(0, z) = |z|`` (deck 003; Jarrett et al. 2009, via Goodfellow et al. §6.3.1).

    It *is* the PReLU family with the slope fixed at ``alpha = -1`` (Goodfellow
    et al.: "absolute value rectification fixes alpha_i = -1"), hence a subclass
    of ``nn.PReLU`` whose ``weight`` is a constant buffer, not a parameter:
    nothing to train, decay or save (``state_dict`` is empty).  Being an
    ``nn.PReLU`` is also how code below the models in the layering, e.g.
    :data:`regularkit.metrics.sparsity.ACTIVATION_TYPES`, recognises it as a
    nonlinearity without importing :mod:`regularkit.models` (an import cycle).
    ``forward`` is ``torch.abs`` (gradient ``sign(z)``, 0 at 0).
    """

    def __init__(self) -> None:
        super().__init__(num_parameters=1, init=-1.0)
        del self.weight  # the parameter nn.PReLU made: the slope is fixed here
        self.register_buffer("weight", torch.full((1,), -1.0), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.abs()

    def extra_repr(self) -> str:
        return ""


class LowRankLinear(nn.Module):
    """A dense layer of rank ``rank``: ``y = x (U V)^T + b`` with ``V`` (rank x in), ``U`` (out x rank).

    Two ``nn.Linear`` layers with no nonlinearity between them (deck 003,
    ``W = U·V``; Goodfellow et al. §6.3.3): ``v`` maps ``in -> rank`` without a
    bias, ``u`` maps ``rank -> out`` with the bias.  Parameters:
    ``rank * (in + out) + out`` instead of ``in * out + out``, fewer exactly
    when ``rank < in * out / (in + out)``; a larger rank is allowed, it only
    costs more.  The factors are plain ``nn.Linear`` layers, so penalties,
    weight decay, max-norm and initializers see two weights ``U`` and ``V``
    (not their product), and DropConnect on a model's hidden Linear layers
    drops the factors' connections.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features, minimum=1)
        self.out_features = check_int("out_features", out_features, minimum=1)
        self.rank = check_int("rank", rank, minimum=1)
        self.v = nn.Linear(self.in_features, self.rank, bias=False)
        self.u = nn.Linear(self.rank, self.out_features, bias=check_bool("bias", bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.u(self.v(x))

    def composed_weight(self) -> torch.Tensor:
        """``W = U V`` (out x in): the one dense matrix this layer applies."""
        return self.u.weight @ self.v.weight

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"bias={self.u.bias is not None}")


def split_before(seq: nn.Sequential, types: tuple[type[nn.Module], ...]) -> list[nn.Sequential]:
    """``seq`` cut into consecutive pieces, a new piece at every module of ``types``.

    The pieces share ``seq``'s modules (no copies), and running them in order is
    running ``seq``.  Modules before the first cut join the first piece.  The
    built-in models use it to list their blocks (``mixing_stages()``: a conv
    stage starts at its ``Conv2d``, a dense block at its Linear).
    """
    pieces: list[list[nn.Module]] = [[]]
    for module in seq:
        if isinstance(module, types) and any(isinstance(m, types) for m in pieces[-1]):
            pieces.append([])
        pieces[-1].append(module)
    return [nn.Sequential(*piece) for piece in pieces]
