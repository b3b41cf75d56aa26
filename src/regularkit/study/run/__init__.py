"""How a run is trained and kept: execute (one (recipe, seed) run and its record), regression_run,
worker (claim and train; N processes), ledger (over search.storage), artifacts (test and training
probabilities by the ledger), vectorize (a recipe's seeds together), teacher (distill's teacher), progress."""
