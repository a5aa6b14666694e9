from mmcv.ops import DeformConv2d
from torch import Tensor, nn

from mmrskd.registry import MODELS


@MODELS.register_module()
class LocalImplicitCalibration(nn.Module):
    """LTD's local implicit calibration (LIC): a 3x3 deformable convolution
    whose sampling offsets come from a plain 3x3 convolution of the same
    input, so each output position can gather its target from a learned
    local neighbourhood (the student–teacher misalignment LTD calibrates).

    mmcv's ``DeformConv2d`` (CPU and CUDA kernels); both convolutions have
    no bias and PyTorch's default initialisation, as in the authors' code.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): size of both kernels. Defaults to 3.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int = 3):
        super().__init__()
        padding = kernel_size // 2
        self.offset_conv = nn.Conv2d(
            in_channels, 2 * kernel_size * kernel_size, kernel_size,
            padding=padding, bias=False)
        self.deform_conv = DeformConv2d(
            in_channels, out_channels, kernel_size, padding=padding,
            bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``."""
        return self.deform_conv(x, self.offset_conv(x))
