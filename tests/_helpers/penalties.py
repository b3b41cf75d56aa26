"""Shared by the penalty, parameter-selection, constraint, sparsity and optimizer tests: models with every kind
of parameter (a ViT and a recurrent language model built from torch.nn parts), and timm's decay rule restated."""
import fnmatch

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



class TinyViT(nn.Module):
    """torchvision's VisionTransformer layout (torchvision/models/vision_transformer.py: conv_proj, class_token,
    encoder.pos_embedding, encoder.layers, encoder.ln, heads.head) built from torch.nn parts; no no_weight_decay()."""

    def __init__(self, d=8, layers=2, patch=4, image=8, classes=3):
        super().__init__()
        torch.manual_seed(0)
        self.conv_proj = nn.Conv2d(3, d, patch, stride=patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, d))
        self.encoder = nn.Module()
        self.encoder.pos_embedding = nn.Parameter(0.02 * torch.randn(1, (image // patch) ** 2 + 1, d))
        self.encoder.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d, nhead=2, dim_feedforward=2 * d, dropout=0.0, batch_first=True,
                                       norm_first=True) for _ in range(layers))
        self.encoder.ln = nn.LayerNorm(d)
        self.heads = nn.Sequential()
        self.heads.add_module("head", nn.Linear(d, classes))

    def forward(self, x):
        tokens = self.conv_proj(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.class_token.expand(x.shape[0], -1, -1), tokens], dim=1) + self.encoder.pos_embedding
        for layer in self.encoder.layers:
            h = layer(h)
        return self.heads(self.encoder.ln(h)[:, 0])


class SkippingViT(TinyViT):
    """TinyViT with timm's hook: ``no_weight_decay()`` returns ``skip`` (timm's ViT: {'pos_embed', 'cls_token',
    'dist_token'}, names that need not exist)."""

    def __init__(self, skip, **kwargs):
        super().__init__(**kwargs)
        self.skip = set(skip)

    def no_weight_decay(self):
        return self.skip


#: The 12 tensors timm decays on TinyViT() (no no_weight_decay): every ndim >= 2 parameter.
VIT_WEIGHTS = {"conv_proj.weight", "class_token", "encoder.pos_embedding", "heads.head.weight",
               *(f"encoder.layers.{i}.{n}" for i in range(2) for n in (
                   "self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight", "linear2.weight"))}
#: The 8 the module-type rule (Linear/Conv weights) picks: no in_proj_weight, no tokens.
VIT_MODULE_WEIGHTS = VIT_WEIGHTS - {"class_token", "encoder.pos_embedding",
                                    "encoder.layers.0.self_attn.in_proj_weight",
                                    "encoder.layers.1.self_attn.in_proj_weight"}


def lstm_model():
    """Embedding -> 2-layer LSTM -> GRU -> LayerNorm -> Linear; batch-first token ids in, logits out."""
    torch.manual_seed(0)
    return nn.ModuleDict({"embed": nn.Embedding(11, 6), "lstm": nn.LSTM(6, 5, num_layers=2, batch_first=True),
                          "gru": nn.GRU(5, 4, batch_first=True), "norm": nn.LayerNorm(4), "head": nn.Linear(4, 11)})


LSTM_WEIGHTS = {"embed.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.weight_ih_l1", "lstm.weight_hh_l1",
                "gru.weight_ih_l0", "gru.weight_hh_l0", "head.weight"}


def timm_decayed(model):
    """Names timm decays: a restatement of ``param_groups_weight_decay`` (timm/optim/_param_groups.py) as
    ``create_optimizer_v2`` calls it (timm/optim/_optim_factory.py: ``no_weight_decay_list`` is
    ``getattr(model, 'no_weight_decay', lambda: set())()``, the given model's only).  A parameter is skipped when
    ``not requires_grad``; not decayed when ``ndim <= 1``, its name ends in ``.bias``, or ``fnmatch`` matches it
    to an entry of that list; decayed otherwise."""
    skip = getattr(model, "no_weight_decay", lambda: set())()
    return {name for name, p in model.named_parameters() if p.requires_grad
            and not (p.ndim <= 1 or name.endswith(".bias") or any(fnmatch.fnmatch(name, s) for s in skip))}
