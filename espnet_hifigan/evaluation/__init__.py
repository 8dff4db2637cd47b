"""Evaluation: objective metrics, per-utterance scoring, ``RESULTS.md`` tables, figures and the
listening pages.
"""
