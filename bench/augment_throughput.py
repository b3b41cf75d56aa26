"""Augmentation throughput: regularkit's batched per-sample ops vs the physical floor and the peers.

Pipeline (the CIFAR recipe plus mixing): pad-4 random crop, horizontal flip,
random erasing (p = 0.5), then MixUp or CutMix (alpha = 1).  Every variant
draws independent parameters per sample where the library allows it.

Variants, interleaved within each repeat so machine noise hits them alike:

* ``floor``: ``x.clone()``, one read and one write of the batch (no op can be
  faster than touching every pixel once);
* ``regularkit``: ``Compose([RandomCrop, HorizontalFlip, RandomErasing, OneOf([MixUp, CutMix])])``
  on the batch (per-sample parameters, per-sample lam, per-sample switch);
  ``regularkit.fused_mix`` is the same with ``MixUpCutMix`` (the switch in one pass);
* ``torchvision``: ``transforms.v2`` per image, as users apply it in a
  Dataset's ``__getitem__`` (crop, flip, erase), stacked, then v2's batch
  ``RandomChoice([MixUp, CutMix])`` (one lam per batch: v2's only mode);
* ``kornia``: ``kornia.augmentation`` batched (crop, flip, erase), then
  ``RandomMixUpV2`` or ``RandomCutMixV2`` chosen per batch.

Peers are used when importable (bench/README.md sets them up).  Also reported:
regularkit per op, the random affine warp of each library alone, and the fraction of one small-CNN training step (forward,
backward, SGD step on batch 256 of 1x28x28) that the augmentation takes.

The AutoAugment family (RandAugment, TrivialAugmentWide, AutoAugment CIFAR-10,
AugMix) on 256 uint8 3x32x32 images: regularkit batched against the same ops
and magnitudes applied image by image with Pillow (torchvision's PIL path, as a
Dataset's ``__getitem__`` runs it); RandomResizedCrop and GaussianBlur against
torchvision v2's tensor kernels restated and run image by image.  torchvision
itself cannot be installed next to this torch, so these loops stand in for it.

Usage: ``python bench/augment_throughput.py [--repeats 15] [--threads 1] [--json out.json] [--policies-only]``
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

import regularkit
import regularkit.augment as A
from regularkit._util.environment import cpu_model

K = 10


def regularkit_pipeline(size, fused: bool = False):
    """``fused=False``: the generic per-sample switch ``OneOf([MixUp, CutMix])`` (the reference variant);
    ``fused=True``: ``MixUpCutMix``, the same switch in one pass."""
    mix = (A.MixUpCutMix(1.0, 1.0, num_classes=K) if fused
           else A.OneOf([A.MixUp(1.0, num_classes=K), A.CutMix(1.0, num_classes=K)]))
    return A.Compose([A.RandomCrop(padding=4), A.HorizontalFlip(), A.RandomErasing(p=0.5), mix])


def torchvision_pipeline(size):
    try:
        import torchvision.transforms.v2 as v2
    except Exception:  # noqa: BLE001 - any import failure means "peer not available"
        return None
    per_image = v2.Compose([v2.RandomCrop(size, padding=4), v2.RandomHorizontalFlip(), v2.RandomErasing(p=0.5)])
    mix = v2.RandomChoice([v2.MixUp(alpha=1.0, num_classes=K), v2.CutMix(alpha=1.0, num_classes=K)])

    def run(x, y):
        xs = torch.stack([per_image(img) for img in x])  # what a Dataset + DataLoader collate does
        return mix(xs, y)
    return run


def kornia_pipeline(size):
    try:
        import kornia.augmentation as KA
    except Exception:  # noqa: BLE001
        return None
    seq = torch.nn.Sequential(KA.RandomCrop(size, padding=4), KA.RandomHorizontalFlip(), KA.RandomErasing(p=0.5))
    mixup = KA.RandomMixUpV2(data_keys=["input", "class"])
    cutmix = KA.RandomCutMixV2(data_keys=["input", "class"])

    def run(x, y):
        xs = seq(x)
        return (mixup if torch.rand(()) < 0.5 else cutmix)(xs, y)
    return run


def peer_affine(size):
    """The most expensive op alone, for an apples-to-apples kernel comparison: rotation 15, shift 0.1,
    shear 5, zoom 0.9-1.1, bilinear."""
    out = {}
    try:
        import torchvision.transforms.v2 as v2
        tv = v2.RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5,
                             interpolation=v2.InterpolationMode.BILINEAR)
        out["torchvision.affine"] = lambda x: torch.stack([tv(img) for img in x])
    except Exception:  # noqa: BLE001
        pass
    try:
        import kornia.augmentation as KA
        out["kornia.affine"] = KA.RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5)
    except Exception:  # noqa: BLE001
        pass
    return out


def per_op(size):
    return {
        "crop": A.RandomCrop(padding=4), "hflip": A.HorizontalFlip(), "erasing": A.RandomErasing(p=0.5),
        "mixup": A.MixUp(num_classes=K), "cutmix": A.CutMix(num_classes=K),
        "oneof_mixup_cutmix": A.OneOf([A.MixUp(num_classes=K), A.CutMix(num_classes=K)]),
        "mixup_cutmix_fused": A.MixUpCutMix(num_classes=K),
        "affine": A.RandomAffine(15, 0.1, 5, (0.9, 1.1)), "color_jitter": A.ColorJitter(0.2, 0.2, 0.1),
    }


def time_interleaved(fns: dict, repeats: int, warmup: int = 3) -> dict:
    for f in fns.values():
        for _ in range(warmup):
            f()
    samples = {k: [] for k in fns}
    cpu = {k: [] for k in fns}  # this thread's CPU time too: less sensitive to other jobs on a shared machine
    for _ in range(repeats):
        for k, f in fns.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            f()
            samples[k].append(time.perf_counter() - t0)
            cpu[k].append(time.thread_time() - c0)
    return {k: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v),
                "median_cpu_s": statistics.median(cpu[k])} for k, v in samples.items()}


def bench_shape(shape, batch: int, repeats: int, gen: torch.Generator) -> dict:
    c, h, w = shape
    x = torch.rand(batch, c, h, w, generator=gen)
    y = torch.randint(0, K, (batch,), generator=gen)
    fns = {"floor": lambda: x.clone()}
    rk, fused = regularkit_pipeline((h, w)), regularkit_pipeline((h, w), fused=True)
    fns["regularkit"] = lambda: rk(x, y, gen)
    fns["regularkit.fused_mix"] = lambda: fused(x, y, gen)
    tv, ko = torchvision_pipeline((h, w)), kornia_pipeline((h, w))
    if tv is not None:
        fns["torchvision"] = lambda: tv(x, y)
    if ko is not None:
        fns["kornia"] = lambda: ko(x, y)
    for name, op in per_op((h, w)).items():
        fns[f"regularkit.{name}"] = (lambda op=op: op(x, y, gen))
    for name, op in peer_affine((h, w)).items():
        fns[name] = (lambda op=op: op(x))
    times = time_interleaved(fns, repeats)
    for v in times.values():
        v["images_per_s"] = batch / v["median_s"]
    base = times["regularkit"]["median_s"]
    for k, v in times.items():
        v["time_vs_regularkit"] = v["median_s"] / base
    return times


def train_step_fraction(batch: int, repeats: int, gen: torch.Generator) -> dict:
    """Median time of one CNN training step and of the augmentation for the same batch (1x28x28)."""
    from regularkit.models.cnn import CNN
    torch.manual_seed(0)
    model = CNN((1, 28, 28), K)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch, 1, 28, 28, generator=gen)
    y = torch.randint(0, K, (batch,), generator=gen)
    aug = regularkit_pipeline((28, 28))
    xa, ya = aug(x, y, gen)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xa), ya)
        loss.backward()
        opt.step()

    times = time_interleaved({"train_step": step, "augment": lambda: aug(x, y, gen)}, repeats)
    a, s = times["augment"]["median_s"], times["train_step"]["median_s"]
    return {"augment_s": a, "train_step_s": s, "augment_fraction_of_step_plus_augment": a / (a + s),
            "augment_over_step": a / s}


# --------------------------------------------------------------------------- the AutoAugment family (issue 22)
def _pil_ops():
    """torchvision's PIL path per op (what v1/v2 call on a PIL image): ImageOps / ImageEnhance / transform."""
    from PIL import Image, ImageEnhance, ImageOps

    def affine(img, m):
        return img.transform(img.size, Image.AFFINE, m, Image.NEAREST)
    return {
        "identity": lambda img, m: img,
        "shear_x": lambda img, m: affine(img, (1, m, 0, 0, 1, 0)),
        "shear_y": lambda img, m: affine(img, (1, 0, 0, m, 1, 0)),
        "translate_x": lambda img, m: affine(img, (1, 0, int(m), 0, 1, 0)),
        "translate_y": lambda img, m: affine(img, (1, 0, 0, 0, 1, int(m))),
        "rotate": lambda img, m: img.rotate(m, Image.NEAREST),
        "brightness": lambda img, m: ImageEnhance.Brightness(img).enhance(1 + m),
        "color": lambda img, m: ImageEnhance.Color(img).enhance(1 + m),
        "contrast": lambda img, m: ImageEnhance.Contrast(img).enhance(1 + m),
        "sharpness": lambda img, m: ImageEnhance.Sharpness(img).enhance(1 + m),
        "posterize": lambda img, m: ImageOps.posterize(img, int(m)),
        "solarize": lambda img, m: ImageOps.solarize(img, 255 * m),
        "auto_contrast": lambda img, m: ImageOps.autocontrast(img), "equalize": lambda img, m: ImageOps.equalize(img),
        "invert": lambda img, m: ImageOps.invert(img),
    }


