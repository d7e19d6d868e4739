"""The example data set, installed: found by name, loaded with ``data=example_patterns``."""

import numpy as np
import torch
from bioscale.config import build_run_config
from bioscale.datasets import load_data
from bioscale.discovery import DATASETS_GROUP, discover
from bioscale_example_data import make_arrays


def test_the_data_set_is_installed_under_its_name():
    entry = discover(DATASETS_GROUP)["example_patterns"]
    assert entry.distribution == "bioscale-example-data" and entry.load().description


def test_it_loads_with_the_run_settings_the_same_every_time():
    data = load_data(build_run_config(["data=example_patterns", "data.validation=200"]).data)
    assert data.in_shape == (1, 16, 16) and data.num_classes == 10
    assert (len(data.train), len(data.val), len(data.test)) == (1800, 200, 500)
    assert abs(float(data.train.x.mean())) < 1e-4  # standardised by the training split's statistics
    again = load_data(build_run_config(["data=example_patterns", "data.validation=200"]).data)
    assert torch.equal(data.train.x, again.train.x) and torch.equal(data.test.y, again.test.y)


def test_every_class_is_present_in_both_splits():
    _, y_train, _, y_test = make_arrays()
    assert (np.bincount(y_train) == 200).all() and (np.bincount(y_test) == 50).all()
