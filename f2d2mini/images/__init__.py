"""Images (book chapter 7): data with dequantization, a U-Net velocity and joint flow map, bits per dim, quality.

    import f2d2mini as f2
    train = f2.images.load("digits", split="train")          # Images(images uint8 [N, 1, 8, 8], labels, levels 17)
    teacher = f2.images.teacher(train, f2.images.recipe("digits").teacher)
    model = f2.images.distill(teacher, train, "shortcut", f2.images.recipe("digits").distill)
    f2.images.bpd(model, test.images, steps=4, levels=test.levels).bpd

torchvision, scikit-learn and torch-fidelity are imported inside the functions that need them.
"""

from f2d2mini.images import data, likelihood, quality, train, unet
from f2d2mini.images.data import DATASETS, Images, batches, dequantize, load, quantize
from f2d2mini.images.likelihood import BPD, bits_per_dim, bpd, bpd_table, ode_bpd
from f2d2mini.images.quality import frechet_distance, mosaic
from f2d2mini.images.train import RECIPES, ImageDistillConfig, ImageTeacherConfig, distill, recipe, teacher
from f2d2mini.images.unet import UNetConfig, UNetFlowMap, UNetFlowMapConfig, UNetVelocity

__all__ = ["data", "likelihood", "quality", "unet", "train", "DATASETS", "Images", "batches", "dequantize", "load",
           "quantize", "BPD", "bits_per_dim", "bpd", "bpd_table", "ode_bpd", "frechet_distance", "mosaic", "RECIPES",
           "ImageDistillConfig", "ImageTeacherConfig", "distill", "recipe", "teacher", "UNetConfig", "UNetFlowMap",
           "UNetFlowMapConfig", "UNetVelocity"]
