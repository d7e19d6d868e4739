"""``bioscale sweep``: the paper's search protocol on Optuna (space, study and workers, report; ``bioscale.sweep`` is the Python function)."""
