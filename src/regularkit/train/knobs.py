"""What a recipe field does, said once, on the field: its :class:`Knob` metadata.

Every field of :class:`~regularkit.train.config.Recipe` (and of its parts) is declared with
:func:`knob`, which stores a :class:`Knob` in ``dataclasses.field(metadata={"knob": ...})``.
The rest is read from it, never written again by hand (issue 21):

* ``site``: where it acts in a run -- the model, the optimizer and schedule, the loss, the
  batch transform, the training step, after each step, a callback, the evaluation; ``identity``
  for what names a run and trains nothing (``name``, ``description``);
* ``image_only``: it only means something on images N x C x H x W (refused on vectors and
  sequences: :mod:`regularkit.recipe.rules`);
* ``factory``: how it applies to a user's model (``--model file.py:build``): applied after the
  build (``adapt``, by :mod:`regularkit.models.adapt` or the wiring), refused because the factory
  decides the architecture (``architecture``, when it differs from the base), refused when
  switched on (``refused``, with ``refusal``), or not needed: it acts outside the model
  (``outside``);
* ``classes_only``: why it cannot mean anything on a regression task (empty: it can);
* ``build(recipe, model)``: for a field whose hook is a function of the recipe alone -- a loss
  term, an after-step hook, the training step -- the hook itself; the wiring
  (:func:`regularkit.recipe.assemble.assemble`) calls it when the field is switched on;
* ``example`` and ``needs``: a value that switches it on, and the fields it needs to mean
  anything (``augment.padding_mode`` needs a crop).  The conformance suite
  (tests/recipe/test_conformance.py) assembles every field with its example and fails when the
  run does not change: a field nobody reads fails the suite.

"Switched on" is "differs from the field's default" (:func:`is_on`).
"""
from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterator

__all__ = ["SITES", "FACTORY_RULES", "Knob", "knob", "knob_of", "is_on", "walk", "builders", "factory_refusal"]

IDENTITY, MODEL, OPTIMIZER, LOSS, BATCH = "identity", "model", "optimizer", "loss", "batch"
STEP, AFTER_STEP, CALLBACK, EVALUATION = "step", "after_step", "callback", "evaluation"
#: Where a field acts; ``build`` is allowed on the sites that take one hook each.
SITES = (IDENTITY, MODEL, OPTIMIZER, LOSS, BATCH, STEP, AFTER_STEP, CALLBACK, EVALUATION)
BUILD_SITES = (LOSS, STEP, AFTER_STEP)

ADAPT, ARCHITECTURE, REFUSED, OUTSIDE = "adapt", "architecture", "refused", "outside"
FACTORY_RULES = (ADAPT, ARCHITECTURE, REFUSED, OUTSIDE)


@dataclass(frozen=True)
class Knob:
    """The metadata of one recipe field (see the module docstring)."""

    site: str
    factory: str = OUTSIDE
    image_only: bool = False
    refusal: str = ""                      # factory "refused" (or refused_values): the one-line reason
    refused_values: tuple = ()             # factory "adapt" but refused for these values (alpha dropout)
    classes_only: str = ""                 # why it means nothing on a regression task ("": it applies)
    build: Callable[[Any, Any], Any] | None = None
    example: Any = None                    # a value that switches the field on
    needs: dict[str, Any] = dataclasses.field(default_factory=dict)  # dotted overrides it needs to act
    note: str = ""                         # why a field has no example (the factory spec)

    def problems(self, name: str) -> list[str]:
        """What is wrong with this metadata (empty: nothing)."""
        out = []
        if self.site not in SITES:
            out.append(f"{name}: site {self.site!r} is not one of {', '.join(SITES)}")
        if self.factory not in FACTORY_RULES:
            out.append(f"{name}: factory rule {self.factory!r} is not one of {', '.join(FACTORY_RULES)}")
        if (self.site == MODEL) == (self.factory == OUTSIDE):
            out.append(f"{name}: a model field needs a factory rule other than 'outside', any other field "
                       f"'outside' (site {self.site!r}, factory {self.factory!r})")
        if (self.factory == REFUSED or self.refused_values) and not self.refusal:
            out.append(f"{name}: a refused field needs its refusal, the one-line reason")
        if self.build is not None and self.site not in BUILD_SITES:
            out.append(f"{name}: build is for the sites {', '.join(BUILD_SITES)}, got site {self.site!r}")
        if self.example is None and self.site != IDENTITY and not self.note:
            out.append(f"{name}: give an example value that switches it on (or a note why it has none)")
        return out


def knob(default: Any = dataclasses.MISSING, site: str = "", *, default_factory: Any = dataclasses.MISSING,
         **meta: Any) -> Any:
    """A dataclass field carrying its :class:`Knob`: ``l2: float = knob(0.0, LOSS, example=1e-3, build=...)``."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"knob": Knob(site, **meta)})


def knob_of(f: dataclasses.Field) -> Knob | None:
    """The :class:`Knob` of a dataclass field, or None when it was declared without one."""
    return f.metadata.get("knob")


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def is_on(f: dataclasses.Field, value: Any) -> bool:
    """Whether ``value`` switches field ``f`` on: it differs from the field's default."""
    return value != _default(f)


def _part_type(hint: Any) -> type | None:
    """The dataclass a field holds (``X`` or ``X | None``), or None for a leaf value."""
    if dataclasses.is_dataclass(hint):
        return hint
    inner = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)]
    return inner[0] if inner else None


@functools.lru_cache(maxsize=None)
def _layout(cls: type) -> tuple[tuple[dataclasses.Field, type | None], ...]:
    """Each field of ``cls`` with the dataclass it holds (None for a leaf), computed once per class."""
    hints = typing.get_type_hints(cls)
    return tuple((f, _part_type(hints.get(f.name))) for f in dataclasses.fields(cls))


def walk(obj: Any, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field, Any, Any]]:
    """``(dotted name, field, value, owner)`` for every field of the dataclass ``obj`` (an instance or a
    class), parts first then their fields; a part that is None (``reg.early_stopping``) is walked
    through its type, with values None.  Instances are walked through their own class, so a
    subclass's extra field is seen."""
    is_class = isinstance(obj, type)
    for f, part_type in _layout(obj if is_class else type(obj)):
        value = None if is_class else getattr(obj, f.name)
        yield prefix + f.name, f, value, obj
        if part_type is not None:
            yield from walk(part_type if value is None else value, f"{prefix}{f.name}.")


@functools.lru_cache(maxsize=None)
def builders(cls: type, site: str) -> tuple[dataclasses.Field, ...]:
    """The fields of the dataclass ``cls`` (not of its parts) that build a hook of ``site``."""
    return tuple(f for f in dataclasses.fields(cls)
                 if knob_of(f) is not None and knob_of(f).site == site and knob_of(f).build is not None)


def factory_refusal(cfg: Any, base: Any, prefix: str = "model.") -> str | None:
    """Why the config part ``cfg`` cannot be applied to a user's model built from ``base``, by the fields'
    factory rules alone (what only the model can tell is :func:`regularkit.models.adapt.inapplicable`'s)."""
    fields = [(f, knob_of(f)) for f in dataclasses.fields(cfg) if knob_of(f) is not None]
    changed = [f"{prefix}{f.name}" for f, k in fields
               if k.factory == ARCHITECTURE and getattr(cfg, f.name) != getattr(base, f.name)]
    if changed:
        return f"it changes the architecture ({', '.join(changed)}), which your factory decides"
    for f, k in fields:
        value = getattr(cfg, f.name)
        if (k.factory == REFUSED and is_on(f, value)) or value in k.refused_values:
            return k.refusal
    return None