def pillow_loop(op, x8, gen):
    """The same ops and magnitudes as ``op`` draws, applied image by image with Pillow (torchvision's PIL
    path, one ``__getitem__`` at a time), then converted to a uint8 batch tensor as a DataLoader collates it.
    Sampling is done by ``op.make_params`` (cheap, vectorised): this times the per-image application only."""
    import numpy as np
    from PIL import Image

    from regularkit.augment.ops import OPS
    pil = _pil_ops()
    images = [Image.fromarray(a) for a in x8.permute(0, 2, 3, 1).numpy()]

    def run():
        p = op.make_params(x8, gen)
        ops, mags = p["op"].view(len(images), -1).tolist(), p["magnitude"].view(len(images), -1).tolist()
        if isinstance(op, A.AugMix):  # chains mixed in float per image, as torchvision's AugMix
            w, depth = p["weights"].tolist(), p["op"].shape[2]
            out = []
            for img, o, m, wi in zip(images, ops, mags, w):
                mix = wi[0] * np.asarray(img, dtype=np.float32)
                for c in range(len(wi) - 1):
                    aug = img
                    for s in range(c * depth, (c + 1) * depth):
                        aug = pil[OPS[o[s]]](aug, m[s])
                    mix += wi[c + 1] * np.asarray(aug, dtype=np.float32)
                out.append(mix.round().astype(np.uint8))
            return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
        out = []
        for img, o, m in zip(images, ops, mags):
            for k, v in zip(o, m):
                img = pil[OPS[k]](img, v)
            out.append(np.asarray(img))
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
    return run


