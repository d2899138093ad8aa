"""Datasets, the toy world and the feature cache."""
