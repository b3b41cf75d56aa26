"""Shared by the penalty, parameter-selection and sparsity tests: a model with every kind of parameter."""
import numpy as np
import torch
from torch import nn


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
        nn.Linear(3 * 4 * 4, 5), nn.LayerNorm(5), nn.ReLU(), nn.Linear(5, 4),
    )


def selected_weights(model):
    return [model[0].weight, model[4].weight, model[7].weight]


def schedule(step):  # module level: picklable
    return 0.1 * (step + 1)


def negative_after_two(step):
    return 1.0 if step < 2 else -1.0


def grads(penalty, model):
    model.zero_grad()
    penalty(model).backward()
    return model


def keras_l1_l2(x, l1, l2):
    """The documented Keras formula: l1 * sum(|x|) + l2 * sum(x^2)."""
    return l1 * np.sum(np.abs(x)) + l2 * np.sum(np.square(x))

