"""Weight averaging and ensembles: EMA (Polyak), SWA, snapshot ensembles, ensembles of models.

Where each hooks into a training loop:

* :class:`EMA` -- ``ema.update(model)`` after every ``optimizer.step()``;
  evaluate ``ema.module`` (or ``ema(x)``).  An ``nn.Module``: assigned to a
  model or a ``LightningModule`` it is saved in that owner's ``state_dict``.
* :class:`SWA` -- ``swa.update(model)`` at the end of every epoch from
  ``start_epoch`` on (``on_epoch_end`` does it as a callback);
  ``swa.scheduler(optimizer, base)`` is the per-epoch lr schedule;
  ``swa.finalize(train_batches)`` recomputes BatchNorm statistics at the end.
* :class:`SnapshotEnsemble` -- ``sched = snap.scheduler(optimizer)``; after
  each step ``sched.step(); snap.step(model)``; ``snap.ensemble()`` at the end.
* :class:`Ensemble` -- ``Ensemble(models)`` or ``Ensemble.from_state_dicts(factory, sds)``.

Wrapped models (DDP, DataParallel, ``torch.compile``) are accepted everywhere:
the bare model inside is copied or held, never the wrapper
(:func:`regularkit._util.distributed.bare_model`).

Each round-trips its settings through ``get_config()`` and
``from_config(config, model)``: the model is an argument, never config.
:data:`REGISTRY` names the four (there is no ``get(name)``: every one needs a model).
"""
from regularkit.averaging.ema import EMA, ema_decay, ema_update_
from regularkit.averaging.ensemble import Ensemble, average_outputs
from regularkit.averaging.snapshot import CyclicCosineLR, SnapshotEnsemble, snapshot_lr
from regularkit.averaging.swa import SWA, SWAScheduler, recalibrate_bn, swa_anneal_lr

__all__ = [
    "EMA", "SWA", "SnapshotEnsemble", "Ensemble",
    "ema_decay", "ema_update_", "recalibrate_bn", "swa_anneal_lr", "SWAScheduler",
    "snapshot_lr", "CyclicCosineLR", "average_outputs", "REGISTRY",
]

#: The one registry of averagers (Keras-style names), used by configs and the conformance suite.
REGISTRY: dict[str, type] = {"ema": EMA, "swa": SWA, "snapshot_ensemble": SnapshotEnsemble, "ensemble": Ensemble}
