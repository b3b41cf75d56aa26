"""Shared test set-up: small thread count so the suite behaves the same on CI."""
import torch

torch.set_num_threads(1)
