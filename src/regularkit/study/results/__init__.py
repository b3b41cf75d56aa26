"""What a study's finished runs say: summary, statistics (paired intervals, the family adjustment), fit,
verdict, finish (seed ensembles, chance error, the files), report, figures, figures_regression,
ridge_row."""
