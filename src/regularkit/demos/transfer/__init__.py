"""``regularkit demo transfer``: the lecture's 2 x 2 transfer-learning table, measured.

Rooms: :mod:`.settings` (the table, the methods, the budget), :mod:`.experiment` (data,
frozen bottoms, training, the full table of runs), :mod:`.result` (summaries and verdicts)
and :mod:`.report` (tables, figure, the demo entry point); each imports only those before it.
"""
from regularkit.demos.transfer.experiment import (
                                                  Split,
                                                  StageProbe,
                                                  load_tasks,
                                                  make_split,
                                                  pretrain,
                                                  run_method,
                                                  transfer_table,
)
from regularkit.demos.transfer.report import plot, print_tables, transfer_demo
from regularkit.demos.transfer.result import TransferResult
from regularkit.demos.transfer.settings import ADVICE, METHODS, QUICK, TASKS, TransferSettings

__all__ = ["ADVICE", "METHODS", "QUICK", "TASKS", "TransferSettings", "TransferResult", "Split", "StageProbe",
           "load_tasks", "make_split", "pretrain", "run_method", "transfer_table", "plot", "print_tables",
           "transfer_demo"]
