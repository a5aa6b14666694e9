from torch import Tensor, nn

from mmrskd.models.layers.deform_conv import GridSampleDeformConv2d
from mmrskd.registry import MODELS


@MODELS.register_module()
class LocalImplicitCalibration(nn.Module):
    """LTD's local implicit calibration (LIC): a 3x3 deformable convolution
    whose sampling offsets come from a plain 3x3 convolution of the same
    input, so each output position can gather its target from a learned
    local neighbourhood (the student–teacher misalignment LTD calibrates).

    The deformable convolution is :class:`GridSampleDeformConv2d`, mmcv's
    ``DeformConv2d`` in plain PyTorch (same outputs, gradients, parameter
    and initialisation; about 8x faster forward + backward on the CPU at
    LTD's sizes). The offset convolution has no bias and PyTorch's default
    initialisation, as in the authors' code; the deformable kernel has mmcv's
    (uniform Kaiming) and no bias.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): size of both kernels. Defaults to 3.
        with_cp (bool): checkpoint the deformable convolution per kernel tap
            (see :func:`deform_conv2d`). Defaults to False.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int = 3, with_cp: bool = False):
        super().__init__()
        padding = kernel_size // 2
        self.offset_conv = nn.Conv2d(
            in_channels, 2 * kernel_size * kernel_size, kernel_size,
            padding=padding, bias=False)
        self.deform_conv = GridSampleDeformConv2d(
            in_channels, out_channels, kernel_size, padding=padding,
            with_cp=with_cp)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``."""
        return self.deform_conv(x, self.offset_conv(x))
