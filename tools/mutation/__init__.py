"""Mutation testing of one module against its tests: how many small bugs would the tests notice?

    python tools/mutate.py --module src/regularkit/augment/erase.py --tests tests/augment/test_erase.py
                           [--tests more paths ...] [--max N --seed S] [--json out.json] [--list]

Each *mutant* is the module with one small change (the operators of mutmut and
cosmic-ray, written here with the standard library's :mod:`ast` only):

* comparisons ``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``;
* arithmetic ``+`` <-> ``-``, ``*`` <-> ``/`` (also ``+=`` / ``-=``, ``*=`` / ``/=``);
* ``and`` <-> ``or``; ``True`` <-> ``False``;
* a number ``c`` -> ``c + 1``, ``0`` and ``-c``;
* a statement inside a function replaced by ``pass``; ``return x`` -> ``return None``.

Docstrings, annotations, f-strings and lines marked ``# pragma: no mutate`` are
left alone.  A mutant is *killed* when a test fails (or the module no longer
imports), *timed out* when the tests run past the per-mutant limit (counted as
detected, as mutmut does), *survived* when every test passes, and *not covered*
when no test executes its line (a survivor that need not be run).  The score is
(killed + timed out) / mutants.

How it runs.  The real source is never written: the package is copied to a
temporary folder that goes first on ``sys.path`` / ``PYTHONPATH`` (so spawned
worker processes and ``python -m`` subprocesses of the tests import the mutant
too), each mutant is written into the copy, and the copy is deleted at the end,
Ctrl-C and SIGTERM included.  A first run of the tests on the unmutated copy
must pass; it also records which test executes which line of the module (in the
pytest process and in its subprocesses), and each mutant then runs only the
tests that execute its line -- fastest first, ``pytest -x`` -- or every given
test when the mutated line runs at import time (module and class level,
defaults).  ``--all-tests`` turns the selection off; ``--run-uncovered`` runs
every test for the mutants no test was seen to execute (``sys.settrace`` does not
see code that torch.compile's dynamo traces symbolically, for one) instead of
reporting them not covered.

``--runner fork`` (the default where ``os.fork`` exists) imports the
third-party libraries the tests use (torch, numpy, ...) once, then forks one
child per mutant that imports the package from the copy and calls
``pytest.main``: it saves the ~2 s of ``import torch`` per mutant.
``--runner subprocess`` starts ``python -m pytest`` per mutant instead.  Both
run ``pytest -x -q -p no:cacheprovider`` with Hypothesis derandomized and
without its example database (each mutant sees the same examples, and no
mutant's failures are stored), one torch thread (``OMP_NUM_THREADS=1``).

The rooms: :mod:`mutation.mutants` (the operators: which mutants a source has),
:mod:`mutation.pytest_side` (what runs inside the tests' pytest: the copy guard,
the test selection, the line tracer), :mod:`mutation.runner` (fork or subprocess,
one pytest run per mutant, killed with its process group), :mod:`mutation.session`
(the baseline run with coverage, one module's mutants, the report) and
:mod:`mutation.cli` (the command line, the temporary copy, clean-up on a signal).
``tools/mutate.py`` is the command (``make mutate``).
"""
