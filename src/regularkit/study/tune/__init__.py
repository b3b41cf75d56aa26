"""Strengths chosen on validation: tuning (--tune), objective (a recipe as a search objective), combine
(--combine)."""