def tensor_loop(name, x, gen):
    """torchvision v2's tensor kernels, one image at a time: crop + ``interpolate(antialias=True)``, and
    reflect pad + 2-D Gaussian ``conv2d`` (restated: torchvision cannot be installed next to this torch)."""
    import torch.nn.functional as F
    from regularkit.augment.blur import gaussian_kernel
    op = A.RandomResizedCrop() if name == "random_resized_crop" else A.GaussianBlur(3)

    def run():
        p = op.make_params(x, gen)
        out = []
        if name == "random_resized_crop":
            for i, (t, l, h, w) in enumerate(zip(*(p[k].tolist() for k in ("top", "left", "height", "width")))):
                out.append(F.interpolate(x[i:i + 1, :, t:t + h, l:l + w], size=x.shape[-2:], mode="bilinear",
                                         align_corners=False, antialias=True))
        else:
            for i, s in enumerate(p["sigma"].tolist()):
                g = gaussian_kernel(3, torch.tensor([s]))[0].float()
                k2 = torch.outer(g, g).expand(x.shape[1], 1, 3, 3)
                out.append(F.conv2d(F.pad(x[i:i + 1], (1, 1, 1, 1), mode="reflect"), k2, groups=x.shape[1]))
        return torch.cat(out)
    return run


