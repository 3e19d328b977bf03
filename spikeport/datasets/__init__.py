"""Offline data sets with fixed, documented train/test splits, and the user's own samples.

- :mod:`.named`: digits, mnist, mnist-5k, fashion-mnist (:func:`load_dataset`; the table of
  sources and splits is there);
- :mod:`.user`: ``--data FILE`` (:func:`load_user_data`, :class:`Samples`), and
  :func:`evaluation_samples`, the samples a command evaluates on.
"""
from .named import DATASETS, Dataset, load_dataset, read_idx, stratified_split
from .user import MAX_USER_BYTES, Samples, evaluation_samples, load_user_data, user_dataset

__all__ = ["DATASETS", "Dataset", "MAX_USER_BYTES", "Samples", "evaluation_samples", "load_dataset", "load_user_data",
           "read_idx", "stratified_split", "user_dataset"]
