"""``_util.registry.build``: the one ``get(identifier)`` of every family (Keras' ``get``), on a toy registry.

Each accepted form (a name with default arguments, a ``{"class_name", "config"}`` dict, an instance)
and each refusal, with the message matched.
"""
import pytest

from regularkit._util.registry import build, required_arguments
from regularkit.errors import RegularkitError


class Base:
    pass


class Plain(Base):
    def __init__(self, rate=0.5, *, name="plain"):
        self.rate, self.name = rate, name

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Needs(Base):
    def __init__(self, size, scale, *args, rate=1.0, **kwargs):
        self.size, self.scale = size, scale

    @classmethod
    def from_config(cls, config):
        return cls(**config)


REGISTRY = {"plain": Plain, "needs": Needs}


def get(identifier):
    return build(REGISTRY, identifier, family="toy layer", base=Base)


def test_required_arguments_are_the_ones_without_a_default_and_not_var_args():
    assert required_arguments(Plain) == []
    assert required_arguments(Needs) == ["size", "scale"]


def test_a_name_builds_the_default_object_and_a_config_dict_the_configured_one():
    built = get("plain")
    assert type(built) is Plain and (built.rate, built.name) == (0.5, "plain")
    configured = get({"class_name": "needs", "config": {"size": 3, "scale": 2.0}})
    assert type(configured) is Needs and (configured.size, configured.scale) == (3, 2.0)


def test_an_instance_is_returned_as_it_is():
    obj = Plain(0.1)
    assert get(obj) is obj


@pytest.mark.parametrize("identifier, message", [
    ("needs", r"toy layer 'needs' needs size, scale; build it from \{'class_name': 'needs', 'config': \{\.\.\.\}\}"),
    ("nope", r"toy layer must be one of .*'plain'.*got 'nope'"),
    ({"class_name": "nope", "config": {}}, r"class_name must be one of .*got 'nope'"),
    ({"class_name": "plain"}, r"cannot build a toy layer from \{'class_name': 'plain'\}"),
    (3.5, r"cannot build a toy layer from 3.5"),
])
def test_refusals_name_the_value(identifier, message):
    with pytest.raises(RegularkitError, match=message):
        get(identifier)


def test_the_article_follows_the_family_name():
    with pytest.raises(RegularkitError, match=r"cannot build an augmentation from None"):
        build(REGISTRY, None, family="augmentation", base=Base)
