"""Streamed splits: views without decoding, batches in the order asked, the same samples as in memory."""
import numpy as np
import pytest
import torch
from PIL import Image

from regularkit._util import memory
from regularkit.data.arrays import from_torch, stream_torch, torch_bytes
from regularkit.data.images import load_image_folder, stream_image_folder
from regularkit.data.splits import make_splits
from regularkit.data.streaming import (
    EVAL_BATCH_BYTES,
    Streamed,
    StreamedDataset,
    in_memory_bytes,
    resident_bytes,
)
from regularkit.errors import RegularkitError


class Counting:
    """A source of ``n`` samples ``full(shape, i)`` that counts its reads."""

    def __init__(self, n=10, shape=(2, 3)):
        self.n, self.sample_shape, self.reads = n, shape, []

    def __len__(self):
        return self.n

    def read(self, i):
        self.reads.append(i)
        return np.full(self.sample_shape, i, np.float32)

    def describe(self):
        return "counting source"


class Items(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def folder(root, n=6, side=(7, 9)):
    rng = np.random.default_rng(0)
    for c in ("cat", "dog", "eel"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (*side, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_views_compose_without_decoding_and_look_like_a_tensor():
    src = Counting()
    x = Streamed(src)
    view = x[2:9][torch.tensor([4, 0, 6])]  # positions 6, 2, 8 of the source
    assert src.reads == []
    assert view.indices.tolist() == [6, 2, 8] and len(view) == 3
    assert view.shape == (3, 2, 3) and view.dim() == 3 and view.ndim == 3 and view.numel() == 18
    assert view.dtype == torch.float32 and view.device.type == "cpu" and view.element_size() == 4
    assert torch.equal(view.load()[:, 0, 0], torch.tensor([6.0, 2.0, 8.0]))
    assert resident_bytes(view) == 3 * 8 and resident_bytes(torch.zeros(5, 2)) == 40


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_come_in_the_order_asked_and_leave_the_global_rng_alone(workers):
    x = Streamed(Counting(n=20), num_workers=workers)[np.arange(19, -1, -1)]  # reversed view
    chunks = [torch.tensor([0, 5, 3]), torch.tensor([19]), np.array([7, 7])]
    state = torch.get_rng_state()
    got = [b[:, 0, 0].tolist() for b in x.batches(chunks)]
    assert got == [[19.0, 14.0, 16.0], [0.0], [12.0, 12.0]]
    assert torch.equal(torch.get_rng_state(), state)  # DataLoader draws its base seed from its own generator
    assert [b.shape[0] for b in x.split(8)] == [8, 8, 4]


def test_what_needs_every_sample_is_refused_in_one_line(monkeypatch):
    x = Streamed(Counting(n=4))
    with pytest.raises(RegularkitError, match=r"^torch\.cat needs every sample of counting source \(4 samples "
                                              r"streamed\) in memory \(8\.9e-08 GiB decoded\); compute it batch by "
                                              r"batch .*--stream off\)$"):
        torch.cat([x, x])
    with pytest.raises(RegularkitError, match=r"index with a slice or indices \(a view\).*got the integer 3$"):
        x[3]
    monkeypatch.setattr(memory, "available_memory", lambda: 2 * 96 - 1)  # 4 samples of 24 bytes: 96 > half
    with pytest.raises(RegularkitError, match=r"^counting source \(4 samples streamed\) needs 8\.9e-08 GiB, more "
                                              r"than 50% .*stream it batch by batch"):
        x.to("cpu")
    monkeypatch.setattr(memory, "available_memory", lambda: 2 * 96)
    assert x.to("cpu").shape == (4, 2, 3)


def test_evaluation_batches_are_bounded_in_bytes():
    small, large = Streamed(Counting(shape=(1, 8, 8))), Streamed(Counting(shape=(3, 224, 224)))
    assert small.eval_batch(1024) == 1024 and small.eval_batch(7) == 7
    assert large.eval_batch(1024) == EVAL_BATCH_BYTES // (4 * 3 * 224 * 224) == 55


def test_a_streamed_image_folder_decodes_to_the_arrays_loaded_in_memory(tmp_path):
    root = folder(tmp_path / "f")
    held = load_image_folder(root, image_size=(5, 4), test_fraction=0.25, seed=3)
    streamed = stream_image_folder(root, image_size=(5, 4), test_fraction=0.25, seed=3, num_workers=1)
    assert isinstance(streamed, StreamedDataset) and streamed.sources == held.sources
    assert streamed.input_shape == held.input_shape == (3, 5, 4) and streamed.kind == "images"
    np.testing.assert_array_equal(streamed.y_train, held.y_train)
    np.testing.assert_array_equal(streamed.x_train.load().numpy(), held.x_train)
    np.testing.assert_array_equal(streamed.x_test.load().numpy(), held.x_test)
    assert streamed.in_memory == held.x_train.nbytes + held.x_test.nbytes
    a, b = make_splits(held, 0.3, seed=1), make_splits(streamed, 0.3, seed=1)
    assert b.streamed and not a.streamed
    np.testing.assert_array_equal(a.val_idx, b.val_idx)
    assert torch.equal(b.x_val.load(), a.x_val) and torch.equal(b.y_val, a.y_val)


def test_an_unreadable_image_is_named_when_its_batch_is_read_even_in_a_worker(tmp_path):
    root = folder(tmp_path / "f", n=2)
    streamed = stream_image_folder(root, test_fraction=0.5, seed=0, num_workers=1)
    bad = root / streamed.sources["train_files"][1]
    bad.write_bytes(bad.read_bytes()[:60])  # truncated after the header was read
    with pytest.raises(RegularkitError, match=rf"^cannot read image {bad}: "):
        list(streamed.x_train.batches([[0, 1]]))


def test_a_streamed_torch_dataset_reads_as_from_torch_and_digests_its_content():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 6, 6, generator=g), torch.arange(40) % 4   # N x H x W: grey images, given a channel
    held = from_torch(Items(x, y), test_fraction=0.25, seed=2)
    streamed = stream_torch(Items(x, y), test_fraction=0.25, seed=2, num_workers=0)
    assert streamed.input_shape == held.input_shape == (1, 6, 6) and streamed.num_classes == held.num_classes == 4
    np.testing.assert_array_equal(streamed.x_train.load().numpy(), held.x_train)
    np.testing.assert_array_equal(streamed.y_test, held.y_test)
    assert streamed.sources["train_indices"] == held.sources["train_indices"]
    assert torch_bytes(Items(x, y)) == 40 * 36 * 4 == in_memory_bytes(40, (1, 6, 6))
    again = stream_torch(Items(x.clone(), y), test_fraction=0.25, seed=2).sources["digest"]
    x[5, 0, 0] += 1e-3
    changed = stream_torch(Items(x, y), test_fraction=0.25, seed=2).sources["digest"]
    assert again == streamed.sources["digest"] != changed


def test_a_bad_torch_item_is_refused_in_the_first_pass_and_when_read():
    x, y = torch.rand(8, 3), torch.arange(8) % 2
    x[6, 1] = float("nan")
    with pytest.raises(RegularkitError, match=r"^torch: train\[6\] holds 1 non-finite values \(NaN or inf\)$"):
        stream_torch(Items(x, y))
    with pytest.raises(RegularkitError, match=r"^torch: train\[2\] has label 1\.0, a float; labels must be integers"):
        stream_torch(Items(torch.rand(8, 3), [0, 1, 1.0, 0, 1, 0, 1, 0]))
    ok = stream_torch(Items(torch.rand(8, 3), y), Items(torch.rand(4, 3), torch.arange(4) % 2), num_workers=1)
    ok.x_test.source.dataset.x[3, 0] = float("inf")  # changed after the pass: caught when the batch is read
    with pytest.raises(RegularkitError, match=r"^torch: test\[3\] holds 1 non-finite values"):
        list(ok.x_test.batches([[0, 1, 2, 3]]))