def bench_policies(batch: int, repeats: int, gen: torch.Generator) -> dict:
    """Batch of ``batch`` 3x32x32 uint8 images: ours batched vs the per-image loops torchvision runs."""
    x8 = torch.randint(0, 256, (batch, 3, 32, 32), generator=gen, dtype=torch.uint8)
    xf = x8.float() / 255
    ops = {"rand_augment": A.RandAugment(), "trivial_augment_wide": A.TrivialAugmentWide(),
           "auto_augment": A.AutoAugment("cifar10"), "aug_mix": A.AugMix()}
    fns = {}
    for name, op in ops.items():
        fns[f"regularkit.{name}"] = (lambda op=op: op(x8, generator=gen))
        fns[f"pillow_loop.{name}"] = pillow_loop(op, x8, gen)
    for name, op in {"random_resized_crop": A.RandomResizedCrop(), "gaussian_blur": A.GaussianBlur(3)}.items():
        fns[f"regularkit.{name}"] = (lambda op=op: op(xf, generator=gen))
        fns[f"tensor_loop.{name}"] = tensor_loop(name, xf, gen)
    times = time_interleaved(fns, repeats)
    for key, v in times.items():
        v["images_per_s"] = batch / v["median_s"]
        ours = times.get("regularkit." + key.split(".", 1)[1])
        v["speedup_of_regularkit"] = v["median_s"] / ours["median_s"] if ours else None
        v["cpu_speedup_of_regularkit"] = v["median_cpu_s"] / ours["median_cpu_s"] if ours else None
    return times


def environment(threads: int) -> dict:
    env = {"python": platform.python_version(), "torch": torch.__version__, "regularkit": regularkit.__version__,
           "platform": platform.platform(), "cpu": cpu_model(), "torch_threads": threads,
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cuda": torch.cuda.is_available()}
    for mod in ("torchvision", "kornia"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            env[mod] = None
    return env


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--policies-only", action="store_true",
                    help="only the AutoAugment family, random resized crop and Gaussian blur")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    result = {"env": environment(args.threads), "batch": args.batch, "repeats": args.repeats, "shapes": {}}
    print(", ".join(f"{k}={v}" for k, v in result["env"].items()))
    for shape in (() if args.policies_only else ((1, 28, 28), (3, 32, 32))):
        key = "x".join(map(str, shape))
        result["shapes"][key] = bench_shape(shape, args.batch, args.repeats, gen)
        print(f"\n== {key}, batch {args.batch}, {args.threads} thread(s), median of {args.repeats} ==")
        print(f"{'variant':30s} {'ms':>9s} {'images/s':>12s} {'x regularkit':>13s}")
        for name, v in result["shapes"][key].items():
            print(f"{name:30s} {v['median_s'] * 1e3:9.3f} {v['images_per_s']:12.0f} {v['time_vs_regularkit']:13.2f}")
    result["policies"] = bench_policies(args.batch, args.repeats, gen)
    print(f"\n== AutoAugment family, 3x32x32 uint8 (crop, blur: float), batch {args.batch}, "
          f"median of {args.repeats} ==")
    print(f"{'variant':40s} {'ms':>9s} {'cpu ms':>9s} {'images/s':>12s} {'rk x faster (cpu)':>20s}")
    for name, v in result["policies"].items():
        speed = "" if name.startswith("regularkit") else \
            f"{v['speedup_of_regularkit']:.1f} ({v['cpu_speedup_of_regularkit']:.1f})"
        print(f"{name:40s} {v['median_s'] * 1e3:9.2f} {v['median_cpu_s'] * 1e3:9.2f} {v['images_per_s']:12.0f} "
              f"{speed:>20s}")
    if args.policies_only:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
        return result
    result["train_step"] = train_step_fraction(args.batch, args.repeats, gen)
    ts = result["train_step"]
    print(f"\nCNN train step {ts['train_step_s'] * 1e3:.1f} ms, augmentation {ts['augment_s'] * 1e3:.2f} ms: "
          f"{100 * ts['augment_fraction_of_step_plus_augment']:.1f}% of augment + step")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
