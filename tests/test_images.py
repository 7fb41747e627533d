"""PNG writing without torchvision gives torchvision's files byte for byte."""

import pytest
import torch
from torchvision.utils import save_image

from guard.images import save_png


@pytest.mark.parametrize("shape, nrow", [((3, 16, 16), 8), ((1, 3, 16, 16), 8), ((5, 3, 16, 12), 8),
                                         ((72, 3, 16, 16), 8), ((7, 3, 4, 4), 3)])
def test_save_png_writes_torchvision_s_file(tmp_path, shape, nrow):
    images = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 1.2 - 0.1  # out of range is clamped
    save_image(images, tmp_path / "torchvision.png", nrow=nrow)
    save_png(images, tmp_path / "ours.png", nrow=nrow)
    assert (tmp_path / "ours.png").read_bytes() == (tmp_path / "torchvision.png").read_bytes()
